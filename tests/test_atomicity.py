"""A statement that fails changes nothing: every table keeps its Delta version and its rows.

Errors are the matching lakesql.Error subclass, say what went wrong, and never leak the name
of an internal staging table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import deltalake
import pytest

import lakesql

LAKESQL = Path(sys.executable).parent / "lakesql"


class State:
    """Version, rows and folders of every table of a warehouse, to compare before/after."""

    def __init__(self, root: Path, cur: Any):
        self.versions = {}
        self.rows = {}
        for schema in sorted(
            p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")
        ):
            for table in sorted(p for p in schema.iterdir() if p.is_dir()):
                name = f"{schema.name}.{table.name}"
                self.versions[name] = deltalake.DeltaTable(str(table)).version()
                summary = cur.execute(
                    f"SELECT count(*), sum(hash(COLUMNS(*))::HUGEINT) FROM {name}"
                ).fetchall()
                if summary[0][0] <= 100:
                    summary.extend(cur.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall())
                self.rows[name] = summary
        self.folders = sorted(str(p.relative_to(root)) for p in root.glob("*/*"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"State({vars(self)!r})"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with a few tables, built once and copied by the fixtures."""
    root = tmp_path_factory.mktemp("template") / "wh"
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        cur.execute("CREATE TABLE t (id INTEGER NOT NULL, name VARCHAR, n INTEGER)")
        cur.execute("INSERT INTO t VALUES (1, 'one', 10), (2, 'two', 0), (3, 'three', 5)")
        cur.execute(
            "CREATE TABLE src AS SELECT * FROM (VALUES (1, 'x', 'bad'), (4, NULL, '7'), (5, 'y', '8')) v(id, name, raw)"
        )
        cur.execute("CREATE SCHEMA other")
        cur.execute("CREATE TABLE other.big AS SELECT i AS id FROM range(100000) r(i)")
    return root


def _open(root: Path) -> tuple[Any, Any]:
    # Small batches: a query failing on a late row fails after earlier batches were written.
    con = lakesql.connect(str(root), batch_rows=1000)
    return con, con.cursor()


@pytest.fixture(scope="module")
def shared(template: Path, tmp_path_factory: pytest.TempPathFactory):
    """One warehouse for the statements that must fail (and so cannot change it)."""
    root = tmp_path_factory.mktemp("shared") / "wh"
    shutil.copytree(template, root)
    con, cur = _open(root)
    yield root, cur
    con.close()


@pytest.fixture
def wh(template: Path, tmp_path: Path):
    """A warehouse of its own, for tests that also commit."""
    root = tmp_path / "wh"
    shutil.copytree(template, root)
    con, cur = _open(root)
    yield root, cur
    con.close()


def _fails(
    root: Path, cur: Any, sql: str, error: type[lakesql.Error], *words: str
) -> lakesql.Error:
    """Run `sql`, expect `error`, and check nothing changed."""
    before = State(root, cur)
    with pytest.raises(error) as info:
        cur.execute(sql)
    message = str(info.value)
    assert "__lakesql" not in message, message
    assert "Traceback" not in message, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    assert State(root, cur) == before
    leftover = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_\\_lakesql%' ESCAPE '\\'"
    ).fetchall()
    assert leftover == [], "staging tables must be dropped after a failure"
    return info.value


# -- INSERT --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error", "words"),
    [
        ("INSERT INTO t VALUES ('abc', 'x', 1)", lakesql.DataError, ["abc", "convert"]),
        ("INSERT INTO t VALUES (7, 'x', 'zz')", lakesql.DataError, ["zz"]),
        (
            "INSERT INTO t VALUES (8, 'ok', 1), (9, 'late', 'not a number')",
            lakesql.DataError,
            ["not a number"],
        ),
        ("INSERT INTO t VALUES (NULL, 'x', 1)", lakesql.IntegrityError, ["NOT NULL", "id"]),
        ("INSERT INTO t (name) VALUES ('no id')", lakesql.IntegrityError, ["NOT NULL", "id"]),
        (
            "INSERT INTO t SELECT CASE WHEN id < 99000 THEN id END, 'x', 1 FROM other.big",
            lakesql.IntegrityError,
            ["NOT NULL"],
        ),
        (
            "INSERT INTO t SELECT id, 'x', CAST(CASE WHEN id = 99999 THEN 'oops' ELSE '1' END AS INTEGER) FROM other.big",
            lakesql.DataError,
            ["oops"],
        ),
        ("INSERT INTO t VALUES (1, 2)", lakesql.ProgrammingError, ["3"]),
        ("INSERT INTO t (id, nope) VALUES (1, 2)", lakesql.ProgrammingError, ["nope"]),
        ("INSERT OVERWRITE t SELECT NULL, 'x', 1", lakesql.IntegrityError, ["NOT NULL"]),
        ("INSERT OVERWRITE t SELECT 'x', 'x', 1", lakesql.DataError, ["convert"]),
    ],
)
def test_failing_insert(shared, sql: str, error: type[lakesql.Error], words: list[str]) -> None:
    root, cur = shared
    e = _fails(root, cur, sql, error, *words)
    assert isinstance(e, lakesql.DatabaseError)


