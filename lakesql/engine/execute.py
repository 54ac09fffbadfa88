"""Statement executors: one function per statement kind, found through a table.

DuckDB runs every query. Writes to warehouse tables are computed by DuckDB and committed by
delta-rs in one Delta version:

* ``CREATE TABLE ... AS`` streams the query's record batches straight into the commit.
* ``INSERT`` and ``COPY ... FROM`` run the user's own statement against an empty staging table with
  the target's schema and constraints (so DuckDB's INSERT semantics hold exactly), then append it.
* ``UPDATE``, ``DELETE`` and ``MERGE`` run against a staging copy of the version they read, then
  replace the table's rows in one commit that conflicts with any commit made meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import TokenType

from lakesql import config
from lakesql import errors as E
from lakesql.catalog.warehouse import TableRef
from lakesql.dialect import expressions as lx
from lakesql.dialect.dialect import SPAN, LakeSQL
from lakesql.engine import bounds, rowid
from lakesql.engine.duckdb import COLLATE_KEY, guard_stream, quote
from lakesql.features import store as features
from lakesql.ml import inference
from lakesql.ml import statements as ml
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.session import Session


@dataclass
class Result:
    """What a statement produced: rows pending on a DuckDB cursor, or a row count."""

    cursor: Any | None = None  # DuckDB cursor whose pending result holds the rows
    rowcount: int = -1
    message: str = ""  # short status for the command line, e.g. "INSERT 3"


@dataclass
class Context:
    """One statement being executed."""

    session: Session
    cur: Any  # DuckDB cursor
    sql: str
    params: Any
    original: str = ""  # the statement as the user wrote it, when `sql` is an expansion of it

    @property
    def statement(self) -> str:
        """The text recorded in commit infos: what the user wrote."""
        return self.original or self.sql

    @property
    def engine(self) -> Any:
        return self.session.engine

    def rows(self, table: pa.Table) -> Result:
        """A result holding `table`'s rows."""
        name = "__lakesql_result"
        self.cur.register(name, table)
        self.engine.run(self.cur, f"SELECT * FROM {name}")
        return Result(cursor=self.cur, rowcount=table.num_rows)

    def run(self, sql: str, params: Any = None) -> Any:
        return self.engine.run(self.cur, sql, params)

    def lookup(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """The rows of lakesql's own query `sql` on the statement's cursor (not verified)."""
        self.session._internal(self.cur)
        return list(self.run(sql, params).fetchall())


Executor = Callable[[Context, Any], "Result | None"]
_NOT_MINE = None
# an executor returning None hands the statement to DuckDB unchanged
DEFAULT_KEY = "lakesql.default"  # Delta column metadata: the column's DEFAULT expression
DDL_KEY = "lakesql.ddl"  # column metadata: its definition as declared (when it has constraints)
GENERATED_KEY = "lakesql.generated"  # column metadata: its GENERATED expression (values stored)
TABLE_CONSTRAINTS_KEY = "lakesql.constraints"  # first column: JSON list of table constraints
INDEXES_KEY = "lakesql.indexes"  # first column: JSON list of {name, unique, on} (CREATE INDEX)


# -- helpers -------------------------------------------------------------------------------------


def _span(table: exp.Table) -> tuple[int, int]:
    """Character span [start, end) of a table name in the statement text."""
    parts = [p for p in table.parts if p.meta.get("start") is not None]
    if not parts:
        raise E.InternalError(f"no source position for table {table.sql()}")
    return min(p.meta["start"] for p in parts), max(p.meta["end"] for p in parts) + 1


def _splice(sql: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, text in sorted(edits, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def target_ref(ctx: Context, table: exp.Table) -> TableRef | None:
    """The warehouse table `table` names, or None when it names a DuckDB object (temp, attached)."""
    if table.catalog:
        return None
    if not table.db and ctx.session.is_temp_object(ctx.cur, table.name):
        return None
    ref = ctx.session.warehouse.ref(table.db or None, table.name)
    tx = ctx.session.transaction(ctx.cur)
    if tx is not None and ref in tx.tables:  # main.t in a transaction: its TEMP copy
        return None
    return ref


def _meta(f: pa.Field, key: str) -> str | None:
    value = (f.metadata or {}).get(key.encode())
    return value.decode() if value is not None else None


def _stage(ctx: Context, snap: delta.Snapshot, *, copy_rows: bool) -> str:
    """Create a TEMP staging table with the table's columns, constraints and indexes.

    A column declared with more than a type, NOT NULL and DEFAULT (PRIMARY KEY, UNIQUE, CHECK,
    COLLATE, GENERATED) keeps its definition as written in its metadata, and the table
    constraints are kept in the first column's: the staging table declares them all, so DuckDB
    enforces them on the statement exactly as on its own tables.
    """
    name = f"__lakesql_stage_{uuid.uuid4().hex[:12]}"
    _create_stage(ctx, snap.schema, name)
    if copy_rows:
        _copy_rows(ctx, snap, name)
    return name


def _create_stage(ctx: Context, schema: pa.Schema, name: str) -> None:
    """CREATE TEMP TABLE `name` (quoted as needed) as the Delta `schema` declares it."""
    types = ctx.engine.logical_types(schema)

    def column(f: pa.Field, t: str) -> str:
        declared = _meta(f, DDL_KEY)
        if declared is not None:
            return declared
        default = _meta(f, DEFAULT_KEY)
        return (
            f"{quote(f.name)} {t}{'' if f.nullable else ' NOT NULL'}"
            f"{f' DEFAULT {default}' if default else ''}"
        )

    items = [column(f, t) for f, t in zip(schema, types, strict=True)]
    first = schema[0] if len(schema) else None
    if first is not None:
        items += json.loads(_meta(first, TABLE_CONSTRAINTS_KEY) or "[]")
    ctx.run(f"CREATE TEMP TABLE {name} ({', '.join(items)})")
    for index in _indexes(schema):
        unique = "UNIQUE " if index["unique"] else ""
        ix = f"__lakesql_ix_{uuid.uuid4().hex[:12]}"
        ctx.run(f"CREATE {unique}INDEX {ix} ON {name} {index['on']}")


def _copy_rows(ctx: Context, snap: delta.Snapshot, stage: str) -> None:
    """Copy the snapshot's rows into a staging table (generated columns compute themselves)."""
    stored = [quote(f.name) for f in snap.schema if _meta(f, GENERATED_KEY) is None]
    cols = ", ".join(stored)
    ctx.run(f"INSERT INTO {stage} ({cols}) SELECT {cols} FROM {ctx.engine.version_view(snap)}")


def _indexes(schema: pa.Schema) -> list[dict[str, Any]]:
    first = schema[0] if len(schema) else None
    return json.loads(_meta(first, INDEXES_KEY) or "[]") if first is not None else []


def _has_unique(ctx: Context, stage: str, schema: pa.Schema) -> bool:
    """True when the staging table has a PRIMARY KEY, UNIQUE constraint or unique index: a write
    is then checked against the table's existing rows too."""
    if not any(_meta(f, k) for f in schema for k in (DDL_KEY, TABLE_CONSTRAINTS_KEY, INDEXES_KEY)):
        return False  # declared with types, NOT NULL and DEFAULT only
    row = ctx.run(
        "SELECT (SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? AND "
        "constraint_type IN ('PRIMARY KEY', 'UNIQUE')) + (SELECT count(*) FROM duckdb_indexes() "
        "WHERE table_name = ? AND is_unique)",
        [stage, stage],
    ).fetchone()
    return bool(row and row[0])


def _stored(ctx: Context, snap: delta.Snapshot, stage: str) -> str:
    """SELECT of a staging table's rows as the table stores them."""
    return ctx.engine.storage_select(snap.schema, stage)


def _as_query_text(ctx: Context, query: exp.Expr, columns: list[Column]) -> str:
    """The SELECT of `CREATE TABLE t (cols) AS query` as written, cast to the declared columns."""
    start, end = query.meta.get(SPAN, (None, None))
    text = ctx.sql[start:end] if start is not None else query.sql(dialect="duckdb")
    text = rewrite_for_duckdb(ctx, text)
    if columns:
        aliases = ", ".join(f"__c{i}" for i in range(len(columns)))
        casts = ", ".join(
            f"CAST(__c{i} AS {t}) AS {quote(n)}" for i, (n, t, _, _) in enumerate(columns)
        )
        text = f"SELECT {casts} FROM ({text}) AS __q({aliases})"
    return text


def _stream(ctx: Context, sql: str, params: Any = None) -> pa.RecordBatchReader:
    rows = ctx.session.settings["batch_rows"]
    return guard_stream(ctx.run(sql, params).to_arrow_reader(rows))


def _count(result: Any) -> int:
    row = result.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _run_on_stage(ctx: Context, sql: str, stage: str, ref: TableRef) -> int:
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


def _integer(node: exp.Expr, what: str) -> int:
    """The value of an integer literal (sqlglot reads `-5` as Neg(5)); errors say what is wrong."""
    negative = isinstance(node, exp.Neg)
    inner = node.this if negative else node
    if not isinstance(inner, exp.Literal) or inner.is_string or not inner.is_int:
        raise E.ProgrammingError(f"{what} must be an integer, not {node.sql(dialect=LakeSQL)}")
    return -int(inner.name) if negative else int(inner.name)


def _drop_stage(ctx: Context, stage: str) -> None:
    try:
        ctx.cur.execute(f"DROP TABLE IF EXISTS {stage}")
    except Exception:  # the cursor may be closed after an interrupt; temp tables die with it
        pass


# -- CREATE / DROP / ALTER -----------------------------------------------------------------------


def _create(ctx: Context, node: exp.Create) -> Result | None:
    kind = (node.args.get("kind") or "").upper()
    props = node.args.get("properties")
    temporary = bool(props and props.find(exp.TemporaryProperty))
    if kind == "SCHEMA":
        return _create_schema(ctx, node)
    if kind == "INDEX":
        return _create_index(ctx, node)
    target = node.this.this if isinstance(node.this, exp.Schema) else node.this
    if kind == "VIEW" and isinstance(target, exp.Table) and not temporary:
        ref = target_ref(ctx, target)
        if ref is not None and ctx.session.warehouse.exists(ref):
            raise E.ObjectExistsError(
                f"{ref.qualified!r} is a Delta table; a view cannot replace it"
            )
        return _NOT_MINE
    if kind != "TABLE" or temporary or not isinstance(target, exp.Table):
        return _NOT_MINE
    ref = target_ref(ctx, target)
    if ref is None:
        return _NOT_MINE
    wh = ctx.session.warehouse
    wh.require_schema(ref.schema)
    exists = wh.exists(ref)
    if exists and node.args.get("exists"):
        return Result(rowcount=0, message="CREATE TABLE (exists)")
    if exists and not node.args.get("replace"):
        raise E.ObjectExistsError(
            f"table {ref.qualified!r} already exists",
            hint="use CREATE OR REPLACE TABLE or IF NOT EXISTS",
        )
    partition_by: list[str] = []
    comment = None
    if props:
        for p in props.expressions:
            if isinstance(p, exp.PartitionedByProperty):
                inner = p.this
                items = inner.expressions if isinstance(inner, (exp.Schema, exp.Tuple)) else [inner]
                partition_by = [i.name for i in items]
            elif isinstance(p, exp.SchemaCommentProperty):
                comment = p.this.name
    columns, declared = _column_defs(ctx, node, target, ref)
    query = node.expression
    if query is None and not columns and declared is None:
        raise E.ProgrammingError("CREATE TABLE needs columns or AS query")
    operation = "CREATE OR REPLACE TABLE" if exists else "CREATE TABLE"
    created_dir = not exists
    try:
        if query is None:
            schema = _empty_schema(ctx, columns, declared)
            _check_partitions(partition_by, schema)
            if exists:
                empty = pa.RecordBatchReader.from_batches(schema, iter([]))
                delta.write(
                    ref.path,
                    empty,
                    mode="overwrite",
                    sql=ctx.statement,
                    operation=operation,
                    replace_schema=True,
                )
            else:
                delta.create_empty(
                    ref.path, schema, partition_by=partition_by, comment=comment, sql=ctx.statement
                )
        else:
            text = _as_query_text(ctx, query, columns)
            schema = ctx.engine.storage_schema(ctx.engine.describe(ctx.cur, text, ctx.params))
            if ctx.engine.converts(schema):
                text = ctx.engine.storage_select(schema, f"({text}) AS __q")
            reader = _stream(ctx, text, ctx.params)
            if columns:
                schema = pa.schema(
                    [
                        f.with_nullable(not nn)
                        for f, (_, _, nn, _) in zip(schema, columns, strict=True)
                    ]
                )
                schema = _with_defaults(ctx, schema, columns)
            _check_partitions(partition_by, schema)
            delta.write(
                ref.path,
                delta.conform(reader, schema),
                mode="overwrite" if exists else "error",
                sql=ctx.statement,
                operation=operation + " AS SELECT",
                partition_by=partition_by,
                comment=comment,
                replace_schema=exists,
            )
    except BaseException:
        if created_dir and not delta.is_table(ref.path):
            delta.remove_table(ref.path) if _exists_dir(ref.path) else None
        raise
    ctx.session.invalidate(ref)
    return Result(rowcount=-1, message=operation)


Column = tuple[str, str, bool, str | None]  # name, type, NOT NULL, DEFAULT


def _column_defs(
    ctx: Context, node: exp.Create, target: exp.Table, ref: TableRef
) -> tuple[list[Column], pa.Schema | None]:
    """The columns of CREATE TABLE t (...): plain (name, type, NOT NULL, DEFAULT) definitions, or
    the Delta schema of a declaration with constraints (see _declared_schema)."""
    columns: list[Column] = []
    if not isinstance(node.this, exp.Schema):
        return columns, None
    if node.expression is None and not _plain_columns(node.this):
        return columns, _declared_schema(ctx, node.this, target, ref)
    for col in node.this.expressions:
        if not isinstance(col, exp.ColumnDef):
            raise E.NotSupportedError(
                f"table constraint {col.sql(dialect=LakeSQL)!r} is not supported on Delta tables "
                "created with AS query",
                hint="create the table with its columns and constraints, then INSERT the query",
            )
        kind_node = col.args.get("kind")
        if kind_node is None:
            raise E.ProgrammingError(f"column {col.name!r} needs a type")
        not_null, default = _column_rules(col, ref)
        columns.append((col.name, kind_node.sql(dialect="duckdb"), not_null, default))
    return columns, None


def _empty_schema(ctx: Context, columns: list[Column], declared: pa.Schema | None) -> pa.Schema:
    """The Delta schema of CREATE TABLE t (columns)."""
    if declared is not None:
        return declared
    logical = ctx.engine.type_names(ctx.cur, [t for _, t, _, _ in columns])
    schema = ctx.engine.storage_schema([(c[0], t) for c, t in zip(columns, logical, strict=True)])
    schema = pa.schema(
        [f.with_nullable(not nn) for f, (_, _, nn, _) in zip(schema, columns, strict=True)]
    )
    return _with_defaults(ctx, schema, columns)


def _plain_columns(schema: exp.Schema) -> bool:
    """True when every column has a type and at most NOT NULL / NULL / DEFAULT."""
    for col in schema.expressions:
        if not isinstance(col, exp.ColumnDef) or col.args.get("kind") is None:
            return False
        for c in col.constraints:
            if not isinstance(c.kind, (exp.NotNullColumnConstraint, exp.DefaultColumnConstraint)):
                return False
    return True


def _column_list_items(sql: str, after: int) -> list[str]:
    """The comma-separated items of the parenthesized list that follows offset `after`, as written."""
    items: list[str] = []
    depth = 0
    start = -1
    for tok in LakeSQL().tokenize(sql):
        if tok.start < after:
            continue
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
            if depth == 1:
                start = tok.end + 1
                continue
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                items.append(sql[start : tok.start].strip())
                return items
        elif tok.token_type == TokenType.COMMA and depth == 1:
            items.append(sql[start : tok.start].strip())
            start = tok.end + 1
    raise E.InternalError("could not locate the column list of CREATE TABLE")


def _declared_schema(
    ctx: Context, columns: exp.Schema, target: exp.Table, ref: TableRef
) -> pa.Schema:
    """The Delta schema of `CREATE TABLE t (...)` declaring constraints, collations or generated
    columns: DuckDB checks the declaration (creating a TEMP table of it), and each column keeps
    its definition as written, the table constraints their text, in the Delta metadata.

    REFERENCES cannot be kept: a foreign key needs the other table's index, which a Delta table
    read through a view does not have (DuckDB refuses it).
    """
    items = _column_list_items(ctx.sql, _span(target)[1])
    if len(items) != len(columns.expressions):
        raise E.InternalError("the column list of CREATE TABLE was not read as written")
    probe = f"__lakesql_ddl_{uuid.uuid4().hex[:12]}"
    try:
        _run_named(ctx, f"CREATE TEMP TABLE {probe} ({', '.join(items)})", probe, ref)
        described = ctx.run(f"DESCRIBE {probe}").fetchall()
    finally:
        _drop_stage(ctx, probe)
    schema = ctx.engine.storage_schema([(r[0], r[1]) for r in described])
    texts: dict[str, str] = {}
    generated: dict[str, str] = {}
    collations: dict[str, str] = {}
    constraints: list[str] = []
    for item, node in zip(items, columns.expressions, strict=True):
        if not isinstance(node, exp.ColumnDef):
            constraints.append(item)
            continue
        texts[node.name.lower()] = item
        for c in node.constraints:
            if isinstance(c.kind, exp.CollateColumnConstraint):
                collations[node.name.lower()] = c.kind.this.sql(dialect="duckdb")
            elif isinstance(
                c.kind, (exp.GeneratedAsIdentityColumnConstraint, exp.ComputedColumnConstraint)
            ):
                generated[node.name.lower()] = c.kind.sql(dialect="duckdb")
    fields = []
    for i, (f, row) in enumerate(zip(schema, described, strict=True)):
        meta = dict(f.metadata or {})
        key = f.name.lower()
        meta[DDL_KEY.encode()] = texts[key].encode()
        if key in generated:
            meta[GENERATED_KEY.encode()] = generated[key].encode()
        if key in collations:
            meta[COLLATE_KEY.encode()] = collations[key].encode()
        if i == 0 and constraints:
            meta[TABLE_CONSTRAINTS_KEY.encode()] = json.dumps(constraints).encode()
        fields.append(f.with_nullable(row[2] != "NO").with_metadata(meta))
    return pa.schema(fields)


def _run_named(ctx: Context, sql: str, temp: str, ref: TableRef) -> Any:
    """Run a statement on a lakesql TEMP table; errors name the user's table instead."""
    try:
        return ctx.run(sql)
    except E.Error as e:
        e.message = e.message.replace(temp, ref.name)
        e.args = (e.message,)
        raise


def _column_rules(col: exp.ColumnDef, ref: TableRef) -> tuple[bool, str | None]:
    """(NOT NULL?, DEFAULT expression) of a column definition; other constraints are refused.

    A Delta table keeps column types, nullability and (in the column's metadata) its DEFAULT: a
    PRIMARY KEY, UNIQUE, CHECK, COLLATE, REFERENCES or GENERATED clause accepted and then ignored
    would silently change what later statements do, so it is an error that says so.
    """
    not_null = False
    default = None
    for c in col.constraints:
        if isinstance(c.kind, exp.NotNullColumnConstraint):
            not_null = not c.kind.args.get("allow_null")
            continue
        if isinstance(c.kind, exp.DefaultColumnConstraint):
            default = c.kind.this.sql(dialect="duckdb")
            continue
        raise E.NotSupportedError(
            f"column constraint {c.sql(dialect=LakeSQL)!r} of column {col.name!r} is not "
            f"supported on Delta table {ref.qualified!r}: Delta tables keep types, NOT NULL and DEFAULT only",
            hint="declare the column without it (enforce the rule in the statements that write "
            "the table), or use CREATE TEMP TABLE for a DuckDB table that lives in this session",
        )
    return not_null, default


def _with_defaults(
    ctx: Context, schema: pa.Schema, columns: list[tuple[str, str, bool, str | None]]
) -> pa.Schema:
    """`schema` with each column's DEFAULT kept in its field metadata (checked against its type)."""
    fields = []
    for f, (name, typ, _, default) in zip(schema, columns, strict=True):
        if default is not None:
            try:
                ctx.run(f"SELECT CAST(({default}) AS {typ})")
            except E.Error as e:
                raise type(e)(
                    f"DEFAULT {default} of column {name!r} does not fit {typ}: {e.message}"
                ) from e
            f = f.with_metadata({**(f.metadata or {}), DEFAULT_KEY: default})
        fields.append(f)
    return pa.schema(fields)


def _exists_dir(path: str) -> bool:
    import os

    return os.path.isdir(path)


def _check_partitions(partition_by: list[str], schema: pa.Schema) -> None:
    for col in partition_by:
        if col not in schema.names:
            raise E.ProgrammingError(
                f"partition column {col!r} is not a column of the table",
                hint=E.suggest(col, schema.names) or f"columns: {', '.join(schema.names)}",
            )


def _create_index(ctx: Context, node: exp.Create) -> Result | None:
    """CREATE [UNIQUE] INDEX on a Delta table: kept in its metadata and declared on every staging
    table, so a UNIQUE index is enforced on every write (an index does not speed up reads here).
    """
    index = node.this
    table = index.args.get("table") if isinstance(index, exp.Index) else None
    if not isinstance(table, exp.Table):
        return _NOT_MINE
    ref = target_ref(ctx, table)
    wh = ctx.session.warehouse
    if ref is None or not wh.exists(ref):
        return _NOT_MINE
    name = index.name
    if _index_owner(ctx, ref.schema, name) is not None:
        if node.args.get("exists"):
            return Result(message="CREATE INDEX")
        raise E.CatalogError(f'Catalog Error: Index with name "{name}" already exists!')
    on = ctx.sql[_span(table)[1] :].strip().rstrip(";").strip()
    unique = bool(node.args.get("unique"))
    snap = delta.snapshot(ref.path)
    stage = _stage(ctx, snap, copy_rows=True)  # DuckDB checks the index on the existing rows
    try:
        _run_named(
            ctx,
            f"CREATE {'UNIQUE ' if unique else ''}INDEX {stage}_new ON {stage} {on}",
            stage,
            ref,
        )
    finally:
        _drop_stage(ctx, stage)
    indexes = [*_indexes(snap.schema), {"name": name, "unique": unique, "on": on}]
    return _store_indexes(ctx, ref, snap, indexes, "CREATE INDEX")


def _store_indexes(
    ctx: Context, ref: TableRef, snap: delta.Snapshot, indexes: list[dict[str, Any]], operation: str
) -> Result:
    """Commit the table's index list (kept in its first field's metadata) as `operation`."""
    delta.set_field_metadata(
        ref.path,
        snap.schema[0].name,
        {INDEXES_KEY: json.dumps(indexes)},
        sql=ctx.statement,
        operation=operation,
    )
    ctx.session.invalidate(ref)
    return Result(message=operation)


def _index_owner(ctx: Context, schema: str, name: str) -> tuple[TableRef, delta.Snapshot] | None:
    """The Delta table of `schema` that has index `name` (index names are unique in a schema)."""
    wh = ctx.session.warehouse
    for table in wh.tables(schema):
        ref = wh.ref(schema, table)
        try:
            snap = delta.snapshot(ref.path)
        except E.Error:
            continue
        if any(i["name"].lower() == name.lower() for i in _indexes(snap.schema)):
            return ref, snap
    return None


def _drop_index(ctx: Context, node: exp.Drop) -> Result | None:
    tables = node.args.get("tables") or node.expressions or [node.this]
    if len(tables) != 1 or not isinstance(tables[0], exp.Table) or tables[0].catalog:
        return _NOT_MINE
    target = tables[0]
    schema = (target.db or "main").lower()
    if schema not in ctx.session.warehouse.schemas():
        return _NOT_MINE
    owner = _index_owner(ctx, schema, target.name)
    if owner is None:
        return _NOT_MINE  # DuckDB's own (TEMP) index, or DuckDB's error that it does not exist
    ref, snap = owner
    indexes = [i for i in _indexes(snap.schema) if i["name"].lower() != target.name.lower()]
    return _store_indexes(ctx, ref, snap, indexes, "DROP INDEX")


def _create_schema(ctx: Context, node: exp.Create) -> Result:
    target = node.this
    name = target.db or target.name if isinstance(target, exp.Table) else target.name
    ctx.session.warehouse.create_schema(name, if_not_exists=bool(node.args.get("exists")))
    ctx.engine.ensure_schema(name.lower())
    return Result(message="CREATE SCHEMA")


def _drop(ctx: Context, node: exp.Drop) -> Result | None:
    kind = (node.args.get("kind") or "").upper()
    wh = ctx.session.warehouse
    # sqlglot keeps DROP's targets in `tables` (older releases: `this` / `expressions`)
    tables = node.args.get("tables") or node.expressions or [node.this]
    if kind == "SCHEMA":
        target = tables[0]
        name = target.db or target.name if isinstance(target, exp.Table) else target.name
        dropped = wh.drop_schema(
            name, cascade=bool(node.args.get("cascade")), if_exists=bool(node.args.get("exists"))
        )
        if dropped:
            ctx.session.forget_schema(name.lower())
        return Result(message="DROP SCHEMA")
    if kind == "INDEX":
        return _drop_index(ctx, node)
    if kind not in {"TABLE", "VIEW"} or node.args.get("temporary"):
        return _NOT_MINE
    refs = []
    for table in tables:
        if not isinstance(table, exp.Table):
            return _NOT_MINE
        ref = target_ref(ctx, table)
        if ref is None or (kind == "VIEW" and not wh.exists(ref)):
            return _NOT_MINE
        refs.append(ref)
    if kind == "VIEW":
        raise E.ProgrammingError(
            f"{refs[0].qualified!r} is a Delta table, not a view", hint="use DROP TABLE"
        )
    for ref in refs:
        if features.get(ctx.session, ref) is not None:
            raise E.ProgrammingError(
                f"{ref.qualified!r} is a feature table",
                hint=f"use DROP FEATURE TABLE {ref.qualified}",
            )
    for ref in refs:
        if not wh.exists(ref):
            if node.args.get("exists"):
                continue
            wh.require(ref)
        delta.remove_table(ref.path)
        ctx.session.invalidate(ref)
    return Result(message="DROP TABLE")


def _alter(ctx: Context, node: exp.Alter) -> Result | None:
    if (node.args.get("kind") or "").upper() != "TABLE" or not isinstance(node.this, exp.Table):
        return _NOT_MINE
    ref = target_ref(ctx, node.this)
    if ref is None:
        return _NOT_MINE
    wh = ctx.session.warehouse
    if not wh.exists(ref):
        if node.args.get("exists"):
            return Result(message="ALTER TABLE")
        wh.require(ref)
    actions = node.args.get("actions") or []
    if all(isinstance(a, exp.ColumnDef) for a in actions) and actions:
        snap = delta.snapshot(ref.path)
        existing = {n.lower() for n in snap.schema.names}
        cols = []
        for a in actions:
            if a.name.lower() in existing:
                raise E.ObjectExistsError(f"column {a.name!r} already exists in {ref.qualified!r}")
            not_null, default = _column_rules(a, ref)
            if not_null:
                raise E.NotSupportedError("a column added to an existing table must allow NULL")
            if default is not None:
                raise E.NotSupportedError(
                    "ADD COLUMN ... DEFAULT is not supported: the existing rows would need rewriting",
                    hint="add the column, then UPDATE t SET c = <value>",
                )
            cols.append((a.name, a.args["kind"].sql(dialect="duckdb")))
        logical = ctx.engine.type_names(ctx.cur, [t for _, t in cols])
        schema = ctx.engine.storage_schema(
            [(n, t) for (n, _), t in zip(cols, logical, strict=True)]
        )
        delta.add_columns(ref.path, schema, sql=ctx.statement)
        ctx.session.invalidate(ref)
        return Result(message="ALTER TABLE")
    if len(actions) == 1 and isinstance(actions[0], exp.AlterRename):
        new = actions[0].this
        new_ref = wh.ref(new.db or ref.schema, new.name)
        wh.require_schema(new_ref.schema)
        if wh.exists(new_ref) or _exists_dir(new_ref.path):
            raise E.ObjectExistsError(f"table {new_ref.qualified!r} already exists")
        if features.get(ctx.session, ref) is not None:
            raise E.NotSupportedError(
                f"{ref.qualified!r} is a feature table; it cannot be renamed",
                hint="create it again under the new name with CREATE FEATURE TABLE",
            )
        import os

        try:
            os.rename(ref.path, new_ref.path)
        except OSError as e:
            raise E.OperationalError(f"cannot rename {ref.qualified!r}: {e}") from e
        ctx.session.invalidate(ref)
        ctx.session.invalidate(new_ref)
        return Result(message="ALTER TABLE")
    raise E.NotSupportedError(
        f"ALTER TABLE {node.sql(dialect=LakeSQL)!r} is not supported",
        hint="supported: ALTER TABLE t ADD COLUMN c type; ALTER TABLE t RENAME TO t2",
    )


# -- DML -----------------------------------------------------------------------------------------


def _insert(ctx: Context, node: exp.Insert) -> Result | None:
    table = node.this
    if isinstance(table, exp.Schema):
        table = table.this
    if not isinstance(table, exp.Table):
        return _NOT_MINE
    ref = target_ref(ctx, table)
    if ref is None:
        return _NOT_MINE
    ctx.session.warehouse.require(ref)
    overwrite = bool(node.args.get("overwrite"))
    snap = delta.snapshot(ref.path)
    stage = _stage(ctx, snap, copy_rows=False)
    try:
        # With a PRIMARY KEY / UNIQUE, the new rows are checked against the existing ones (and
        # ON CONFLICT / INSERT OR REPLACE act on them): the staging table holds the table's rows,
        # and the table is rewritten.
        whole = not overwrite and _has_unique(ctx, stage, snap.schema)
        if whole:
            _copy_rows(ctx, snap, stage)
        start, end = _span(table)
        if overwrite:
            text = _splice(ctx.sql, [(0, end, f"INSERT INTO {stage}")])
        else:
            alias = (
                "" if table.alias or not node.args.get("conflict") else f" AS {quote(table.name)}"
            )
            text = _splice(ctx.sql, [(start, end, stage + alias)])
        count = _run_on_stage(ctx, text, stage, ref)
        if count == 0 and not overwrite:
            return Result(rowcount=0, message="INSERT 0")
        operation = "INSERT OVERWRITE" if overwrite else "INSERT"

        def rows() -> pa.RecordBatchReader:
            return delta.conform(_stream(ctx, _stored(ctx, snap, stage)), snap.schema)

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
        _drop_stage(ctx, stage)
    ctx.session.invalidate(ref)
    return Result(rowcount=count, message=f"{operation} {count}")


def _reads_table(node: exp.Insert, ref: TableRef) -> bool:
    """True when the INSERT's query names its target table (or anything of that name)."""
    query = node.expression
    if query is None:
        return False
    return any(t.name.lower() == ref.name for t in query.find_all(exp.Table))


def _copy(ctx: Context, node: exp.Copy) -> Result | None:
    table = node.this
    if not node.args.get("kind") or not isinstance(table, exp.Table):  # COPY ... TO: a read
        return _NOT_MINE
    ref = target_ref(ctx, table)
    if ref is None:
        return _NOT_MINE
    ctx.session.warehouse.require(ref)
    snap = delta.snapshot(ref.path)
    stage = _stage(ctx, snap, copy_rows=False)
    try:
        whole = _has_unique(
            ctx, stage, snap.schema
        )  # checked against the existing rows: see _insert
        if whole:
            _copy_rows(ctx, snap, stage)
        start, end = _span(table)
        count = _run_on_stage(ctx, _splice(ctx.sql, [(start, end, stage)]), stage, ref)
        if count and whole:
            delta.write(
                ref.path,
                delta.conform(_stream(ctx, _stored(ctx, snap, stage)), snap.schema),
                mode="overwrite",
                sql=ctx.statement,
                operation="COPY",
                read_version=snap.version,
            )
        elif count:
            delta.append(
                ref.path,
                lambda: delta.conform(_stream(ctx, _stored(ctx, snap, stage)), snap.schema),
                sql=ctx.statement,
                operation="COPY",
            )
    finally:
        _drop_stage(ctx, stage)
    ctx.session.invalidate(ref)
    return Result(rowcount=count, message=f"COPY {count}")


def _rewrite(
    ctx: Context, node: exp.Update | exp.Delete | exp.Merge, operation: str
) -> Result | None:
    table = node.this
    if not isinstance(table, exp.Table):
        return _NOT_MINE
    ref = target_ref(ctx, table)
    if ref is None:
        return _NOT_MINE
    ctx.session.warehouse.require(ref)
    snap = delta.snapshot(ref.path)
    stage = _stage(ctx, snap, copy_rows=True)
    try:
        start, end = _span(table)
        alias = "" if table.alias else f" AS {quote(table.name)}"
        count = _run_on_stage(ctx, _splice(ctx.sql, [(start, end, stage + alias)]), stage, ref)
        if count:
            reader = delta.conform(_stream(ctx, _stored(ctx, snap, stage)), snap.schema)
            delta.write(
                ref.path,
                reader,
                mode="overwrite",
                sql=ctx.statement,
                operation=operation,
                read_version=snap.version,
            )
    finally:
        _drop_stage(ctx, stage)
    ctx.session.invalidate(ref)
    return Result(rowcount=count, message=f"{operation} {count}")


def _update(ctx: Context, node: exp.Update) -> Result | None:
    return _rewrite(ctx, node, "UPDATE")


def _delete(ctx: Context, node: exp.Delete) -> Result | None:
    return _rewrite(ctx, node, "DELETE")


def _merge(ctx: Context, node: exp.Merge) -> Result | None:
    return _rewrite(ctx, node, "MERGE")


# -- Delta maintenance and inspection ------------------------------------------------------------


def _table_of(ctx: Context, table: exp.Table) -> TableRef:
    ref = ctx.session.warehouse.ref(table.db or None, table.name)
    return ctx.session.warehouse.require(ref)


def _describe_history(ctx: Context, node: lx.DescribeHistory) -> Result:
    ref = _table_of(ctx, node.this)
    rows = []
    for h in delta.history(ref.path):
        rows.append(
            {
                "version": int(h.get("version", -1)),
                "timestamp": dt.datetime.fromtimestamp(h.get("timestamp", 0) / 1000, tz=dt.UTC),
                "operation": h.get(delta.OPERATION_KEY) or h.get("operation"),
                "operation_parameters": json.dumps(
                    h.get("operationParameters") or {}, sort_keys=True
                ),
                "operation_metrics": json.dumps(h.get("operationMetrics") or {}, sort_keys=True),
                "sql": h.get(delta.SQL_KEY),
                "engine": h.get("engineInfo") or h.get("clientVersion"),
            }
        )
    schema = pa.schema(
        [
            ("version", pa.int64()),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("operation", pa.string()),
            ("operation_parameters", pa.string()),
            ("operation_metrics", pa.string()),
            ("sql", pa.string()),
            ("engine", pa.string()),
        ]
    )
    return ctx.rows(pa.Table.from_pylist(rows, schema=schema))


def _restore(ctx: Context, node: lx.RestoreTable) -> Result:
    ref = _table_of(ctx, node.this)
    version = node.args.get("version")
    target: int | str = (
        _integer(version, "RESTORE ... VERSION AS OF")
        if version is not None
        else node.args["timestamp"].name
    )
    if isinstance(target, int) and target < 0:
        raise E.ProgrammingError(f"VERSION AS OF needs a version number >= 0, not {target}")
    if isinstance(target, str):
        target = _timestamp(target).isoformat()
    delta.restore(ref.path, target, sql=ctx.statement)
    ctx.session.invalidate(ref)
    return Result(message="RESTORE")


def _optimize(ctx: Context, node: lx.Optimize) -> Result:
    ref = _table_of(ctx, node.this)
    zorder = [c.name for c in node.args.get("zorder") or []]
    names = delta.snapshot(ref.path).schema.names
    for c in zorder:
        if c not in names:
            raise E.ProgrammingError(
                f"ZORDER column {c!r} is not in {ref.qualified!r}", hint=E.suggest(c, names)
            )
    metrics = delta.optimize(ref.path, zorder, sql=ctx.statement)
    ctx.session.invalidate(ref)
    keep = {
        k: metrics.get(k)
        for k in ("numFilesAdded", "numFilesRemoved", "totalConsideredFiles", "totalFilesSkipped")
    }
    return ctx.rows(pa.Table.from_pylist([{"metric": k, "value": v} for k, v in keep.items()]))


def _vacuum(ctx: Context, node: lx.Vacuum) -> Result:
    ref = _table_of(ctx, node.this)
    retain = node.args.get("retain")
    hours = _integer(retain, "VACUUM ... RETAIN") if retain is not None else None
    if hours is not None and hours < 0:
        raise E.ProgrammingError("RETAIN needs a number of hours >= 0")
    files = delta.vacuum(ref.path, hours, dry_run=bool(node.args.get("dry_run")), sql=ctx.statement)
    ctx.session.invalidate(ref)
    return ctx.rows(pa.table({"path": pa.array(sorted(files), pa.string())}))


def _show_tables(ctx: Context, node: lx.ShowTables) -> Result:
    wh = ctx.session.warehouse
    schema = node.args.get("this")
    schemas = [wh.require_schema(schema.name)] if schema else wh.schemas()
    rows = [{"schema": s, "name": t} for s in schemas for t in wh.tables(s)]
    return ctx.rows(
        pa.Table.from_pylist(
            rows, schema=pa.schema([("schema", pa.string()), ("name", pa.string())])
        )
    )


def _show_schemas(ctx: Context, node: lx.ShowSchemas) -> Result:
    return ctx.rows(pa.table({"schema": pa.array(ctx.session.warehouse.schemas(), pa.string())}))


def _describe(ctx: Context, node: exp.Describe) -> Result | None:
    table = node.this
    if not isinstance(table, exp.Table) or node.args.get("kind") or node.args.get("style"):
        return _NOT_MINE
    ref = target_ref(ctx, table)
    if ref is None or not ctx.session.warehouse.exists(ref):
        return _NOT_MINE
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


# -- functions and settings ----------------------------------------------------------------------


def _create_function(ctx: Context, node: lx.CreatePythonFunction) -> Result:
    params = []
    for p in node.args.get("params") or []:
        kind = p.args.get("kind") if isinstance(p, exp.ColumnDef) else None
        if kind is None:
            raise E.ProgrammingError(
                f"parameter {p.sql(dialect=LakeSQL)!r} of function {node.name!r} needs a type",
                hint="write parameters as name TYPE, e.g. f(x DOUBLE, label VARCHAR)",
            )
        params.append(kind.sql(dialect="duckdb"))
    ctx.session.create_function(
        node.name,
        params=params,
        returns=node.args["returns"].sql(dialect="duckdb"),
        target=node.args["target"].name,
        replace=bool(node.args.get("replace")),
        sql=ctx.statement,
    )
    return Result(message="CREATE FUNCTION")


def _drop_function(ctx: Context, node: lx.DropFunction) -> Result:
    ctx.session.drop_function(node.name, if_exists=bool(node.args.get("exists")))
    return Result(message="DROP FUNCTION")


def _show_functions(ctx: Context, node: lx.ShowFunctions) -> Result:
    return ctx.rows(ctx.session.functions_table())


def _set_setting(ctx: Context, node: lx.SetSetting) -> Result:
    value = node.expression
    raw: Any = (
        value.name
        if isinstance(value, (exp.Literal, exp.Identifier, exp.Var, exp.Column))
        else value.sql()
    )
    if isinstance(value, exp.Boolean):
        raw = value.this
    ctx.session.set(node.name, raw)
    return Result(message="SET")


def _reset_setting(ctx: Context, node: lx.ResetSetting) -> Result:
    ctx.session.reset(node.name)
    return Result(message="RESET")


def _show_settings(ctx: Context, node: lx.ShowSettings) -> Result:
    rows = [
        {
            "name": f"lakesql.{k}",
            "value": None if v is None else str(v),
            "description": config.SETTINGS[k].help,
        }
        for k, v in sorted(ctx.session.settings.items())
    ]
    return ctx.rows(
        pa.Table.from_pylist(
            rows, schema=pa.schema([(c, pa.string()) for c in ("name", "value", "description")])
        )
    )


# -- transactions --------------------------------------------------------------------------------


@dataclass
class Transaction:
    """BEGIN ... COMMIT on one cursor: the table it writes is a TEMP copy until COMMIT.

    The first write to a warehouse table copies the version it reads into a TEMP table of the
    same name, declared like the Delta table (constraints, defaults, indexes); as a TEMP table
    hides the view of that name, every later statement of the cursor reads and writes the copy,
    with DuckDB's own semantics. COMMIT writes the copy to the Delta table in one commit that
    conflicts with any commit made to the table since the copy was taken; ROLLBACK drops it.
    Other cursors and sessions see none of it until COMMIT. Delta commits are per table, so a
    transaction can write several tables (of the main schema, named without schema or as
    main.t), but only COMMIT one of them: with more, COMMIT fails and rolls back.
    """

    cur: Any
    tables: dict[TableRef, Pending] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)


@dataclass
class Pending:
    """A table written in a transaction, as a TEMP table of its name."""

    snap: delta.Snapshot | None  # the version copied; None when created in the transaction
    schema: pa.Schema  # its Delta schema


_TX_REFUSED = (
    lx.RestoreTable,
    lx.Optimize,
    lx.Vacuum,
    lx.CreateFeatureTable,
    lx.RefreshFeatureTable,
    lx.DropFeatureTable,
    lx.TrainAutoML,
    lx.PredictInto,
    lx.RetrainModel,
    lx.DropModel,
    lx.AlterModelAlias,
    lx.CreatePythonFunction,
    lx.DropFunction,
)


def _transaction(ctx: Context, node: exp.Transaction) -> Result:
    return begin(ctx)


def begin(ctx: Context) -> Result:
    if ctx.session.transaction(ctx.cur) is not None:
        raise E.ProgrammingError(
            "TransactionContext Error: cannot start a transaction within a transaction"
        )
    ctx.session.set_transaction(ctx.cur, Transaction(ctx.cur))
    return Result(message="BEGIN")


def in_transaction(ctx: Context, tx: Transaction, node: exp.Expr) -> Result | None:
    """Prepare statement `node` of an open transaction: copy the table it is about to write, or
    create a new table as a TEMP table; None lets the statement run as usual (on the copy)."""
    if isinstance(node, _TX_REFUSED):
        raise E.NotSupportedError(
            f"{type(node).__name__} cannot run inside a transaction",
            hint="COMMIT or ROLLBACK first",
        )
    table: Any = None
    if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        table = node.this.this if isinstance(node.this, exp.Schema) else node.this
    elif isinstance(node, exp.Copy) and node.args.get("kind"):
        table = node.this
    elif isinstance(node, exp.Create) and (node.args.get("kind") or "").upper() == "TABLE":
        return _create_in_transaction(ctx, tx, node)
    elif isinstance(node, (exp.Drop, exp.Alter, exp.Create)):
        _refuse_ddl_in_transaction(ctx, tx, node)
        return None
    if not isinstance(table, exp.Table):
        return None
    ref = target_ref(ctx, table)
    if ref is None:  # the transaction's copy (a TEMP table) or a DuckDB object
        return None
    wh = ctx.session.warehouse
    if not wh.exists(ref):
        return None  # DuckDB's error for a missing table
    _main_schema_only(ref)
    snap = delta.snapshot(ref.path)
    _create_stage(ctx, snap.schema, quote(ref.name))
    try:
        _copy_rows(ctx, snap, quote(ref.name))
    except BaseException:
        _drop_stage(ctx, quote(ref.name))
        raise
    tx.tables[ref] = Pending(snap, snap.schema)
    return None


def _refuse_ddl_in_transaction(ctx: Context, tx: Transaction, node: exp.Expr) -> None:
    """DROP / ALTER / CREATE INDEX of a Delta table commit at once: refused in a transaction."""
    kind = (node.args.get("kind") or "").upper()
    targets: list[Any]
    if isinstance(node, exp.Drop):
        targets = node.args.get("tables") or node.expressions or [node.this]
        if kind == "INDEX":
            if any(
                isinstance(t, exp.Table) and _index_owner(ctx, t.db or "main", t.name) is not None
                for t in targets
            ):
                raise E.NotSupportedError(
                    "DROP INDEX of a Delta table cannot run inside a transaction",
                    hint="COMMIT or ROLLBACK first",
                )
            return
        if kind not in {"TABLE", "VIEW"}:
            return
    elif isinstance(node, exp.Create):
        if kind != "INDEX":
            return
        targets = [node.this.args.get("table")]
    else:
        targets = [node.this]
    for t in targets:
        if isinstance(t, exp.Table) and _warehouse_or_copy(ctx, tx, t):
            raise E.NotSupportedError(
                f"{node.key.upper()} {kind} of a Delta table cannot run inside a transaction",
                hint="COMMIT or ROLLBACK first",
            )


def _warehouse_or_copy(ctx: Context, tx: Transaction, table: exp.Table) -> bool:
    if not table.catalog and any(table.name.lower() == r.name for r in tx.tables):
        return True
    ref = target_ref(ctx, table)
    return ref is not None and ctx.session.warehouse.exists(ref)


def _main_schema_only(ref: TableRef) -> None:
    if ref.schema != "main":
        raise E.NotSupportedError(
            "a transaction can write tables of the main schema only",
            hint="COMMIT or ROLLBACK, then write the table outside a transaction",
        )


def _create_in_transaction(ctx: Context, tx: Transaction, node: exp.Create) -> Result | None:
    props = node.args.get("properties")
    if props and props.find(exp.TemporaryProperty):
        return None
    target = node.this.this if isinstance(node.this, exp.Schema) else node.this
    if not isinstance(target, exp.Table):
        return None
    ref = target_ref(ctx, target)
    if ref is None:
        if any(target.name.lower() == r.name for r in tx.tables):
            raise E.ObjectExistsError(
                f"table {target.name!r} was created or written in this transaction",
                hint="ROLLBACK to start over",
            )
        return None
    if props and any(
        isinstance(p, (exp.PartitionedByProperty, exp.SchemaCommentProperty))
        for p in props.expressions
    ):
        raise E.NotSupportedError(
            "CREATE TABLE ... PARTITIONED BY / COMMENT cannot run inside a transaction",
            hint="COMMIT or ROLLBACK first",
        )
    if ctx.session.warehouse.exists(ref):
        if node.args.get("exists"):
            return Result(rowcount=0, message="CREATE TABLE (exists)")
        if node.args.get("replace"):
            raise E.NotSupportedError("CREATE OR REPLACE TABLE cannot run inside a transaction")
        raise E.ObjectExistsError(
            f"table {ref.qualified!r} already exists",
            hint="use CREATE OR REPLACE TABLE or IF NOT EXISTS",
        )
    ctx.session.warehouse.require_schema(ref.schema)
    _main_schema_only(ref)
    columns, declared = _column_defs(ctx, node, target, ref)
    query = node.expression
    name = quote(ref.name)
    if query is None:
        schema = _empty_schema(ctx, columns, declared)
        _create_stage(ctx, schema, name)
    else:
        text = _as_query_text(ctx, query, columns)
        schema = ctx.engine.storage_schema(ctx.engine.describe(ctx.cur, text, ctx.params))
        if columns:
            schema = pa.schema(
                [f.with_nullable(not nn) for f, (_, _, nn, _) in zip(schema, columns, strict=True)]
            )
            schema = _with_defaults(ctx, schema, columns)
        _create_stage(ctx, schema, name)
        try:
            ctx.run(f"INSERT INTO {name} {text}", ctx.params)
        except BaseException:
            _drop_stage(ctx, name)
            raise
    tx.tables[ref] = Pending(None, schema)
    return Result(rowcount=-1, message="CREATE TABLE")


def commit(ctx: Context) -> Result:
    """COMMIT: write the transaction's table to Delta in one commit (nothing when it wrote none)."""
    tx = ctx.session.transaction(ctx.cur)
    if tx is None:
        raise E.ProgrammingError(
            "TransactionContext Error: cannot commit - no transaction is active"
        )
    if len(tx.tables) > 1:
        rollback(ctx)
        names = ", ".join(sorted(r.qualified for r in tx.tables))
        raise E.NotSupportedError(
            f"COMMIT of a transaction that wrote several tables ({names}) is not supported: "
            "Delta commits each table on its own, so they could not all commit or none; "
            "the transaction was rolled back",
            hint="write one table per transaction",
        )
    ctx.session.set_transaction(ctx.cur, None)
    if not tx.tables:
        return Result(message="COMMIT")
    ((ref, pending),) = tx.tables.items()
    name = f"temp.main.{quote(ref.name)}"
    sql = ";\n".join(tx.statements)
    try:
        if pending.snap is not None:
            snap = pending.snap
            delta.write(
                ref.path,
                delta.conform(_stream(ctx, _stored(ctx, snap, name)), snap.schema),
                mode="overwrite",
                sql=sql,
                operation="COMMIT",
                read_version=snap.version,
            )
        else:
            schema = pending.schema
            select = ctx.engine.storage_select(schema, name)
            created = not _exists_dir(ref.path)
            try:
                delta.write(
                    ref.path,
                    delta.conform(_stream(ctx, select), schema),
                    mode="error",
                    sql=sql,
                    operation="COMMIT",
                )
            except BaseException:
                if created and not delta.is_table(ref.path) and _exists_dir(ref.path):
                    delta.remove_table(ref.path)
                raise
    finally:
        _drop_stage(ctx, name)
        ctx.session.invalidate(ref)
    return Result(message="COMMIT")


def rollback(ctx: Context) -> Result:
    tx = ctx.session.transaction(ctx.cur)
    if tx is None:
        raise E.ProgrammingError(
            "TransactionContext Error: cannot rollback - no transaction is active"
        )
    ctx.session.set_transaction(ctx.cur, None)
    for ref in tx.tables:
        _drop_stage(ctx, f"temp.main.{quote(ref.name)}")
    return Result(message="ROLLBACK")


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise E.DataError(
            f"invalid timestamp {text!r}", hint="write it as 'YYYY-MM-DD HH:MM:SS'"
        ) from e
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# The statement table: node class -> executor (first match wins).
EXECUTORS: list[tuple[type[exp.Expr], Executor]] = [
    (exp.Create, _create),
    (exp.Drop, _drop),
    (exp.Alter, _alter),
    (exp.Insert, _insert),
    (exp.Copy, _copy),
    (exp.Update, _update),
    (exp.Delete, _delete),
    (exp.Merge, _merge),
    (exp.Describe, _describe),
    (exp.Transaction, _transaction),
    (lx.DescribeHistory, _describe_history),
    (lx.RestoreTable, _restore),
    (lx.Optimize, _optimize),
    (lx.Vacuum, _vacuum),
    (lx.ShowTables, _show_tables),
    (lx.ShowSchemas, _show_schemas),
    (lx.CreatePythonFunction, _create_function),
    (lx.DropFunction, _drop_function),
    (lx.ShowFunctions, _show_functions),
    (lx.SetSetting, _set_setting),
    (lx.ResetSetting, _reset_setting),
    (lx.ShowSettings, _show_settings),
    (lx.TrainAutoML, ml.train),
    (lx.PredictInto, inference.predict_statement),
    (lx.RetrainModel, ml.retrain),
    (lx.ShowModels, ml.show_models),
    (lx.ShowVersions, ml.show_versions),
    (lx.ShowTrials, ml.show_trials),
    (lx.DescribeModel, ml.describe_model),
    (lx.AlterModelAlias, ml.alter_model),
    (lx.DropModel, ml.drop_model),
    (lx.VacuumModels, ml.vacuum_models),
    (lx.CreateFeatureTable, features.create),
    (lx.RefreshFeatureTable, features.refresh),
    (lx.ShowFeatureTables, features.show),
    (lx.DescribeFeatureTable, features.describe),
    (lx.DropFeatureTable, features.drop),
]


def execute_node(ctx: Context, node: exp.Expr) -> Result | None:
    """Run `node` with its executor; None when DuckDB should run the text as written."""
    for cls, fn in EXECUTORS:
        if isinstance(node, cls):
            return fn(ctx, node)
    if isinstance(node, lx.LakeStatement):
        raise E.InternalError(f"no executor for {type(node).__name__}")
    return None


# -- time travel ---------------------------------------------------------------------------------


# rewrites of a query DuckDB runs over warehouse tables, for what their views lack, in order
DUCKDB_REWRITES: tuple[Callable[[Context, str], str], ...] = (rowid.rewrite, bounds.rewrite)


def rewrite_for_duckdb(ctx: Context, sql: str) -> str:
    """`sql` with DUCKDB_REWRITES applied (each returns its input when it has nothing to do)."""
    for rewrite in DUCKDB_REWRITES:
        sql = rewrite(ctx, sql)
    return sql


def rewrite_time_travel(ctx: Context, node: exp.Expr) -> str:
    """Replace `t VERSION AS OF n` / `t TIMESTAMP AS OF 'ts'` by views of those versions."""
    tables = [t for t in node.find_all(exp.Table) if t.args.get("version") is not None]
    if not tables:
        return ctx.sql
    tokens = LakeSQL().tokenize(ctx.sql)
    by_start = {tok.start: i for i, tok in enumerate(tokens)}
    edits = []
    for table in tables:
        version = table.args["version"]
        ref = ctx.session.warehouse.require(ctx.session.warehouse.ref(table.db or None, table.name))
        value = version.expression
        if not isinstance(value, exp.Literal):
            raise E.ProgrammingError(
                "time travel needs a literal: VERSION AS OF <integer> or TIMESTAMP AS OF '<timestamp>'"
            )
        kind = str(version.this).upper()
        if kind == "VERSION" and (value.is_string or not value.is_int or int(value.name) < 0):
            raise E.ProgrammingError(
                f"VERSION AS OF needs a version number >= 0, not {value.sql()}"
            )
        if kind != "VERSION" and not value.is_string:
            raise E.ProgrammingError(
                f"TIMESTAMP AS OF needs a quoted timestamp, not {value.sql()}",
                hint="write it as TIMESTAMP AS OF '2024-01-31 12:00:00'",
            )
        target: int | str = (
            int(value.name) if kind == "VERSION" else _timestamp(value.name).isoformat()
        )
        snap = delta.snapshot(ref.path, target)
        start, end = _span(table)
        i = by_start[table.this.meta["start"]] + 1
        while i < len(tokens) and tokens[i].token_type not in (_NUMBER, _STRING):
            i += 1
        if i >= len(tokens):
            raise E.InternalError("could not locate the time-travel clause")
        end = tokens[i].end + 1
        alias = "" if table.alias else f" AS {quote(table.name)}"
        edits.append((start, end, ctx.engine.version_view(snap) + alias))
    return _splice(ctx.sql, edits)


_NUMBER = TokenType.NUMBER
_STRING = TokenType.STRING
