"""Delta maintenance and inspection: DESCRIBE HISTORY, RESTORE, OPTIMIZE, VACUUM."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from lakesql import errors as E
from lakesql.context import Result
from lakesql.dialect import expressions as lx
from lakesql.dialect.dialect import LakeSQL
from lakesql.engine.names import table_of
from lakesql.engine.timetravel import version_target
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.context import Context


def describe_history(ctx: Context, node: lx.DescribeHistory) -> Result:
    ref = table_of(ctx, node.this)
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


def restore(ctx: Context, node: lx.RestoreTable) -> Result:
    ref = table_of(ctx, node.this)
    version = node.args.get("version")
    target = (
        version_target("VERSION", version)
        if version is not None
        else version_target("TIMESTAMP", node.args["timestamp"])
    )
    delta.restore(ref.path, target, sql=ctx.statement)
    ctx.session.invalidate(ref)
    return Result(message="RESTORE")


def optimize(ctx: Context, node: lx.Optimize) -> Result:
    ref = table_of(ctx, node.this)
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


def vacuum(ctx: Context, node: lx.Vacuum) -> Result:
    ref = table_of(ctx, node.this)
    retain = node.args.get("retain")
    hours = _integer(retain, "VACUUM ... RETAIN") if retain is not None else None
    if hours is not None and hours < 0:
        raise E.ProgrammingError("RETAIN needs a number of hours >= 0")
    files = delta.vacuum(ref.path, hours, dry_run=bool(node.args.get("dry_run")), sql=ctx.statement)
    ctx.session.invalidate(ref)
    return ctx.rows(pa.table({"path": pa.array(sorted(files), pa.string())}))


def _integer(node: exp.Expr, what: str) -> int:
    """The value of an integer literal (sqlglot reads `-5` as Neg(5)); errors say what is wrong."""
    negative = isinstance(node, exp.Neg)
    inner = node.this if negative else node
    if not isinstance(inner, exp.Literal) or inner.is_string or not inner.is_int:
        raise E.ProgrammingError(f"{what} must be an integer, not {node.sql(dialect=LakeSQL)}")
    return -int(inner.name) if negative else int(inner.name)
