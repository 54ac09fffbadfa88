"""The lakesql SQL dialect: DuckDB's, plus lakesql's own statements. Text <-> AST only."""

from lakesql.dialect.dialect import LakeSQL, parse_statement

__all__ = ["LakeSQL", "parse_statement"]
