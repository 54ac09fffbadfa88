"""The engine's part of the statement table: Delta tables, transactions, settings, functions.

`lakesql.statements` joins it with the feature-table and model statements.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from lakesql import config
from lakesql.context import Context, Privilege, Statement
from lakesql.dialect import expressions as lx
from lakesql.engine import ddl, dml, maintenance, settings, show, transactions
from lakesql.engine.names import target_ref

READ, WRITE, ADMIN = Privilege.READ, Privilege.WRITE, Privilege.ADMIN
# settings that change only what this session does; the others shape the server (owner's)
SESSION_SETTINGS = {"time_budget", "progress", "batch_rows", "delta_reader"}


def _target(node: Any) -> Any:
    """The table (or schema) a DDL/DML statement changes, as parsed."""
    if isinstance(node, exp.Drop):
        tables = node.args.get("tables") or node.expressions or [node.this]
        return tables[0] if tables else None
    if isinstance(node, exp.Create) and (node.args.get("kind") or "").upper() == "INDEX":
        return node.this.args.get("table") if isinstance(node.this, exp.Index) else None
    target = node.this
    return target.this if isinstance(target, exp.Schema) else target


def on_warehouse(ctx: Context, node: Any) -> Privilege:
    """WRITE for a statement that changes the warehouse; READ when it changes only this session's
    DuckDB objects (TEMP tables, views, macros), which every role may make."""
    kind = (node.args.get("kind") or "").upper()
    if kind == "SCHEMA":
        return WRITE
    props = node.args.get("properties")
    if isinstance(node, exp.Create) and (
        kind not in ("TABLE", "INDEX") or (props and props.find(exp.TemporaryProperty))
    ):
        return READ
    if isinstance(node, exp.Drop) and (
        kind not in ("TABLE", "INDEX") or node.args.get("temporary")
    ):
        return READ
    if isinstance(node, exp.Copy) and not node.args.get("kind"):
        return READ  # COPY ... TO: a read (where it may write is the session's rule)
    table = _target(node)
    if not isinstance(table, exp.Table):
        return WRITE
    if kind == "INDEX" and isinstance(node, exp.Drop):
        owner = ddl.index_owner(ctx, (table.db or "main").lower(), table.name)
        return WRITE if owner is not None else READ
    return WRITE if target_ref(ctx, table) is not None else READ


def setting(ctx: Context, node: Any) -> Privilege:
    name = node.name.lower().removeprefix("lakesql.")
    return READ if name in SESSION_SETTINGS or name not in config.SETTINGS else ADMIN


STATEMENTS: tuple[Statement, ...] = (
    Statement(exp.Create, ddl.create, on_warehouse),
    Statement(exp.Drop, ddl.drop, on_warehouse),
    Statement(exp.Alter, ddl.alter, on_warehouse),
    Statement(exp.Insert, dml.insert, on_warehouse),
    Statement(exp.Copy, dml.copy_from, on_warehouse),
    Statement(exp.Update, dml.update, on_warehouse),
    Statement(exp.Delete, dml.delete, on_warehouse),
    Statement(exp.Merge, dml.merge, on_warehouse),
    Statement(exp.Describe, show.describe, READ),
    Statement(exp.Transaction, transactions.begin_statement, READ),
    Statement(lx.DescribeHistory, maintenance.describe_history, READ),
    Statement(lx.RestoreTable, maintenance.restore, WRITE, in_transaction=False),
    Statement(lx.Optimize, maintenance.optimize, WRITE, in_transaction=False),
    Statement(lx.Vacuum, maintenance.vacuum, WRITE, in_transaction=False),
    Statement(lx.ShowTables, show.show_tables, READ),
    Statement(lx.ShowSchemas, show.show_schemas, READ),
    Statement(lx.CreatePythonFunction, settings.create_function, ADMIN, in_transaction=False),
    Statement(lx.DropFunction, settings.drop_function, ADMIN, in_transaction=False),
    Statement(lx.ShowFunctions, settings.show_functions, READ),
    Statement(lx.SetSetting, settings.set_setting, setting),
    Statement(lx.ResetSetting, settings.reset_setting, setting),
    Statement(lx.ShowSettings, settings.show_settings, READ),
)
