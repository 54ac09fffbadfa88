"""Security: names never address files outside the warehouse; parameters are bound, never
interpolated into the statement text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lakesql
from lakesql.catalog.warehouse import Warehouse

HOSTILE_NAMES = [
    '"../evil"',
    '"../../evil"',
    '"/tmp/lakesql-evil"',
    '"a/b"',
    '"a\\b"',
    '".."',
    '"."',
    '""',
    '"~"',
    '"x\ny"',
    '"evil/../main"',
    '"%2e%2e"',
    '"_lakesql"',
    '"_delta_log"',
    '"\u2025evil"',  # two-dot leader, a lookalike of ".."
    '"' + "a" * 129 + '"',
]

# {name} is replaced by a hostile name; each statement must fail without touching the disk.
TEMPLATES = [
    "CREATE TABLE {name} (a INT)",
    "CREATE TABLE {name} AS SELECT 1 AS a",
    "CREATE OR REPLACE TABLE {name} AS SELECT 1 AS a",
    "CREATE TABLE IF NOT EXISTS {name} (a INT)",
    "CREATE TABLE {name}.t (a INT)",
    "CREATE TABLE main.{name} (a INT)",
    "CREATE SCHEMA {name}",
    "CREATE FEATURE TABLE {name} PRIMARY KEY (a) AS SELECT 1 AS a",
    "ALTER TABLE t RENAME TO {name}",
    "INSERT INTO {name} VALUES (1)",
    "DROP TABLE {name}",
    "DROP SCHEMA {name} CASCADE",
    "DESCRIBE HISTORY {name}",
    "VACUUM {name} RETAIN 0 HOURS",
    "OPTIMIZE {name}",
    "RESTORE TABLE {name} TO VERSION AS OF 0",
    "CREATE FUNCTION {name}(a BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS 'math:fabs'",
]


def _listing(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A folder holding a warehouse and a sibling folder that must stay untouched."""
    base = tmp_path_factory.mktemp("box")
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_text("do not touch")
    con = lakesql.connect(str(base / "warehouse"), udfs=str(base / "no-udfs"))
    cur = con.cursor()
    cur.execute("CREATE TABLE t (a INT, s VARCHAR)")
    cur.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    yield base, con
    con.close()


@pytest.mark.parametrize("template", TEMPLATES)
def test_hostile_names_stay_inside_the_warehouse(box: Any, template: str) -> None:
    base, con = box
    before = _listing(base)
    for name in HOSTILE_NAMES:
        sql = template.format(name=name)
        with pytest.raises(lakesql.Error) as info:
            con.cursor().execute(sql)
        assert not isinstance(info.value, lakesql.InternalError), f"{sql!r}: {info.value}"
        assert _listing(base) == before, f"{sql!r} changed the file system"
    assert not Path("/tmp/lakesql-evil").exists()
    assert (base / "outside" / "secret.txt").read_text() == "do not touch"


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a/b", "a\\b", "..", ".", "", "x\x00", "_x", "1x", "a" * 129, "a.b"]
)
def test_catalog_refuses_path_like_names(tmp_path: Path, name: str) -> None:
    wh = Warehouse(tmp_path / "wh")
    with pytest.raises(lakesql.ProgrammingError):
        wh.ref(None, name)
    if name:  # an empty schema means the default one
        with pytest.raises(lakesql.ProgrammingError):
            wh.ref(name, "t")
    with pytest.raises(lakesql.ProgrammingError):
        wh.create_schema(name)


INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE t; --",
    "1); DELETE FROM t; --",
    '" OR 1=1 --',
    "$1",
    "?",
    "' || (SELECT count(*) FROM t) || '",
    "\\'; DROP TABLE t; --",
    "line1\nline2; DROP TABLE t",
    "é' UNION SELECT 99, 'pwned' --",
    "/* comment */ 1",
    "${x}",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_parameters_are_bound_not_interpolated(box: Any, value: str) -> None:
    _base, con = box
    cur = con.cursor()
    version = len(cur.execute("DESCRIBE HISTORY t").fetchall())
    assert cur.execute("SELECT ?", [value]).fetchall() == [(value,)]
    assert cur.execute("SELECT $1 || $1", [value]).fetchall() == [(value + value,)]
    assert cur.execute("SELECT count(*) FROM t WHERE s = ?", [value]).fetchall() == [(0,)]
    # writes through the staging path bind the same way
    cur.execute("DELETE FROM t WHERE s = ?", [value])
    assert cur.rowcount == 0
    cur.execute("UPDATE t SET s = ? WHERE a = -1", [value])
    assert cur.rowcount == 0
    cur.execute(
        "MERGE INTO t USING (SELECT ? AS s) AS src ON t.s = src.s WHEN MATCHED THEN DELETE",
        [value],
    )
    assert cur.rowcount == 0
    assert len(cur.execute("DESCRIBE HISTORY t").fetchall()) == version  # nothing committed
    cur.execute("INSERT INTO t VALUES (?, ?)", [100, value])
    stored = cur.execute("SELECT s FROM t WHERE a = 100").fetchall()
    if stored != [(value,)]:
        cur.execute("DELETE FROM t WHERE a = 100")
    assert stored == [(value,)]
    newest = cur.execute("DESCRIBE HISTORY t").fetchone()
    cur.execute("DELETE FROM t WHERE a = 100")
    assert newest[5] == "INSERT INTO t VALUES (?, ?)"  # the statement, not the values
    cur.execute("CREATE OR REPLACE TABLE inj AS SELECT ? AS v", [value])
    assert cur.execute("SELECT v FROM inj").fetchall() == [(value,)]
    assert sorted(cur.execute("SELECT a, s FROM t").fetchall()) == [(1, "one"), (2, "two")]


def test_statement_with_nul_byte_is_refused(box: Any) -> None:
    """DuckDB stops reading at a NUL byte: `... \\x00WHERE ...` would silently lose the WHERE."""
    _base, con = box
    with pytest.raises(lakesql.ParseError, match="NUL"):
        con.cursor().execute("SELECT count(*) FROM t \x00WHERE a = 1")
    with pytest.raises(lakesql.ParseError, match="NUL"):
        con.cursor().execute("DELETE FROM t \x00WHERE a = 1")
    assert con.cursor().execute("SELECT count(*) FROM t").fetchall() == [(2,)]
    assert con.cursor().execute("SELECT ?", ["a\x00b"]).fetchall() == [("a\x00b",)]  # bound: fine


def test_deeply_nested_statement_is_run_like_duckdb(box: Any) -> None:
    """Too deep for lakesql's parser, so DuckDB decides, exactly as without lakesql."""
    _base, con = box
    depth = 3000
    sql = "SELECT " + "(" * depth + "41 + 1" + ")" * depth
    assert con.cursor().execute(sql).fetchall() == [(42,)]
