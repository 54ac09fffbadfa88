"""Session-level statements: lakesql settings (SET/RESET/SHOW) and Python functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from lakesql import config
from lakesql import errors as E
from lakesql.context import Result
from lakesql.dialect import expressions as lx
from lakesql.dialect.dialect import LakeSQL

if TYPE_CHECKING:
    from lakesql.context import Context


def create_function(ctx: Context, node: lx.CreatePythonFunction) -> Result:
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


def drop_function(ctx: Context, node: lx.DropFunction) -> Result:
    ctx.session.drop_function(node.name, if_exists=bool(node.args.get("exists")))
    return Result(message="DROP FUNCTION")


def show_functions(ctx: Context, node: lx.ShowFunctions) -> Result:
    return ctx.rows(ctx.session.functions_table())


def set_setting(ctx: Context, node: lx.SetSetting) -> Result:
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


def reset_setting(ctx: Context, node: lx.ResetSetting) -> Result:
    ctx.session.reset(node.name)
    return Result(message="RESET")


def show_settings(ctx: Context, node: lx.ShowSettings) -> Result:
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
