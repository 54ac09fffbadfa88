"""DDL on Delta tables: CREATE TABLE (declared or AS query), CREATE/DROP INDEX, CREATE/DROP
SCHEMA, DROP TABLE, ALTER TABLE."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import TokenType

from lakesql import errors as E
from lakesql.catalog.warehouse import TableRef
from lakesql.context import NOT_MINE, Result
from lakesql.dialect.dialect import SPAN, LakeSQL, table_span
from lakesql.engine.duckdb import COLLATE_KEY, quote
from lakesql.engine.names import target_ref
from lakesql.engine.rewrites import rewrite_for_duckdb
from lakesql.engine.staging import (
    DDL_KEY,
    DEFAULT_KEY,
    GENERATED_KEY,
    INDEXES_KEY,
    TABLE_CONSTRAINTS_KEY,
    drop_stage,
    exists_dir,
    new_stage,
    run_named,
    stream,
    table_indexes,
)
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.context import Context


def create(ctx: Context, node: exp.Create) -> Result | None:
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
        return NOT_MINE
    if kind != "TABLE" or temporary or not isinstance(target, exp.Table):
        return NOT_MINE
    ref = target_ref(ctx, target)
    if ref is None:
        return NOT_MINE
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
    columns, declared = column_defs(ctx, node, target, ref)
    query = node.expression
    if query is None and not columns and declared is None:
        raise E.ProgrammingError("CREATE TABLE needs columns or AS query")
    operation = "CREATE OR REPLACE TABLE" if exists else "CREATE TABLE"
    created_dir = not exists
    try:
        if query is None:
            schema = empty_schema(ctx, columns, declared)
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
            text = as_query_text(ctx, query, columns)
            schema = ctx.engine.storage_schema(ctx.engine.describe(ctx.cur, text, ctx.params))
            if ctx.engine.converts(schema):
                text = ctx.engine.storage_select(schema, f"({text}) AS __q")
            reader = stream(ctx, text, ctx.params)
            if columns:
                schema = pa.schema(
                    [
                        f.with_nullable(not nn)
                        for f, (_, _, nn, _) in zip(schema, columns, strict=True)
                    ]
                )
                schema = with_defaults(ctx, schema, columns)
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
            delta.remove_table(ref.path) if exists_dir(ref.path) else None
        raise
    ctx.session.invalidate(ref)
    return Result(rowcount=-1, message=operation)


Column = tuple[str, str, bool, str | None]  # name, type, NOT NULL, DEFAULT


def column_defs(
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
        if col.args.get("kind") is None:
            raise E.ProgrammingError(f"column {col.name!r} needs a type")
    items = _column_list_items(ctx.sql, table_span(target)[1])
    if len(items) != len(node.this.expressions):
        raise E.InternalError("the column list of CREATE TABLE was not read as written")
    named = [
        _named_as_parsed(item, col) for item, col in zip(items, node.this.expressions, strict=True)
    ]
    types = written_types(ctx, named, ref)
    for col, typ in zip(node.this.expressions, types, strict=True):
        not_null, default = _column_rules(col, ref)
        columns.append((col.name, typ, not_null, default))
    return columns, None


def _named_as_parsed(definition: str, col: exp.ColumnDef) -> str:
    """A column definition as written with its name quoted: lakesql reads column names with
    sqlglot, which takes names DuckDB's parser does not (a column `at`)."""
    tokens = LakeSQL().tokenize(definition)
    if not tokens:
        raise E.InternalError(f"the definition of column {col.name!r} was not read as written")
    return quote(col.name) + definition[tokens[0].end + 1 :]


def written_types(ctx: Context, definitions: list[str], ref: TableRef) -> list[str]:
    """DuckDB's types of column definitions as the user wrote them (`x FLOAT(53)` -> DOUBLE,
    `t TIMESTAMP WITHOUT TIME ZONE` -> TIMESTAMP, `a INTEGER[]`): DuckDB reads them (declaring a
    TEMP table of them), so a type is exactly what DuckDB makes of it, and one DuckDB refuses is
    DuckDB's error. sqlglot's regenerated text is not used: it changes some types (FLOAT(53) ->
    REAL(53), JSONB -> JSON)."""
    probe = f"__lakesql_ddl_{uuid.uuid4().hex[:12]}"
    try:
        run_named(ctx, f"CREATE TEMP TABLE {probe} ({', '.join(definitions)})", probe, ref)
        described = ctx.run(f"DESCRIBE {probe}").fetchall()
    finally:
        drop_stage(ctx, probe)
    return [str(r[1]) for r in described]


