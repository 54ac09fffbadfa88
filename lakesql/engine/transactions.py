"""BEGIN ... COMMIT / ROLLBACK on one cursor (see Transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from lakesql import errors as E
from lakesql.catalog.warehouse import TableRef
from lakesql.context import Result
from lakesql.engine.ddl import as_query_text, column_defs, empty_schema, index_owner, with_defaults
from lakesql.engine.duckdb import quote
from lakesql.engine.names import target_ref
from lakesql.engine.staging import create_stage, drop_stage, exists_dir, fill_stage, stored, stream
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.context import Context


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
    # each table's commit-log stamp at BEGIN: a table another writer committed to since then
    # cannot be written by this transaction (what it read of it is no longer the table)
    begun: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class Pending:
    """A table written in a transaction, as a TEMP table of its name."""

    snap: delta.Snapshot | None  # the version copied; None when created in the transaction
    schema: pa.Schema  # its Delta schema


def begin_statement(ctx: Context, node: exp.Transaction) -> Result:
    return begin(ctx)


def begin(ctx: Context) -> Result:
    if ctx.session.transaction(ctx.cur) is not None:
        raise E.ProgrammingError(
            "TransactionContext Error: cannot start a transaction within a transaction"
        )
    ctx.session.set_transaction(ctx.cur, Transaction(ctx.cur, begun=ctx.session.table_stamps()))
    return Result(message="BEGIN")


def in_transaction(ctx: Context, tx: Transaction, node: exp.Expr) -> Result | None:
    """Prepare statement `node` of an open transaction: copy the table it is about to write, or
    create a new table as a TEMP table; None lets the statement run as usual (on the copy).

    Statements that commit on their own are refused before this, from the statement table
    (`Statement.in_transaction`)."""
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
    key = (ref.schema, ref.name)
    if key in tx.begun and ctx.session.table_stamps().get(key) != tx.begun[key]:
        raise E.ConflictError(
            f"could not serialize access due to concurrent update: {ref.qualified} was changed "
            "by another writer since "
            "this transaction began",
            hint="ROLLBACK and run the transaction again",
        )
    snap = delta.snapshot(ref.path)
    create_stage(ctx, snap.schema, quote(ref.name))
    try:
        fill_stage(ctx, snap, quote(ref.name))
    except BaseException:
        drop_stage(ctx, quote(ref.name))
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
                isinstance(t, exp.Table) and index_owner(ctx, t.db or "main", t.name) is not None
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
    columns, declared = column_defs(ctx, node, target, ref)
    query = node.expression
    name = quote(ref.name)
    if query is None:
        schema = empty_schema(ctx, columns, declared)
        create_stage(ctx, schema, name)
    else:
        text = as_query_text(ctx, query, columns)
        schema = ctx.engine.storage_schema(ctx.engine.describe(ctx.cur, text, ctx.params))
        if columns:
            schema = pa.schema(
                [f.with_nullable(not nn) for f, (_, _, nn, _) in zip(schema, columns, strict=True)]
            )
            schema = with_defaults(ctx, schema, columns)
        create_stage(ctx, schema, name)
        try:
            ctx.run(f"INSERT INTO {name} {text}", ctx.params)
        except BaseException:
            drop_stage(ctx, name)
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
                delta.conform(stream(ctx, stored(ctx, snap, name)), snap.schema),
                mode="overwrite",
                sql=sql,
                operation="COMMIT",
                read_version=snap.version,
            )
        else:
            schema = pending.schema
            select = ctx.engine.storage_select(schema, name)
            created = not exists_dir(ref.path)
            try:
                delta.write(
                    ref.path,
                    delta.conform(stream(ctx, select), schema),
                    mode="error",
                    sql=sql,
                    operation="COMMIT",
                )
            except BaseException:
                if created and not delta.is_table(ref.path) and exists_dir(ref.path):
                    delta.remove_table(ref.path)
                raise
    finally:
        drop_stage(ctx, name)
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
        drop_stage(ctx, f"temp.main.{quote(ref.name)}")
    return Result(message="ROLLBACK")
