"""INSERT, COPY ... FROM, UPDATE, DELETE and MERGE on Delta tables.

* ``INSERT`` and ``COPY ... FROM`` run the user's own statement against an empty staging table with
  the target's schema and constraints (so DuckDB's INSERT semantics hold exactly), then append it.
* ``UPDATE``, ``DELETE`` and ``MERGE`` run against a staging copy of the version they read, then
  replace the table's rows in one commit that conflicts with any commit made meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from lakesql.catalog.warehouse import TableRef
from lakesql.context import NOT_MINE, Result
from lakesql.dialect.dialect import splice, table_span
from lakesql.engine.duckdb import quote
from lakesql.engine.names import target_ref
from lakesql.engine.staging import (
    drop_stage,
    fill_stage,
    has_unique,
    new_stage,
    run_on_stage,
    stored,
    stream,
)
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.context import Context


def _written(ctx: Context, table: object) -> tuple[TableRef, delta.Snapshot] | None:
    """The warehouse table a DML statement writes and the version it reads; None when `table`
    is not a table of the warehouse (DuckDB then runs the statement as written)."""
    if not isinstance(table, exp.Table):
        return None
    ref = target_ref(ctx, table)
    if ref is None:
        return None
    ctx.session.warehouse.require(ref)
    return ref, delta.snapshot(ref.path)


def insert(ctx: Context, node: exp.Insert) -> Result | None:
    table = node.this
    if isinstance(table, exp.Schema):
        table = table.this
    written = _written(ctx, table)
    if written is None:
        return NOT_MINE
    ref, snap = written
    overwrite = bool(node.args.get("overwrite"))
    stage = new_stage(ctx, snap, copy_rows=False)
    try:
        # With a PRIMARY KEY / UNIQUE, the new rows are checked against the existing ones (and
        # ON CONFLICT / INSERT OR REPLACE act on them): the staging table holds the table's rows,
        # and the table is rewritten.
        whole = not overwrite and has_unique(ctx, stage, snap.schema)
        if whole:
            fill_stage(ctx, snap, stage)
        start, end = table_span(table)
        if overwrite:
            text = splice(ctx.sql, [(0, end, f"INSERT INTO {stage}")])
        else:
            alias = (
                "" if table.alias or not node.args.get("conflict") else f" AS {quote(table.name)}"
            )
            qualified = qualified_columns(node, table, ref) if alias else []
            text = splice(ctx.sql, [(start, end, stage + alias), *qualified])
        count = run_on_stage(ctx, text, stage, ref)
        if count == 0 and not overwrite:
            return Result(rowcount=0, message="INSERT 0")
        operation = "INSERT OVERWRITE" if overwrite else "INSERT"

        def rows() -> pa.RecordBatchReader:
            return delta.conform(stream(ctx, stored(ctx, snap, stage)), snap.schema)

        if whole:
            delta.write(
                ref.path,
                rows(),
                mode="overwrite",
                sql=ctx.statement,
                operation=operation,
                read_version=snap.version,
            )
        elif not overwrite and not _reads_table(node, ref):  # blind: retried on a lost race
            delta.append(ref.path, rows, sql=ctx.statement, operation=operation)
        else:
            delta.write(
                ref.path,
                rows(),
                mode="overwrite" if overwrite else "append",
                sql=ctx.statement,
                operation=operation,
                read_version=snap.version if overwrite else None,
            )
    finally:
        drop_stage(ctx, stage)
    ctx.session.invalidate(ref)
    return Result(rowcount=count, message=f"{operation} {count}")


def parameter_table(columns: list[list[Any]]) -> pa.Table | None:
    """The rows of a batch of INSERT parameters (`columns` of Python values) as an Arrow table
    whose column i holds the values of column i, or None when a column's values have no one Arrow
    type DuckDB reads as it binds them (mixed types, integers beyond 64 bits, UUID objects,
    dicts...): the caller then runs the statement once per parameter row."""
    arrays = []
    for values in columns:
        try:
            array = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return None
        if not _plain_type(array.type):
            return None
        arrays.append(array)
    return pa.table(arrays, names=[f"p{i}" for i in range(len(arrays))])


def _plain_type(t: pa.DataType) -> bool:
    """Arrow types that DuckDB reads as it binds the Python values they came from."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _plain_type(t.value_type)
    return any(
        check(t)
        for check in (
            pa.types.is_null,
            pa.types.is_boolean,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_binary,
            pa.types.is_large_binary,
            pa.types.is_date,
            pa.types.is_time,
            pa.types.is_timestamp,
            pa.types.is_decimal,
            pa.types.is_duration,
        )
    )


