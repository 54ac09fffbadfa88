"""Splitting scripts into statements with positions."""

from __future__ import annotations

import pytest

from lakesql import ParseError
from lakesql.script import split_statements


def test_split_respects_strings_comments_and_dollar_quotes() -> None:
    script = (
        "-- leading comment\n"
        "SELECT ';' AS a; /* ; */ SELECT \"x;y\" FROM t;\n"
        "SELECT $$a;b$$, $tag$ ; $tag$;\n"
        "SELECT $1 + 1;\n"
        "  -- only a comment\n"
        ";\n"
        "SELECT 'it''s; fine'"
    )
    parts = split_statements(script)
    assert [p.sql for p in parts] == [
        "SELECT ';' AS a",
        'SELECT "x;y" FROM t',
        "SELECT $$a;b$$, $tag$ ; $tag$",
        "SELECT $1 + 1",
        "SELECT 'it''s; fine'",
    ]
    assert [p.line for p in parts] == [2, 2, 3, 4, 7]
    for p in parts:
        assert script[p.offset : p.offset + len(p.sql)] == p.sql


@pytest.mark.parametrize(
    ("script", "what", "line"),
    [
        ("SELECT 1;\nSELECT 'abc", "unterminated string", 2),
        ('SELECT "abc', "unterminated quoted identifier", 1),
        ("SELECT 1 /* never closed", "unterminated comment", 1),
        ("SELECT $x$ abc", "unterminated dollar-quoted string", 1),
    ],
)
def test_unterminated(script: str, what: str, line: int) -> None:
    with pytest.raises(ParseError, match=what) as info:
        split_statements(script)
    assert info.value.span is not None and info.value.span.line == line


def test_empty_script() -> None:
    assert split_statements("  -- nothing\n /* at all */ ;; ") == []
