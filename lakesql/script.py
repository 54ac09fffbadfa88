"""Split SQL scripts into statements, keeping each statement's position in the script."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakesql.errors import ParseError, SourceSpan

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text (without the `;`), offset and 1-based line."""

    sql: str
    offset: int
    line: int


def split_statements(script: str) -> list[Statement]:
    """Split `script` at top-level semicolons.

    Quotes ('...', "..."), comments (-- and /* */) and dollar quotes ($$...$$, $tag$...$tag$)
    are respected. Statements holding only whitespace and comments are dropped.

    Args:
        script: SQL text with zero or more statements.

    Returns:
        The statements in order, each with its offset and line in `script`.

    Raises:
        ParseError: for an unterminated string, quoted identifier, comment or dollar quote.
    """
    out: list[Statement] = []
    n = len(script)
    i = 0
    start = 0
    has_code = False

    def emit(end: int) -> None:
        if has_code:
            off = _skip_blank(script, start, end)
            out.append(Statement(script[off:end].rstrip(), off, script.count("\n", 0, off) + 1))

    while i < n:
        c = script[i]
        if c in "'\"":
            j = i + 1
            while True:
                j = script.find(c, j)
                if j < 0:
                    what = "string" if c == "'" else "quoted identifier"
                    raise ParseError(
                        f"unterminated {what}",
                        span=SourceSpan(script, i),
                        hint=f"close it with {c}",
                    )
                if j + 1 < n and script[j + 1] == c:  # doubled quote escapes itself
                    j += 2
                    continue
                break
            i = j + 1
            has_code = True
        elif c == "-" and script.startswith("--", i):
            j = script.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and script.startswith("/*", i):
            j = script.find("*/", i + 2)
            if j < 0:
                raise ParseError(
                    "unterminated comment", span=SourceSpan(script, i, 2), hint="close it with */"
                )
            i = j + 2
        elif c == "$" and (m := _DOLLAR_TAG.match(script, i)) and not _in_word(script, i):
            tag = m.group(0)
            j = script.find(tag, m.end())
            if j < 0:
                raise ParseError(
                    "unterminated dollar-quoted string",
                    span=SourceSpan(script, i, len(tag)),
                    hint=f"close it with {tag}",
                )
            i = j + len(tag)
            has_code = True
        elif c == ";":
            emit(i)
            i += 1
            start = i
            has_code = False
        else:
            if not c.isspace():
                has_code = True
            i += 1
    emit(n)
    return out


def _skip_blank(text: str, i: int, end: int) -> int:
    """Offset of the first character in text[i:end] that is neither whitespace nor a comment."""
    while i < end:
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = end if j < 0 else j + 1
        elif text.startswith("/*", i):
            i = text.find("*/", i + 2) + 2
        else:
            break
    return min(i, end)


def _in_word(text: str, i: int) -> bool:
    """True when the `$` at `i` continues an identifier or a $1 parameter, not a dollar quote."""
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
