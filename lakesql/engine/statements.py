"""The engine's part of the statement table: Delta tables, transactions, settings, functions.

`lakesql.statements` joins it with the feature-table and model statements.
"""

from __future__ import annotations

from sqlglot import exp

from lakesql.context import Statement
from lakesql.dialect import expressions as lx
from lakesql.engine import ddl, dml, maintenance, settings, show, transactions

STATEMENTS: tuple[Statement, ...] = (
    Statement(exp.Create, ddl.create),
    Statement(exp.Drop, ddl.drop),
    Statement(exp.Alter, ddl.alter),
    Statement(exp.Insert, dml.insert),
    Statement(exp.Copy, dml.copy_from),
    Statement(exp.Update, dml.update),
    Statement(exp.Delete, dml.delete),
    Statement(exp.Merge, dml.merge),
    Statement(exp.Describe, show.describe),
    Statement(exp.Transaction, transactions.begin_statement),
    Statement(lx.DescribeHistory, maintenance.describe_history),
    Statement(lx.RestoreTable, maintenance.restore, in_transaction=False),
    Statement(lx.Optimize, maintenance.optimize, in_transaction=False),
    Statement(lx.Vacuum, maintenance.vacuum, in_transaction=False),
    Statement(lx.ShowTables, show.show_tables),
    Statement(lx.ShowSchemas, show.show_schemas),
    Statement(lx.CreatePythonFunction, settings.create_function, in_transaction=False),
    Statement(lx.DropFunction, settings.drop_function, in_transaction=False),
    Statement(lx.ShowFunctions, settings.show_functions),
    Statement(lx.SetSetting, settings.set_setting),
    Statement(lx.ResetSetting, settings.reset_setting),
    Statement(lx.ShowSettings, settings.show_settings),
)