def test_failing_copy_from(shared, tmp_path: Path) -> None:
    root, cur = shared
    src = tmp_path / "bad.csv"
    src.write_text("id,name,n\n10,ten,1\n11,eleven,eleven\n")
    _fails(root, cur, f"COPY t FROM '{src}' (HEADER)", lakesql.DataError, "eleven")
    src.write_text("id,name,n\n10,ten,1\n,no id,2\n")
    _fails(root, cur, f"COPY t FROM '{src}' (HEADER)", lakesql.IntegrityError, "NOT NULL")


# -- UPDATE / DELETE -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error", "words"),
    [
        ("UPDATE t SET n = CAST(name AS INTEGER)", lakesql.DataError, ["convert"]),
        ("UPDATE t SET n = 100 / n", lakesql.DataError, ["inf", "out of range"]),
        ("UPDATE t SET n = n + 2147483647", lakesql.DataError, ["overflow"]),
        (
            "UPDATE t SET n = error('refusing row ' || id) WHERE id = 3",
            lakesql.DataError,
            ["refusing row 3"],
        ),
        ("UPDATE t SET id = NULL WHERE id = 2", lakesql.IntegrityError, ["NOT NULL", "id"]),
        ("UPDATE t SET nope = 1", lakesql.ProgrammingError, ["nope"]),
        (
            "UPDATE other.big SET id = CAST(CASE WHEN id = 99999 THEN 'late' ELSE '1' END AS BIGINT)",
            lakesql.DataError,
            ["late"],
        ),
        ("DELETE FROM t WHERE CAST(name AS INTEGER) > 1", lakesql.DataError, ["convert"]),
        ("DELETE FROM t WHERE nope = 1", lakesql.ProgrammingError, ["nope"]),
    ],
)
def test_failing_update_or_delete(
    shared, sql: str, error: type[lakesql.Error], words: list[str]
) -> None:
    root, cur = shared
    e = _fails(root, cur, sql, error)
    message = str(e).lower()
    assert any(w.lower() in message for w in words), message


# -- MERGE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error", "words"),
    [
        (
            "MERGE INTO t USING src ON t.id = src.id "
            "WHEN MATCHED THEN UPDATE SET n = CAST(src.raw AS INTEGER) "
            "WHEN NOT MATCHED THEN INSERT VALUES (src.id, src.name, CAST(src.raw AS INTEGER))",
            lakesql.DataError,
            ["bad"],
        ),
        (
            "MERGE INTO t USING src ON t.id = src.id "
            "WHEN NOT MATCHED THEN INSERT VALUES (CASE WHEN src.id = 5 THEN NULL ELSE src.id END, src.name, 0)",
            lakesql.IntegrityError,
            ["NOT NULL"],
        ),
        (
            "MERGE INTO t USING src ON t.id = src.id WHEN MATCHED THEN DELETE "
            "WHEN NOT MATCHED THEN INSERT VALUES (src.id, src.name, src.raw)",
            lakesql.DataError,
            ["convert"],
        ),
        (
            "MERGE INTO t USING src ON t.id = src.nope WHEN MATCHED THEN DELETE",
            lakesql.ProgrammingError,
            ["nope"],
        ),
    ],
)
def test_failing_merge(shared, sql: str, error: type[lakesql.Error], words: list[str]) -> None:
    root, cur = shared
    _fails(root, cur, sql, error, *words)


# -- CREATE TABLE AS -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error", "words"),
    [
        # The failing row comes late: earlier batches have already been streamed to delta-rs.
        (
            "CREATE TABLE c AS SELECT id, CAST(CASE WHEN id = 99990 THEN 'bad' ELSE id::VARCHAR END AS INTEGER) AS x "
            "FROM other.big",
            lakesql.DataError,
            ["bad", "convert"],
        ),
        (
            "CREATE TABLE c AS SELECT id, CASE WHEN id = 99990 THEN error('late failure') END AS x FROM other.big",
            lakesql.DataError,
            ["late failure"],
        ),
        (
            "CREATE TABLE c (id BIGINT NOT NULL) AS SELECT CASE WHEN id < 99990 THEN id END FROM other.big",
            lakesql.IntegrityError,
            ["NOT NULL", "id"],
        ),
        (
            "CREATE TABLE other.c AS SELECT 1 / 0 AS x, 'a'::INTEGER AS y",
            lakesql.DataError,
            ["convert"],
        ),
        ("CREATE TABLE c AS SELECT * FROM nope", lakesql.ProgrammingError, ["nope"]),
        ("CREATE TABLE c AS SELECT 1 AS a, 2 AS a", lakesql.DataError, ["duplicate"]),
        ("CREATE TABLE c (x INTEGER) PARTITIONED BY (y)", lakesql.ProgrammingError, ["y"]),
        ("CREATE TABLE nope.c AS SELECT 1 AS x", lakesql.UnknownObjectError, ["nope"]),
        # OR REPLACE of an existing table: the old version stays.
        (
            "CREATE OR REPLACE TABLE t AS SELECT id, CAST(CASE WHEN id = 99990 THEN 'bad' ELSE '1' END AS INTEGER) AS x "
            "FROM other.big",
            lakesql.DataError,
            ["bad"],
        ),
        (
            "CREATE OR REPLACE TABLE other.big AS SELECT CASE WHEN id = 99999 THEN error('stop') END AS id FROM other.big",
            lakesql.DataError,
            ["stop"],
        ),
    ],
)
def test_failing_create_table_as(
    shared, sql: str, error: type[lakesql.Error], words: list[str]
) -> None:
    root, cur = shared
    _fails(root, cur, sql, error, *words)
    assert not (root / "main" / "c").exists()
    assert not (root / "other" / "c").exists()


