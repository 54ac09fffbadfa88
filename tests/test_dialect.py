"""The LakeSQL dialect: golden round trips, ownership of statements, positioned errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlglot import exp

from lakesql import ParseError
from lakesql.dialect import expressions as lx
from lakesql.dialect.classify import is_own_statement_text
from lakesql.dialect.dialect import generate, parse_statement
from lakesql.script import split_statements

GOLDEN = Path(__file__).parent / "fixtures" / "dialect"
CASES = [
    pytest.param(st.sql, id=f"{path.stem}:{st.line}")
    for path in sorted(GOLDEN.glob("*.sql"))
    for st in split_statements(path.read_text())
]


@pytest.mark.parametrize("sql", CASES)
def test_golden_round_trip(sql: str) -> None:
    assert generate(parse_statement(sql)) == sql


@pytest.mark.parametrize(
    ("sql", "node"),
    [
        ("DESCRIBE HISTORY t", lx.DescribeHistory),
        ("describe history t", lx.DescribeHistory),
        ("RESTORE TABLE t TO VERSION AS OF 1", lx.RestoreTable),
        ("OPTIMIZE t", lx.Optimize),
        ("VACUUM t RETAIN 1 HOURS", lx.Vacuum),
        ("SHOW TABLES", lx.ShowTables),
        ("SET lakesql.threads = 2", lx.SetSetting),
        ("RESET lakesql.threads", lx.ResetSetting),
        ("CREATE FUNCTION f(a INT) RETURNS INT LANGUAGE PYTHON AS 'm:f'", lx.CreatePythonFunction),
        # DuckDB's own statements stay DuckDB's
        ("CREATE FUNCTION f(a) AS a + 1", exp.Create),
        ("CREATE MACRO f(a) AS a + 1", exp.Create),
        ("SET threads = 2", exp.Set),
        ("DESCRIBE t", exp.Describe),
        ("SELECT * FROM t QUALIFY row_number() OVER () = 1", exp.Select),
    ],
)
def test_statement_ownership(sql: str, node: type) -> None:
    assert isinstance(parse_statement(sql), node)


def test_time_travel_parses_on_tables() -> None:
    tree = parse_statement(
        "SELECT * FROM t VERSION AS OF 3 JOIN s.u TIMESTAMP AS OF '2024-01-01' ON TRUE"
    )
    versions = [t.args.get("version") for t in tree.find_all(exp.Table)]
    assert [str(v.this) for v in versions] == ["VERSION", "TIMESTAMP"]


@pytest.mark.parametrize(
    ("sql", "line", "column", "fragment"),
    [
        ("RESTORE TABLE t TO VERSON 3", 1, 20, "VERSON"),
        ("OPTIMIZE t ZORDER BY", 1, 19, "BY"),
        ("DESCRIBE HISTORY\n  ", 1, 1, ""),
        ("RESTORE TABLE t\nTO VERSION AS OF x", 2, 18, "x"),
    ],
)
def test_errors_carry_positions(sql: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_statement(sql)
    span = info.value.span
    assert span is not None
    assert span.line == line
    if fragment:
        assert span.column == column
        assert sql.split("\n")[line - 1][column - 1 :].startswith(fragment)
    assert "^" in str(info.value)


def test_own_leading_words() -> None:
    assert is_own_statement_text("DESCRIBE HISTORY x")
    assert is_own_statement_text("optimize x")
    assert not is_own_statement_text("SELECT 1")
    assert not is_own_statement_text("VACUUM")
