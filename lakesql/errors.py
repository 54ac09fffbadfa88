"""The lakesql exception tree: one root, PEP 249 categories as parents, domain leaves.

Every error a user can cause is a subclass of :class:`Error`. Errors about SQL text carry
their position (:class:`SourceSpan`) as data; :func:`render_caret` draws the snippet.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


class Warning(Exception):
    """PEP 249 warning category (not raised: lakesql reports warnings through `warnings`)."""


class Error(Exception):
    """Root of every lakesql error."""

    def __init__(self, message: str, *, span: SourceSpan | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.span is not None:
            text = (
                f"{text} (line {self.span.line}, column {self.span.column})\n{self.span.render()}"
            )
        if self.hint:
            text = f"{text}\nHint: {self.hint}"
        return text


class InterfaceError(Error):
    """Misuse of the DB-API interface (closed cursor, bad parameters)."""


class DatabaseError(Error):
    """Errors reported by the database."""


class DataError(DatabaseError):
    """A value that does not fit: bad cast, division by zero, out of range."""


class OperationalError(DatabaseError):
    """Storage, concurrency and environment problems not caused by the statement text."""


class IntegrityError(DatabaseError):
    """A constraint failed: NOT NULL, duplicate key."""


class InternalError(DatabaseError):
    """A bug in lakesql or an engine; please report it."""


class ProgrammingError(DatabaseError):
    """The statement is wrong: syntax, unknown names, wrong options."""


class NotSupportedError(DatabaseError):
    """A feature lakesql does not offer."""


# Domain leaves -------------------------------------------------------------------------------


class ParseError(ProgrammingError):
    """SQL syntax error; `span` says where."""


class CatalogError(ProgrammingError):
    """A name that does not resolve, or that already exists.

    `missing` is the table name the engine could not find, when it said which (set by the
    adapter that translated the engine's error, read by the session to suggest a table)."""

    missing: str | None = None


class UnknownObjectError(CatalogError):
    """A table, schema, model or function that does not exist."""


class ObjectExistsError(CatalogError):
    """CREATE of something that exists already (without OR REPLACE / IF NOT EXISTS)."""


class InsufficientPrivilegeError(ProgrammingError):
    """The user's role does not allow the statement (SQLSTATE 42501 over the wire)."""


class OptionError(ProgrammingError):
    """An unknown option or setting, or a value of the wrong type."""


class ConflictError(OperationalError):
    """A concurrent writer committed first and the statement could not be retried safely."""


@dataclass(frozen=True)
class SourceSpan:
    """A position in SQL text: 1-based line and column, 0-based offset, and the text itself."""

    sql: str
    offset: int
    length: int = 1
    line_offset: int = 0  # line number of the text's first line minus one (scripts)

    @property
    def line(self) -> int:
        return self.sql.count("\n", 0, self.offset) + 1 + self.line_offset

    @property
    def column(self) -> int:
        return self.offset - (self.sql.rfind("\n", 0, self.offset) + 1) + 1

    def render(self) -> str:
        return render_caret(self.sql, self.offset, self.length)

    def shifted(self, line_offset: int) -> SourceSpan:
        return SourceSpan(self.sql, self.offset, self.length, line_offset)


def render_caret(sql: str, offset: int, length: int = 1) -> str:
    """Return the line of `sql` holding `offset` with carets under `length` characters."""
    offset = max(0, min(offset, len(sql)))
    start = sql.rfind("\n", 0, offset) + 1
    end = sql.find("\n", offset)
    end = len(sql) if end < 0 else end
    line = sql[start:end]
    col = offset - start
    width = max(1, min(length, len(line) - col))
    return f"  {line}\n  {' ' * col}{'^' * width}"


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """Return a 'did you mean' hint naming the candidates closest to `name`, if any."""
    names = sorted(set(candidates))
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in names], n=3, cutoff=0.6)
    if not close:
        return None
    by_lower = {c.lower(): c for c in names}
    return "did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"


__all__ = [
    "CatalogError",
    "ConflictError",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "ObjectExistsError",
    "OperationalError",
    "OptionError",
    "ParseError",
    "ProgrammingError",
    "SourceSpan",
    "UnknownObjectError",
    "Warning",
    "render_caret",
    "suggest",
]