def test_failed_statements_leave_the_table_usable(wh) -> None:
    root, cur = wh
    for sql in [
        "INSERT INTO t VALUES (NULL, 'x', 1)",
        "UPDATE t SET n = CAST(name AS INTEGER)",
        "CREATE TABLE c AS SELECT CASE WHEN id = 99990 THEN error('x') END FROM other.big",
    ]:
        with pytest.raises(lakesql.Error):
            cur.execute(sql)
    cur.execute("INSERT INTO t VALUES (4, 'four', 4)")
    cur.execute("CREATE TABLE c AS SELECT * FROM t")
    assert cur.execute("SELECT id FROM c ORDER BY id").fetchall() == [(1,), (2,), (3,), (4,)]
    assert deltalake.DeltaTable(str(root / "main" / "t")).version() == 2
    assert deltalake.DeltaTable(str(root / "main" / "c")).version() == 0


def test_multi_statement_execute_stops_at_the_failure(wh) -> None:
    _root, cur = wh
    with pytest.raises(lakesql.DataError):
        cur.execute(
            "INSERT INTO t VALUES (4, 'four', 4); INSERT INTO t VALUES ('x', 'y', 1); INSERT INTO t VALUES (6, 'six', 6)"
        )
    assert cur.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (2,), (3,), (4,)]


# -- unknown tables ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM tt",
        "SELECT * FROM main.tt",
        "INSERT INTO tt VALUES (1, 'x', 1)",
        "UPDATE tt SET n = 1",
        "DELETE FROM tt",
        "MERGE INTO tt USING src ON tt.id = src.id WHEN MATCHED THEN DELETE",
        "DESCRIBE HISTORY tt",
        "SELECT * FROM tt VERSION AS OF 0",
        "DROP TABLE tt",
    ],
)
def test_table_not_found_suggests_close_name(shared, sql: str) -> None:
    root, cur = shared
    e = _fails(root, cur, sql, lakesql.UnknownObjectError, "tt")
    assert e.hint is not None and "'t'" in e.hint, e.hint
    assert "did you mean" in str(e)


def test_table_not_found_in_schema_suggests_qualified_name(shared) -> None:
    root, cur = shared
    e = _fails(root, cur, "INSERT INTO other.bigg VALUES (1)", lakesql.UnknownObjectError, "bigg")
    assert "big" in (e.hint or "")
    assert not (root / "other" / "bigg").exists()


# -- scripts run by the command line -------------------------------------------------------------


def test_script_syntax_error_in_the_middle(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    script = tmp_path / "load.sql"
    script.write_text(
        "-- load some rows\n"  # 1
        "CREATE TABLE a (id INTEGER NOT NULL);\n"  # 2
        "INSERT INTO a VALUES (1);\n"  # 3
        "INSERT INTO a\n"  # 4
        "  VALUES (2);\n"  # 5
        "SELEC * FROM a;\n"  # 6: the syntax error
        "INSERT INTO a VALUES (3);\n"  # 7
        "CREATE TABLE b AS SELECT 1 AS x;\n"  # 8
    )
    assert LAKESQL.is_file(), LAKESQL
    done = subprocess.run(
        [str(LAKESQL), "--warehouse", str(root), "run", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert f"{script}:6" in done.stderr, done.stderr
    assert "SELEC" in done.stderr
    # Statements before the error are committed, the ones after it never ran.
    path = str(root / "main" / "a")
    table = deltalake.DeltaTable(path)
    assert table.version() == 2
    assert [c["lakesql.sql"] for c in table.history()] == [
        "INSERT INTO a\n  VALUES (2)",
        "INSERT INTO a VALUES (1)",
        "CREATE TABLE a (id INTEGER NOT NULL)",
    ]
    assert not (root / "main" / "b").exists()
    with lakesql.connect(str(root)) as con:
        assert con.cursor().execute("SELECT * FROM a ORDER BY id").fetchall() == [(1,), (2,)]


def test_script_data_error_names_its_line(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    script = tmp_path / "s.sql"
    script.write_text(
        "CREATE TABLE a AS SELECT 1 AS id;\n"
        "\n"
        "INSERT INTO a VALUES ('not a number');\n"
        "INSERT INTO a VALUES (3);\n"
    )
    done = subprocess.run(
        [str(LAKESQL), "--warehouse", str(root), "run", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 1
    assert f"{script}:3" in done.stderr and "not a number" in done.stderr, done.stderr
    assert deltalake.DeltaTable(str(root / "main" / "a")).version() == 0
