"""INSERTs whose rows are parameters only, read from their tokens: `INSERT INTO t [(cols)] VALUES
(?, ?, ...)` (or `$1, $2, ...`), which a batch of parameter rows can run as one statement."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot.tokens import Token, TokenType

from lakesql.dialect.dialect import LakeSQL

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class ParameterRows:
    """`INSERT INTO t [(cols)] VALUES (p, ...)[, (p, ...) ...]` with parameters only.

    Attributes:
        head: the text before VALUES (`INSERT INTO t (cols) `), as written.
        tail: the text after the last tuple (whitespace or `;`).
        tuples: per VALUES tuple, the 0-based index of the parameter of each column (`?` counts
            in order; `$n` and `?n` name parameter n).
        parameters: how many parameters the statement takes.
    """

    head: str
    tail: str
    tuples: list[list[int]]
    parameters: int

    @property
    def width(self) -> int | None:
        """Values per tuple (None when the tuples differ: DuckDB's error to give)."""
        widths = {len(t) for t in self.tuples}
        return widths.pop() if len(widths) == 1 else None

    def columns(self, parameter_rows: Sequence[Sequence[Any]]) -> list[list[Any]] | None:
        """The inserted rows, column by column: each tuple of each parameter row, in the order
        the statement run once per parameter row inserts them. None when a parameter row does
        not have the statement's number of parameters (DuckDB's error to give)."""
        width = self.width
        if width is None:
            return None
        columns: list[list[Any]] = [[] for _ in range(width)]
        for params in parameter_rows:
            if isinstance(params, (str, bytes, dict)) or len(params) != self.parameters:
                return None
            for row in self.tuples:
                for column, p in zip(columns, row, strict=True):
                    column.append(params[p])
        return columns

    def select(self, source: str, names: list[str]) -> str:
        """The statement reading the rows from `source` (columns `names`, quoted as needed):
        INSERT INTO t (cols) SELECT names FROM source."""
        return f"{self.head}SELECT {', '.join(names)} FROM {source}{self.tail}"


_VALUES = re.compile(r"\bVALUES\b", re.I)
_PARAMETER = re.compile(r"\s*(?:\?(\d*)|\$(\d+))\s*")
_SPACE = re.compile(r"\s*")


def parameter_rows(sql: str) -> ParameterRows | None:
    """`sql` read as an INSERT whose VALUES hold parameters only, or None when it is another
    statement (an INSERT with ON CONFLICT, RETURNING, a query, an expression, named parameters...).

    The text up to VALUES is tokenized; the tuples are read by a scanner of their own, as
    pandas' method="multi" sends thousands of them.
    """
    for m in _VALUES.finditer(sql):
        head = sql[: m.start()]
        tokens = _head_tokens(head + "VALUES")
        if tokens is None:
            continue  # VALUES inside a name or a comment
        return _tuples(sql, head, m.end())
    return None


def _head_tokens(text: str) -> list[Token] | None:
    """The tokens of `INSERT INTO name [(columns)] VALUES`, or None for any other text."""
    try:
        tokens = LakeSQL().tokenize(text)
    except Exception:
        return None
    if len(tokens) < 4 or tokens[-1].token_type != TokenType.VALUES:
        return None
    if tokens[-1].end + 1 != len(text):  # VALUES inside a comment or a string
        return None
    if tokens[0].token_type != TokenType.INSERT or tokens[1].token_type != TokenType.INTO:
        return None
    i = _name_end(tokens, 2)
    if i == 2:
        return None
    if tokens[i].token_type == TokenType.L_PAREN:  # column list
        i += 1
        while True:
            after = _name_end(tokens, i)
            if after != i + 1:  # one name per column
                return None
            i = after
            if tokens[i].token_type != TokenType.COMMA:
                break
            i += 1
        if tokens[i].token_type != TokenType.R_PAREN:
            return None
        i += 1
    return tokens if i == len(tokens) - 1 else None


def _is_word(tok: Token) -> bool:
    """A name: an identifier, quoted or not (keywords too: a column named `text` or `day`)."""
    return tok.token_type == TokenType.IDENTIFIER or bool(_WORD.fullmatch(tok.text))


def _name_end(tokens: list[Token], i: int) -> int:
    """The index after the (dotted) name starting at token i (i itself when there is none)."""
    start = i
    while i < len(tokens) - 1 and _is_word(tokens[i]) and tokens[i].token_type != TokenType.VALUES:
        i += 1
        if tokens[i].token_type != TokenType.DOT:
            return i
        i += 1
    return start


def _tuples(sql: str, head: str, pos: int) -> ParameterRows | None:
    """The tuples of parameters from offset `pos` (after VALUES) to the end of `sql`."""
    tuples: list[list[int]] = []
    counter = 0  # `?` parameters seen
    numbered = False
    n = len(sql)
    while True:
        pos = _SPACE.match(sql, pos).end()  # type: ignore[union-attr]
        if pos >= n or sql[pos] != "(":
            return None
        pos += 1
        row: list[int] = []
        while True:
            m = _PARAMETER.match(sql, pos)
            if m is None:
                return None
            digits = m.group(1) or m.group(2)
            if digits:
                if int(digits) == 0:
                    return None
                numbered = True
                row.append(int(digits) - 1)
            else:
                row.append(counter)
                counter += 1
            pos = m.end()
            if pos < n and sql[pos] == ",":
                pos += 1
                continue
            break
        if pos >= n or sql[pos] != ")":
            return None
        pos += 1
        tuples.append(row)
        end = _SPACE.match(sql, pos).end()  # type: ignore[union-attr]
        if end < n and sql[end] == ",":
            pos = end + 1
            continue
        rest = sql[pos:]
        if rest.strip().strip(";").strip():
            return None
        break
    if numbered and counter:  # `?` and `$n` mixed: DuckDB's to judge
        return None
    count = counter or max(p for row in tuples for p in row) + 1
    if numbered and set(range(count)) - {p for row in tuples for p in row}:
        return None  # a parameter no column takes
    return ParameterRows(head, sql[pos:], tuples, count)
