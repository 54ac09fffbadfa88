"""Which warehouse table a name in a statement refers to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from lakesql import errors as E
from lakesql.catalog.warehouse import TableRef

if TYPE_CHECKING:
    from lakesql.context import Context


ENGINE_CATALOG = "memory"  # DuckDB's own database, where the warehouse's views live


def target_ref(ctx: Context, table: exp.Table) -> TableRef | None:
    """The warehouse table `table` names, or None when it names a DuckDB object (temp, attached).

    Raises:
        CatalogError: `table` is qualified with DuckDB's in-memory catalog: what is written
            there would live in this session only, never in the warehouse.
    """
    if table.catalog:
        if table.catalog.lower() == ENGINE_CATALOG:
            raise E.CatalogError(
                f"catalog {table.catalog!r} is DuckDB's in-memory database: {table.sql()} would "
                "never reach the warehouse",
                hint=f"name the table as {table.db or 'main'}.{table.name} (or TEMP for a "
                "table of this session)",
            )
        return None
    if not table.db and ctx.session.is_temp_object(ctx.cur, table.name):
        return None
    ref = ctx.session.warehouse.ref(table.db or None, table.name)
    tx = ctx.session.transaction(ctx.cur)
    if tx is not None and ref in tx.tables:  # main.t in a transaction: its TEMP copy
        return None
    return ref


def table_of(ctx: Context, table: exp.Table) -> TableRef:
    """The existing warehouse table `table` names (an error listing close names otherwise)."""
    ref = ctx.session.warehouse.ref(table.db or None, table.name)
    return ctx.session.warehouse.require(ref)
