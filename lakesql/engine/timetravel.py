"""Time travel: the one reader of `VERSION AS OF n` / `TIMESTAMP AS OF 'ts'`, and the rewrite that
replaces such a table by a view of that version before DuckDB runs a query."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.tokens import TokenType

from lakesql import errors as E
from lakesql.dialect.dialect import LakeSQL, splice, table_span
from lakesql.engine.duckdb import quote
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.context import Context


def timestamp(text: str) -> dt.datetime:
    """`text` as an aware timestamp (UTC when it names no zone)."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise E.DataError(
            f"invalid timestamp {text!r}", hint="write it as 'YYYY-MM-DD HH:MM:SS'"
        ) from e
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def version_target(kind: str, value: exp.Expr) -> int | str:
    """The version a time-travel clause names: a version number (VERSION AS OF) or an ISO
    timestamp (TIMESTAMP AS OF), as `delta.snapshot` takes it.

    Args:
        kind: "VERSION" or "TIMESTAMP".
        value: the clause's expression, as parsed.

    Raises:
        ProgrammingError: not a literal of the right kind, or a negative version.
        DataError: a timestamp that cannot be read.
    """
    negative = isinstance(value, exp.Neg)
    inner = value.this if negative else value
    if not isinstance(inner, exp.Literal):
        raise E.ProgrammingError(
            "time travel needs a literal: VERSION AS OF <integer> or TIMESTAMP AS OF '<timestamp>'"
        )
    if kind.upper() == "VERSION":
        if inner.is_string or not inner.is_int or negative:
            raise E.ProgrammingError(
                f"VERSION AS OF needs a version number >= 0, not {value.sql(dialect=LakeSQL)}"
            )
        return int(inner.name)
    if not inner.is_string:
        raise E.ProgrammingError(
            f"TIMESTAMP AS OF needs a quoted timestamp, not {value.sql(dialect=LakeSQL)}",
            hint="write it as TIMESTAMP AS OF '2024-01-31 12:00:00'",
        )
    return timestamp(inner.name).isoformat()


def table_version(table: exp.Table) -> int | str | None:
    """The version `t VERSION AS OF n` / `t TIMESTAMP AS OF 'ts'` names; None for `t`."""
    version = table.args.get("version")
    if version is None:
        return None
    return version_target(str(version.this), version.expression)


def rewrite_time_travel(ctx: Context, node: exp.Expr) -> str:
    """Replace `t VERSION AS OF n` / `t TIMESTAMP AS OF 'ts'` by views of those versions."""
    tables = [t for t in node.find_all(exp.Table) if t.args.get("version") is not None]
    if not tables:
        return ctx.sql
    tokens = LakeSQL().tokenize(ctx.sql)
    by_start = {tok.start: i for i, tok in enumerate(tokens)}
    edits = []
    for table in tables:
        ref = ctx.session.warehouse.require(ctx.session.warehouse.ref(table.db or None, table.name))
        target = table_version(table)
        assert target is not None
        snap = delta.snapshot(ref.path, target)
        start, end = table_span(table)
        i = by_start[table.this.meta["start"]] + 1
        while i < len(tokens) and tokens[i].token_type not in (_NUMBER, _STRING):
            i += 1
        if i >= len(tokens):
            raise E.InternalError("could not locate the time-travel clause")
        end = tokens[i].end + 1
        alias = "" if table.alias else f" AS {quote(table.name)}"
        edits.append((start, end, ctx.engine.version_view(snap) + alias))
    return splice(ctx.sql, edits)


_NUMBER = TokenType.NUMBER
_STRING = TokenType.STRING