def empty_schema(ctx: Context, columns: list[Column], declared: pa.Schema | None) -> pa.Schema:
    """The Delta schema of CREATE TABLE t (columns)."""
    if declared is not None:
        return declared
    logical = ctx.engine.type_names(ctx.cur, [t for _, t, _, _ in columns])
    schema = ctx.engine.storage_schema([(c[0], t) for c, t in zip(columns, logical, strict=True)])
    schema = pa.schema(
        [f.with_nullable(not nn) for f, (_, _, nn, _) in zip(schema, columns, strict=True)]
    )
    return with_defaults(ctx, schema, columns)


def _plain_columns(schema: exp.Schema) -> bool:
    """True when every column has a type and at most NOT NULL / NULL / DEFAULT."""
    for col in schema.expressions:
        if not isinstance(col, exp.ColumnDef) or col.args.get("kind") is None:
            return False
        for c in col.constraints:
            if not isinstance(c.kind, (exp.NotNullColumnConstraint, exp.DefaultColumnConstraint)):
                return False
    return True


def _definition_text(sql: str, col: exp.ColumnDef) -> str:
    """The text of column definition `col` as written (ALTER TABLE ... ADD COLUMN `c type ...`):
    from its name to the next top-level comma or the end of the statement."""
    start = col.this.meta.get("start")
    if start is None:
        raise E.InternalError(f"the definition of column {col.name!r} was not read as written")
    depth = 0
    end = len(sql)
    for tok in LakeSQL().tokenize(sql[start:]):
        if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif depth == 0 and tok.token_type in (TokenType.COMMA, TokenType.SEMICOLON):
            end = start + tok.start
            break
    return sql[start:end].strip()


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
                last = sql[start : tok.start].strip()
                return [*items, last] if last else items  # DuckDB allows a trailing comma
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
    items = _column_list_items(ctx.sql, table_span(target)[1])
    if len(items) != len(columns.expressions):
        raise E.InternalError("the column list of CREATE TABLE was not read as written")
    probe = f"__lakesql_ddl_{uuid.uuid4().hex[:12]}"
    try:
        run_named(ctx, f"CREATE TEMP TABLE {probe} ({', '.join(items)})", probe, ref)
        described = ctx.run(f"DESCRIBE {probe}").fetchall()
    finally:
        drop_stage(ctx, probe)
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


