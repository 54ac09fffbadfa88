"""Expand ``ML.FEATURES_AT_TIME(...)`` table functions into point-in-time sub-queries.

DuckDB has no Python table functions, so the call is replaced, in the statement text, by the
``ASOF JOIN`` query of :func:`lakesql.features.lookup.point_in_time_sql`; the result is usable
anywhere a table is (joins, CTEs, CREATE TABLE AS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from lakesql import errors as E
from lakesql.dialect.dialect import LakeSQL
from lakesql.dialect.tokens import matching, split_args, text_between


@dataclass
class FeaturesCall:
    """The parsed arguments of one ML.FEATURES_AT_TIME call."""

    start: int  # offset of `ML`
    end: int  # offset after the closing parenthesis
    spine: str  # table name or query text
    spine_is_query: bool
    tables: list[str]
    named: dict[str, str]  # argument name -> SQL text of its value


_NAMED = {"time_column", "ttl"}


def find_calls(sql: str) -> list[FeaturesCall]:
    """Every ML.FEATURES_AT_TIME call in `sql`, outermost first."""
    if "FEATURES_AT_TIME" not in sql.upper():
        return []
    try:
        tokens = LakeSQL().tokenize(sql)
    except Exception as e:
        raise E.ParseError(f"cannot read the statement: {e}") from e
    calls = []
    i = 0
    while i + 3 < len(tokens):
        t = tokens[i]
        if (
            t.text.upper() == "ML"
            and tokens[i + 1].token_type == TokenType.DOT
            and tokens[i + 2].text.upper() == "FEATURES_AT_TIME"
            and tokens[i + 3].token_type == TokenType.L_PAREN
        ):
            close = matching(tokens, i + 3, sql, "ML.FEATURES_AT_TIME")
            calls.append(_parse_args(sql, tokens, i, i + 3, close))
            i = close + 1
        else:
            i += 1
    return calls


def _parse_args(sql: str, tokens: list[Token], ml: int, lo: int, hi: int) -> FeaturesCall:
    usage = "ML.FEATURES_AT_TIME(TABLE spine | (query), FEATURES ft [, ...] [, time_column => 'ts'] [, ttl => INTERVAL '7 days'])"
    spine = None
    spine_is_query = False
    tables: list[str] = []
    named: dict[str, str] = {}
    in_features = False
    for a, b in split_args(tokens, lo, hi):
        first = tokens[a]
        word = first.text.upper()
        if b - a >= 3 and tokens[a + 1].token_type == TokenType.FARROW:
            name = first.text.lower()
            if name not in _NAMED:
                raise E.ProgrammingError(
                    f"unknown argument {first.text!r} of ML.FEATURES_AT_TIME",
                    span=E.SourceSpan(sql, first.start, len(first.text)),
                    hint=f"valid: {', '.join(sorted(_NAMED))}",
                )
            named[name] = text_between(sql, tokens, a + 2, b)
            in_features = False
        elif word == "TABLE" and spine is None and b - a >= 2:
            spine = text_between(sql, tokens, a + 1, b)
        elif first.token_type == TokenType.L_PAREN and spine is None:
            spine = text_between(sql, tokens, a + 1, b - 1)
            spine_is_query = True
        elif word == "FEATURES" and b - a >= 2:
            tables.append(text_between(sql, tokens, a + 1, b))
            in_features = True
        elif in_features:
            tables.append(text_between(sql, tokens, a, b))
        else:
            raise E.ParseError(
                f"unexpected argument {text_between(sql, tokens, a, b)!r}",
                span=E.SourceSpan(sql, first.start, len(first.text)),
                hint=usage,
            )
    if spine is None or not tables:
        raise E.ParseError(
            "ML.FEATURES_AT_TIME needs a spine and at least one feature table",
            span=E.SourceSpan(sql, tokens[ml].start, 2),
            hint=usage,
        )
    return FeaturesCall(tokens[ml].start, tokens[hi].end + 1, spine, spine_is_query, tables, named)


def expand(sql: str, build: Callable[[FeaturesCall], str]) -> str:
    """Replace each call by `build(call)` (a SELECT), wrapped in parentheses."""
    out = sql
    for call in reversed(find_calls(sql)):
        out = out[: call.start] + "(" + build(call) + ")" + out[call.end :]
    return out
