"""A small SQL tokenizer for the shell: syntax highlighting and completion context.

It only needs to know where strings, quoted identifiers, comments and dollar quotes begin and end,
and which words are words: the same rules as :func:`lakesql.script.split_statements`. It never
raises: an unterminated string or comment is a token marked ``closed=False``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_PARAM = re.compile(r"\$\d+|\?")
_SPACE = re.compile(r"\s+")
_OPERATOR = re.compile(r"::|->>|->|=>|<=|>=|<>|!=|\|\||[-+*/%<>=!~^&|@#:]")

# Token kinds
WORD = "word"
STRING = "string"
QUOTED = "quoted"  # "quoted identifier"
COMMENT = "comment"
NUMBER = "number"
PARAM = "param"
SPACE = "space"
OPERATOR = "operator"
PUNCT = "punct"  # ( ) , ; . [ ] { }


@dataclass(frozen=True)
class Token:
    """One token: its kind, text and offset; `closed` is False for an unterminated one."""

    kind: str
    text: str
    start: int
    closed: bool = True

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of `text`, covering it completely, in order."""
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c.isspace():
            m = _SPACE.match(text, i)
            assert m is not None
            yield Token(SPACE, m.group(0), i)
            i = m.end()
        elif c in "'\"":
            j = i + 1
            closed = False
            while True:
                j = text.find(c, j)
                if j < 0:
                    j = n
                    break
                if j + 1 < n and text[j + 1] == c:
                    j += 2
                    continue
                j += 1
                closed = True
                break
            yield Token(STRING if c == "'" else QUOTED, text[i:j], i, closed)
            i = j
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield Token(COMMENT, text[i:j], i)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            closed = j >= 0
            j = j + 2 if closed else n
            yield Token(COMMENT, text[i:j], i, closed)
            i = j
        elif (
            c == "$"
            and (m := _DOLLAR_TAG.match(text, i))
            and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"))
        ):
            tag = m.group(0)
            j = text.find(tag, m.end())
            closed = j >= 0
            j = j + len(tag) if closed else n
            yield Token(STRING, text[i:j], i, closed)
            i = j
        elif m := _WORD.match(text, i):
            yield Token(WORD, m.group(0), i)
            i = m.end()
        elif m := _NUMBER.match(text, i):
            yield Token(NUMBER, m.group(0), i)
            i = m.end()
        elif m := _PARAM.match(text, i):
            yield Token(PARAM, m.group(0), i)
            i = m.end()
        elif c in "(),;.[]{}":
            yield Token(PUNCT, c, i)
            i += 1
        elif m := _OPERATOR.match(text, i):
            yield Token(OPERATOR, m.group(0), i)
            i = m.end()
        else:
            yield Token(PUNCT, c, i)
            i += 1


def skip_comments(text: str) -> str:
    """`text` without its leading whitespace and (closed) comments."""
    for tok in tokenize(text):
        if tok.kind not in (SPACE, COMMENT) or not tok.closed:
            return text[tok.start :]
    return ""


def is_meta(text: str) -> bool:
    """True when `text` is a meta command (`.tables`, `.mode csv`, ...), maybe after comments."""
    return skip_comments(text).startswith(".")


def is_blank(text: str) -> bool:
    """True when `text` holds only whitespace and comments."""
    return not skip_comments(text)


def is_complete(text: str) -> bool:
    """True when the input can run: empty, a meta command, or SQL ending at a top-level `;`.

    The statements are split exactly as they will run (:func:`lakesql.script.split_statements`):
    a `;` inside a string, quoted identifier, comment or dollar quote does not end the input,
    and neither does anything after an unterminated one.
    """
    from lakesql.errors import ParseError
    from lakesql.script import split_statements

    if not text.strip() or is_meta(text):
        return True
    try:
        # A probe statement after the text stands alone only when the text ends at a `;`.
        statements = split_statements(text + "\n" + _PROBE)
    except ParseError:  # an unterminated string, comment or dollar quote
        return False
    return len(statements) >= 2 and statements[-1].sql == _PROBE


_PROBE = "__lakesql_probe__"


# Highlighting --------------------------------------------------------------------------------

STYLE_CLASSES = {
    "keyword": "class:sql.keyword",
    "function": "class:sql.function",
    STRING: "class:sql.string",
    QUOTED: "class:sql.identifier",
    COMMENT: "class:sql.comment",
    NUMBER: "class:sql.number",
    PARAM: "class:sql.param",
    OPERATOR: "class:sql.operator",
    "meta": "class:sql.meta",
    "error": "class:sql.error",
}


def highlight(text: str, keywords: Collection[str]) -> list[list[tuple[str, str]]]:
    """Per line of `text`, its (style, text) fragments for prompt_toolkit.

    Args:
        text: the whole input (strings and comments may span lines).
        keywords: upper-case words shown as keywords.
    """
    lines: list[list[tuple[str, str]]] = [[]]

    def add(style: str, chunk: str) -> None:
        parts = chunk.split("\n")
        for k, part in enumerate(parts):
            if k:
                lines.append([])
            if part:
                lines[-1].append((style, part))

    if text.lstrip().startswith("."):
        add(STYLE_CLASSES["meta"], text)
        return lines
    tokens = list(tokenize(text))
    for k, tok in enumerate(tokens):
        style = ""
        if tok.kind == WORD:
            nxt = tokens[k + 1] if k + 1 < len(tokens) else None
            if nxt is not None and nxt.text == "(":
                style = STYLE_CLASSES["function"]
            elif tok.text.upper() in keywords:
                style = STYLE_CLASSES["keyword"]
        elif tok.kind in STYLE_CLASSES:
            style = STYLE_CLASSES[tok.kind]
        add(style, tok.text)
    return lines


def make_lexer(keywords: Callable[[], Collection[str]]) -> Any:
    """A prompt_toolkit Lexer highlighting SQL; `keywords()` gives the current keyword set."""
    from prompt_toolkit.lexers import Lexer

    class SqlLexer(Lexer):
        def lex_document(self, document: Any) -> Callable[[int], Any]:
            lines = highlight(document.text, keywords())

            def get_line(lineno: int) -> Any:
                return lines[lineno] if 0 <= lineno < len(lines) else []

            return get_line

    return SqlLexer()