def with_defaults(
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


def _check_partitions(partition_by: list[str], schema: pa.Schema) -> None:
    for col in partition_by:
        if col not in schema.names:
            raise E.ProgrammingError(
                f"partition column {col!r} is not a column of the table",
                hint=E.suggest(col, schema.names) or f"columns: {', '.join(schema.names)}",
            )


def as_query_text(ctx: Context, query: exp.Expr, columns: list[Column]) -> str:
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


def _create_index(ctx: Context, node: exp.Create) -> Result | None:
    """CREATE [UNIQUE] INDEX on a Delta table: kept in its metadata and declared on every staging
    table, so a UNIQUE index is enforced on every write (an index does not speed up reads here).
    """
    index = node.this
    table = index.args.get("table") if isinstance(index, exp.Index) else None
    if not isinstance(table, exp.Table):
        return NOT_MINE
    ref = target_ref(ctx, table)
    wh = ctx.session.warehouse
    if ref is None or not wh.exists(ref):
        return NOT_MINE
    name = index.name
    if index_owner(ctx, ref.schema, name) is not None:
        if node.args.get("exists"):
            return Result(message="CREATE INDEX")
        raise E.CatalogError(f'Catalog Error: Index with name "{name}" already exists!')
    on = ctx.sql[table_span(table)[1] :].strip().rstrip(";").strip()
    unique = bool(node.args.get("unique"))
    snap = delta.snapshot(ref.path)
    stage = new_stage(ctx, snap, copy_rows=True)  # DuckDB checks the index on the existing rows
    try:
        run_named(
            ctx,
            f"CREATE {'UNIQUE ' if unique else ''}INDEX {stage}_new ON {stage} {on}",
            stage,
            ref,
        )
    finally:
        drop_stage(ctx, stage)
    indexes = [*table_indexes(snap.schema), {"name": name, "unique": unique, "on": on}]
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


def index_owner(ctx: Context, schema: str, name: str) -> tuple[TableRef, delta.Snapshot] | None:
    """The Delta table of `schema` that has index `name` (index names are unique in a schema)."""
    wh = ctx.session.warehouse
    for table in wh.tables(schema):
        ref = wh.ref(schema, table)
        try:
            snap = delta.snapshot(ref.path)
        except E.Error:
            continue
        if any(i["name"].lower() == name.lower() for i in table_indexes(snap.schema)):
            return ref, snap
    return None


def _drop_index(ctx: Context, node: exp.Drop) -> Result | None:
    tables = node.args.get("tables") or node.expressions or [node.this]
    if len(tables) != 1 or not isinstance(tables[0], exp.Table) or tables[0].catalog:
        return NOT_MINE
    target = tables[0]
    schema = (target.db or "main").lower()
    if schema not in ctx.session.warehouse.schemas():
        return NOT_MINE
    owner = index_owner(ctx, schema, target.name)
    if owner is None:
        return NOT_MINE  # DuckDB's own (TEMP) index, or DuckDB's error that it does not exist
    ref, snap = owner
    indexes = [i for i in table_indexes(snap.schema) if i["name"].lower() != target.name.lower()]
    return _store_indexes(ctx, ref, snap, indexes, "DROP INDEX")


def _create_schema(ctx: Context, node: exp.Create) -> Result:
    target = node.this
    name = target.db or target.name if isinstance(target, exp.Table) else target.name
    ctx.session.warehouse.create_schema(name, if_not_exists=bool(node.args.get("exists")))
    ctx.engine.ensure_schema(name.lower())
    return Result(message="CREATE SCHEMA")


def drop(ctx: Context, node: exp.Drop) -> Result | None:
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
        return NOT_MINE
    refs = []
    for table in tables:
        if not isinstance(table, exp.Table):
            return NOT_MINE
        ref = target_ref(ctx, table)
        if ref is None or (kind == "VIEW" and not wh.exists(ref)):
            return NOT_MINE
        refs.append(ref)
    if kind == "VIEW":
        raise E.ProgrammingError(
            f"{refs[0].qualified!r} is a Delta table, not a view", hint="use DROP TABLE"
        )
    for ref in refs:
        if ctx.session.warehouse.is_feature_table(ref):
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


def alter(ctx: Context, node: exp.Alter) -> Result | None:
    kind = (node.args.get("kind") or "").upper()
    if kind == "VIEW" and isinstance(node.this, exp.Table):
        ref = target_ref(ctx, node.this)
        if ref is not None and ctx.session.warehouse.exists(ref):
            raise E.ProgrammingError(
                f"{ref.qualified!r} is a Delta table, not a view", hint="use ALTER TABLE"
            )
        return NOT_MINE
    if kind != "TABLE" or not isinstance(node.this, exp.Table):
        return NOT_MINE
    actions = node.args.get("actions") or []
    if len(actions) == 1 and isinstance(actions[0], exp.AlterRename) and _is_view(ctx, node.this):
        return _rename_view(ctx)
    ref = target_ref(ctx, node.this)
    if ref is None:
        return NOT_MINE
    wh = ctx.session.warehouse
    if not wh.exists(ref):
        if node.args.get("exists"):
            return Result(message="ALTER TABLE")
        wh.require(ref)
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
            cols.append((a.name, _named_as_parsed(_definition_text(ctx.sql, a), a)))
        written = written_types(ctx, [t for _, t in cols], ref)
        logical = ctx.engine.type_names(ctx.cur, written)
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
        if wh.exists(new_ref) or exists_dir(new_ref.path):
            raise E.ObjectExistsError(f"table {new_ref.qualified!r} already exists")
        if ctx.session.warehouse.is_feature_table(ref):
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


def _is_view(ctx: Context, table: exp.Table) -> bool:
    """True when `table` names a DuckDB view (a session's view, TEMP or not), not a Delta table."""
    ref = ctx.session.warehouse.ref(table.db or None, table.name) if table.db else None
    if ref is None and not ctx.session.is_temp_object(ctx.cur, table.name):
        ref = ctx.session.warehouse.ref(None, table.name)
    if ref is not None and ctx.session.warehouse.exists(ref):
        return False
    rows = ctx.lookup(
        "SELECT 1 FROM duckdb_views() WHERE NOT internal AND lower(view_name) = lower(?) "
        "AND (? IS NULL OR lower(schema_name) = lower(?))",
        [table.name, table.db or None, table.db or None],
    )
    return bool(rows)


def _rename_view(ctx: Context) -> Result:
    """`ALTER TABLE v RENAME TO v2` on a view renames it, as PostgreSQL does (dbt renames views
    so); DuckDB itself takes only ALTER VIEW for a view: the statement runs as that."""
    tokens = [t for t in LakeSQL().tokenize(ctx.sql) if t.token_type != TokenType.SEMICOLON]
    keyword = next(t for t in tokens[1:] if t.text.upper() == "TABLE")
    ctx.run(ctx.sql[: keyword.start] + "VIEW" + ctx.sql[keyword.end + 1 :], ctx.params)
    return Result(message="ALTER VIEW")
