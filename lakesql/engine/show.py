"""SHOW TABLES, SHOW SCHEMAS and DESCRIBE of a Delta table, answered from the warehouse."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from lakesql.context import NOT_MINE, Result
from lakesql.dialect import expressions as lx
from lakesql.engine.names import target_ref
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.context import Context


def show_tables(ctx: Context, node: lx.ShowTables) -> Result:
    wh = ctx.session.warehouse
    schema = node.args.get("this")
    schemas = [wh.require_schema(schema.name)] if schema else wh.schemas()
    rows = [{"schema": s, "name": t} for s in schemas for t in wh.tables(s)]
    return ctx.rows(
        pa.Table.from_pylist(
            rows, schema=pa.schema([("schema", pa.string()), ("name", pa.string())])
        )
    )


def show_schemas(ctx: Context, node: lx.ShowSchemas) -> Result:
    return ctx.rows(pa.table({"schema": pa.array(ctx.session.warehouse.schemas(), pa.string())}))


def describe(ctx: Context, node: exp.Describe) -> Result | None:
    table = node.this
    if not isinstance(table, exp.Table) or node.args.get("kind") or node.args.get("style"):
        return NOT_MINE
    ref = target_ref(ctx, table)
    if ref is None or not ctx.session.warehouse.exists(ref):
        return NOT_MINE
    snap = delta.snapshot(ref.path)
    types = ctx.engine.logical_types(snap.schema)
    rows = [
        {
            "column_name": f.name,
            "column_type": t,
            "null": "YES" if f.nullable else "NO",
            "key": "PARTITION" if f.name in snap.partition_columns else None,
            "default": None,
            "extra": None,
        }
        for f, t in zip(snap.schema, types, strict=True)
    ]
    schema = pa.schema(
        [
            (c, pa.string())
            for c in ("column_name", "column_type", "null", "key", "default", "extra")
        ]
    )
    return ctx.rows(pa.Table.from_pylist(rows, schema=schema))