def _reads_table(node: exp.Insert, ref: TableRef) -> bool:
    """True when the INSERT's query names its target table (or anything of that name)."""
    query = node.expression
    if query is None:
        return False
    return any(t.name.lower() == ref.name for t in query.find_all(exp.Table))


def copy_from(ctx: Context, node: exp.Copy) -> Result | None:
    table = node.this
    written = _written(ctx, table) if node.args.get("kind") else None  # COPY ... TO: a read
    if written is None:
        return NOT_MINE
    ref, snap = written
    stage = new_stage(ctx, snap, copy_rows=False)
    try:
        whole = has_unique(ctx, stage, snap.schema)  # checked against the existing rows: see insert
        if whole:
            fill_stage(ctx, snap, stage)
        start, end = table_span(table)
        count = run_on_stage(ctx, splice(ctx.sql, [(start, end, stage)]), stage, ref)
        if count and whole:
            delta.write(
                ref.path,
                delta.conform(stream(ctx, stored(ctx, snap, stage)), snap.schema),
                mode="overwrite",
                sql=ctx.statement,
                operation="COPY",
                read_version=snap.version,
            )
        elif count:
            delta.append(
                ref.path,
                lambda: delta.conform(stream(ctx, stored(ctx, snap, stage)), snap.schema),
                sql=ctx.statement,
                operation="COPY",
            )
    finally:
        drop_stage(ctx, stage)
    ctx.session.invalidate(ref)
    return Result(rowcount=count, message=f"COPY {count}")


def _rewrite(
    ctx: Context, node: exp.Update | exp.Delete | exp.Merge, operation: str
) -> Result | None:
    table = node.this
    written = _written(ctx, table)
    if written is None:
        return NOT_MINE
    ref, snap = written
    stage = new_stage(ctx, snap, copy_rows=True)
    try:
        start, end = table_span(table)
        alias = "" if table.alias else f" AS {quote(table.name)}"
        edits = [(start, end, stage + alias), *qualified_columns(node, table, ref)]
        count = run_on_stage(ctx, splice(ctx.sql, edits), stage, ref)
        if count:
            reader = delta.conform(stream(ctx, stored(ctx, snap, stage)), snap.schema)
            delta.write(
                ref.path,
                reader,
                mode="overwrite",
                sql=ctx.statement,
                operation=operation,
                read_version=snap.version,
            )
    finally:
        drop_stage(ctx, stage)
    ctx.session.invalidate(ref)
    return Result(rowcount=count, message=f"{operation} {count}")


def qualified_columns(
    node: exp.Expr, table: exp.Table, ref: TableRef
) -> list[tuple[int, int, str]]:
    """Edits making column references qualified by the target's schema (`"main"."t".k`, as dbt
    writes them: `DELETE FROM "main"."t" USING tmp WHERE tmp.k = "main"."t".k`) refer to the
    staging table that replaces the target: `"main"."t"` becomes the name the staging table goes by
    (`"t"`). A target with an alias of its own is left alone (DuckDB does not resolve the
    qualified name then either)."""
    if table.alias:
        return []
    edits = []
    for col in node.find_all(exp.Column):
        db, tbl = col.args.get("db"), col.args.get("table")
        if not isinstance(db, exp.Identifier) or not isinstance(tbl, exp.Identifier):
            continue
        catalog = col.args.get("catalog")
        if (
            tbl.name.lower() != ref.name.lower()
            or db.name.lower() != ref.schema.lower()
            or (catalog is not None and catalog.name.lower() != (table.catalog or "").lower())
        ):
            continue
        first = catalog if isinstance(catalog, exp.Identifier) else db
        start, end = first.meta.get("start"), tbl.meta.get("end")
        if start is None or end is None:
            continue
        edits.append((start, end + 1, quote(table.name)))
    return edits


def update(ctx: Context, node: exp.Update) -> Result | None:
    return _rewrite(ctx, node, "UPDATE")


def delete(ctx: Context, node: exp.Delete) -> Result | None:
    return _rewrite(ctx, node, "DELETE")


def merge(ctx: Context, node: exp.Merge) -> Result | None:
    return _rewrite(ctx, node, "MERGE")
