"""Staging tables: how a write is computed by DuckDB before delta-rs commits it.

A staging table is a TEMP table declared like the Delta table (types, NOT NULL, DEFAULT, and the
constraints and indexes kept in the Delta schema's metadata), so DuckDB enforces the user's
statement exactly as on its own tables; the rows it holds afterwards are what gets committed.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakesql import errors as E
from lakesql.catalog.warehouse import TableRef
from lakesql.engine.duckdb import guard_stream, quote
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.context import Context


def meta(f: pa.Field, key: str) -> str | None:
    value = (f.metadata or {}).get(key.encode())
    return value.decode() if value is not None else None


# an executor returning None hands the statement to DuckDB unchanged
DEFAULT_KEY = "lakesql.default"  # Delta column metadata: the column's DEFAULT expression


DDL_KEY = "lakesql.ddl"  # column metadata: its definition as declared (when it has constraints)


GENERATED_KEY = "lakesql.generated"  # column metadata: its GENERATED expression (values stored)


TABLE_CONSTRAINTS_KEY = "lakesql.constraints"  # first column: JSON list of table constraints


INDEXES_KEY = "lakesql.indexes"  # first column: JSON list of {name, unique, on} (CREATE INDEX)


def new_stage(ctx: Context, snap: delta.Snapshot, *, copy_rows: bool) -> str:
    """Create a TEMP staging table with the table's columns, constraints and indexes.

    A column declared with more than a type, NOT NULL and DEFAULT (PRIMARY KEY, UNIQUE, CHECK,
    COLLATE, GENERATED) keeps its definition as written in its metadata, and the table
    constraints are kept in the first column's: the staging table declares them all, so DuckDB
    enforces them on the statement exactly as on its own tables.
    """
    name = f"__lakesql_stage_{uuid.uuid4().hex[:12]}"
    create_stage(ctx, snap.schema, name)
    if copy_rows:
        fill_stage(ctx, snap, name)
    return name


def create_stage(ctx: Context, schema: pa.Schema, name: str) -> None:
    """CREATE TEMP TABLE `name` (quoted as needed) as the Delta `schema` declares it."""
    types = ctx.engine.logical_types(schema)

    def column(f: pa.Field, t: str) -> str:
        declared = meta(f, DDL_KEY)
        if declared is not None:
            return declared
        default = meta(f, DEFAULT_KEY)
        return (
            f"{quote(f.name)} {t}{'' if f.nullable else ' NOT NULL'}"
            f"{f' DEFAULT {default}' if default else ''}"
        )

    items = [column(f, t) for f, t in zip(schema, types, strict=True)]
    first = schema[0] if len(schema) else None
    if first is not None:
        items += json.loads(meta(first, TABLE_CONSTRAINTS_KEY) or "[]")
    ctx.run(f"CREATE TEMP TABLE {name} ({', '.join(items)})")
    for index in table_indexes(schema):
        unique = "UNIQUE " if index["unique"] else ""
        ix = f"__lakesql_ix_{uuid.uuid4().hex[:12]}"
        ctx.run(f"CREATE {unique}INDEX {ix} ON {name} {index['on']}")


def fill_stage(ctx: Context, snap: delta.Snapshot, stage: str) -> None:
    """Copy the snapshot's rows into a staging table (generated columns compute themselves)."""
    stored = [quote(f.name) for f in snap.schema if meta(f, GENERATED_KEY) is None]
    cols = ", ".join(stored)
    ctx.run(f"INSERT INTO {stage} ({cols}) SELECT {cols} FROM {ctx.engine.version_view(snap)}")


def table_indexes(schema: pa.Schema) -> list[dict[str, Any]]:
    first = schema[0] if len(schema) else None
    return json.loads(meta(first, INDEXES_KEY) or "[]") if first is not None else []


def has_unique(ctx: Context, stage: str, schema: pa.Schema) -> bool:
    """True when the staging table has a PRIMARY KEY, UNIQUE constraint or unique index: a write
    is then checked against the table's existing rows too."""
    if not any(meta(f, k) for f in schema for k in (DDL_KEY, TABLE_CONSTRAINTS_KEY, INDEXES_KEY)):
        return False  # declared with types, NOT NULL and DEFAULT only
    row = ctx.run(
        "SELECT (SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? AND "
        "constraint_type IN ('PRIMARY KEY', 'UNIQUE')) + (SELECT count(*) FROM duckdb_indexes() "
        "WHERE table_name = ? AND is_unique)",
        [stage, stage],
    ).fetchone()
    return bool(row and row[0])


def stored(ctx: Context, snap: delta.Snapshot, stage: str) -> str:
    """SELECT of a staging table's rows as the table stores them."""
    return ctx.engine.storage_select(snap.schema, stage)


def stream(ctx: Context, sql: str, params: Any = None) -> pa.RecordBatchReader:
    rows = ctx.session.settings["batch_rows"]
    return guard_stream(ctx.run(sql, params).to_arrow_reader(rows))


def _count(result: Any) -> int:
    row = result.fetchone()
    if row is None or row[0] is None:
        return 0
    if not isinstance(row[0], int) or (result.description or [("",)])[0][0] != "Count":
        raise E.NotSupportedError(
            "RETURNING on a Delta table is not supported yet",
            hint="run the statement, then SELECT the rows it changed",
        )
    return int(row[0])


def run_on_stage(ctx: Context, sql: str, stage: str, ref: TableRef) -> int:
    """Run the user's statement against the staging table; errors name the real table."""
    try:
        return _count(ctx.run(sql, ctx.params))
    except E.Error as e:
        e.message = e.message.replace(stage, ref.qualified)
        e.args = (e.message,)
        if e.span is not None and e.span.sql == sql:  # point into the user's text, not ours
            e.span = E.SourceSpan(ctx.sql, _unsplice_offset(sql, ctx.sql, e.span.offset))
        raise


def _unsplice_offset(staged: str, original: str, offset: int) -> int:
    """Map an offset in `staged` (`original` with one region replaced) back into `original`."""
    prefix = 0
    limit = min(len(staged), len(original))
    while prefix < limit and staged[prefix] == original[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and staged[len(staged) - 1 - suffix] == original[-1 - suffix]:
        suffix += 1
    if offset < prefix:
        return offset
    if offset >= len(staged) - suffix:
        return max(prefix, offset - (len(staged) - len(original)))
    return prefix


def drop_stage(ctx: Context, stage: str) -> None:
    try:
        ctx.cur.execute(f"DROP TABLE IF EXISTS {stage}")
    except Exception:  # the cursor may be closed after an interrupt; temp tables die with it
        pass


def run_named(ctx: Context, sql: str, temp: str, ref: TableRef) -> Any:
    """Run a statement on a lakesql TEMP table; errors name the user's table instead."""
    try:
        return ctx.run(sql)
    except E.Error as e:
        e.message = e.message.replace(temp, ref.name)
        e.args = (e.message,)
        raise


def exists_dir(path: str) -> bool:

    return os.path.isdir(path)
