"""`BITSTRING_AGG(col)` over a Delta table's integer column.

Without explicit bounds, DuckDB binds `BITSTRING_AGG(col)` with the minimum and maximum from the
column's statistics. A Delta table's view has none for a `HUGEINT`/`UHUGEINT` column (stored as
text and cast back), nor for any column one of whose files holds only NULLs in it (Parquet has no
min/max for that file). This rewrite gives the call the column's minimum and maximum over the
whole table as literals, which are what DuckDB's statistics of a table holding the same rows say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from lakesql.dialect.dialect import LakeSQL
from lakesql.engine.duckdb import quote
from lakesql.engine.rowid import delta_columns, outer_queries, parse_if_mentioned, source_table

if TYPE_CHECKING:
    from lakesql.context import Context

INTEGER_TYPES = {
    *("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"),
    *("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"),
}


def rewrite(ctx: Context, sql: str) -> str:
    """`sql` with the bounds of BITSTRING_AGG over Delta tables' integer columns given (`sql`
    itself when there are none)."""
    node = parse_if_mentioned(sql, "bitstring_agg")
    if node is None or id(ctx.cur) in ctx.session.unoptimized:  # no statistics in DuckDB either
        return sql
    changed = False
    for query in outer_queries(node):
        for scope in traverse_scope(query):
            for call in scope.expression.find_all(exp.Anonymous):
                if call.name.upper() != "BITSTRING_AGG" or len(call.expressions) != 1:
                    continue
                col = call.expressions[0]
                if not isinstance(col, exp.Column) or call.find_ancestor(exp.Select) is not (
                    scope.expression
                ):
                    continue
                table = source_table(scope, col)
                found = delta_columns(ctx, table) if table is not None else None
                kind = found[2].get(col.name.lower()) if found else None
                if found is None or kind not in INTEGER_TYPES:
                    continue
                schema, name, _ = found
                [(low, high)] = ctx.lookup(
                    f"SELECT CAST(min({quote(col.name)}) AS VARCHAR), "
                    f"CAST(max({quote(col.name)}) AS VARCHAR) FROM {quote(schema)}.{quote(name)}"
                )
                if low is None:
                    continue  # no rows: DuckDB's own error says what to do
                call.set(
                    "expressions",
                    [col, *(exp.cast(exp.Literal.string(v), kind) for v in (low, high))],
                )
                changed = True
    return node.sql(dialect=LakeSQL) if changed else sql
