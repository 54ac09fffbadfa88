"""Rewrites of a query DuckDB runs over warehouse tables, for what their views lack."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lakesql.engine import bounds, rowid

if TYPE_CHECKING:
    from lakesql.context import Context

# in order; each returns its input when it has nothing to do
DUCKDB_REWRITES: tuple[Callable[[Context, str], str], ...] = (rowid.rewrite, bounds.rewrite)


def rewrite_for_duckdb(ctx: Context, sql: str) -> str:
    """`sql` with DUCKDB_REWRITES applied."""
    for rewrite in DUCKDB_REWRITES:
        sql = rewrite(ctx, sql)
    return sql
