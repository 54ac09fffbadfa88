"""DuckDB behaviours over Delta tables that a plain view over Parquet files lacks.

- `rowid`: a row's position (files oldest first), through a companion view whose extra column
  `*` never shows; compared with DuckDB's own tables holding the same rows.
- An empty table is read from an empty DuckDB table, so EXPLAIN shows the plan DuckDB makes over
  a table (not an optimised-away constant).
- `BITSTRING_AGG(col)` gets the bounds DuckDB takes from column statistics, which a view over
  text-stored HUGEINTs or over a file of NULLs lacks.
- DATEs beyond delta-rs's range (DuckDB reaches year 5,881,580) are written without file
  statistics for their column instead of panicking the writer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import deltalake
import duckdb
import pyarrow as pa
import pytest

import lakesql

SETUP = [
    "CREATE TABLE t (i INTEGER, s VARCHAR)",
    "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "INSERT INTO t VALUES (4, 'd'), (4, 'e')",
    "CREATE TABLE u AS SELECT range AS i FROM range(10)",
]

QUERIES = [
    "SELECT rowid, * FROM t ORDER BY rowid",
    "SELECT * FROM t WHERE rowid >= 3 ORDER BY i, s",
    "SELECT t.rowid, t.* FROM t ORDER BY 1",
    "SELECT x.rowid AS r, x.s FROM t AS x ORDER BY r DESC",
    "SELECT ARRAY(SELECT i FROM t ORDER BY rowid DESC)",
    "SELECT rowid // 2 AS g, COUNT(rowid) FROM t GROUP BY g ORDER BY g",
    "SELECT t.rowid, u.i FROM t JOIN u ON t.rowid = u.i ORDER BY 1",
    "SELECT * FROM (SELECT rowid AS pos, s FROM t) WHERE pos IN (0, 4) ORDER BY pos",
    "SELECT COUNT(*) FROM u WHERE rowid > 100",
    "WITH c AS (SELECT rowid AS p, i FROM u) SELECT max(p), sum(i) FROM c",
    # each table's position column has its own name: a NATURAL JOIN never pairs them
    "SELECT a.rowid, b.rowid, * FROM t AS a NATURAL JOIN t AS b ORDER BY ALL",
    "SELECT a.rowid, b.rowid, a.*, b.* FROM t AS a JOIN t AS b USING (i, s) ORDER BY ALL",
]


def _both(root: Path, setup: list[str]) -> tuple[Any, Any, Any]:
    """(lakesql connection, its cursor, a DuckDB connection), each after running `setup`."""
    con = lakesql.connect(str(root))
    cur = con.cursor()
    duck = duckdb.connect()
    for sql in setup:
        cur.execute(sql)
        duck.execute(sql)
    return con, cur, duck


@pytest.fixture
def both(tmp_path: Path) -> Any:
    con, cur, duck = _both(tmp_path / "wh", SETUP)
    yield cur, duck
    con.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_rowid_matches_duckdb_tables(both: tuple[Any, Any], sql: str) -> None:
    cur, duck = both
    got = cur.execute(sql).fetchall()
    assert got == duck.execute(sql).fetchall()
    names = [d[0] for d in cur.description]
    assert not any("__lakesql" in n for n in names)
    if not sql.startswith("SELECT ARRAY"):  # DuckDB names a subquery by its internal rewrite
        assert names == [d[0] for d in duck.description]


def test_rowid_column_never_shows(both: tuple[Any, Any]) -> None:
    cur, _ = both
    cur.execute("SELECT *, rowid FROM t")
    assert [d[0] for d in cur.description] == ["i", "s", "rowid"]
    cur.execute("DESCRIBE SELECT * FROM t WHERE rowid > 0")
    assert [r[0] for r in cur.fetchall()] == ["i", "s"]


def test_view_over_rowid_follows_new_versions(both: tuple[Any, Any]) -> None:
    cur, duck = both
    for c in (cur, duck):
        c.execute("CREATE VIEW late AS SELECT * FROM t WHERE rowid >= 4")
        c.execute("INSERT INTO t VALUES (9, 'z')")
    assert cur.execute("SELECT * FROM late").fetchall() == [(4, "e"), (9, "z")]
    assert (
        cur.execute("SELECT * FROM late").fetchall()
        == duck.execute("SELECT * FROM late").fetchall()
    )


def test_rowid_in_create_table_as(both: tuple[Any, Any]) -> None:
    cur, _ = both
    cur.execute("CREATE TABLE pos AS SELECT rowid AS p, s FROM t")
    assert cur.execute("SELECT * FROM pos ORDER BY p").fetchall() == [
        (0, "a"),
        (1, "b"),
        (2, "c"),
        (3, "d"),
        (4, "e"),
    ]


def test_rowid_is_renumbered_by_delete(both: tuple[Any, Any]) -> None:
    """Documented difference: DELETE rewrites the table's files, so positions close up (DuckDB
    keeps a deleted row's rowid unused)."""
    cur, _ = both
    cur.execute("DELETE FROM t WHERE i = 2")
    assert cur.execute("SELECT rowid, i FROM t ORDER BY rowid").fetchall() == [
        (0, 1),
        (1, 3),
        (2, 4),
        (3, 4),
    ]


def test_a_real_rowid_column_wins(tmp_path: Path) -> None:
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute("CREATE TABLE e (a INTEGER, rowid INTEGER)")
    cur.execute("INSERT INTO e VALUES (1, 42), (2, 7)")
    assert cur.execute("SELECT rowid FROM e ORDER BY a").fetchall() == [(42,), (7,)]
    assert cur.execute("SELECT * FROM e ORDER BY a").fetchall() == [(1, 42), (2, 7)]
    cur.execute("CREATE TABLE empty (i INTEGER)")
    assert cur.execute("SELECT rowid, * FROM empty").fetchall() == []
    con.close()


def test_explain_over_an_empty_table_is_a_table_plan(tmp_path: Path) -> None:
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    sql = "CREATE TABLE test (id INT, provider INT, record_key INT, record_rank INT)"
    cur.execute(sql)
    duck = duckdb.connect()
    duck.execute(sql)
    query = (
        "EXPLAIN SELECT DISTINCT ON (id, provider) record_key FROM test "
        "ORDER BY id, provider, record_rank DESC"
    )
    plan = cur.execute(query).fetchall()[0][1]
    assert "HASH_GROUP_BY" in plan and "arg_min_null" in plan
    assert "HASH_GROUP_BY" in duck.execute(query).fetchall()[0][1]
    assert cur.execute("SELECT count(*) FROM test").fetchall() == [(0,)]
    cur.execute("INSERT INTO test VALUES (1, 2, 3, 4)")
    assert cur.execute("SELECT * FROM test").fetchall() == [(1, 2, 3, 4)]
    con.close()


def test_extreme_dates_are_written_without_their_statistics(tmp_path: Path) -> None:
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute("CREATE TABLE all_types AS FROM test_all_types()")
    got = cur.execute("SELECT date, [date] FROM all_types").fetchall()
    duck = duckdb.connect().execute("SELECT date, [date] FROM test_all_types()").fetchall()
    assert got == duck
    cur.execute("CREATE TABLE lists AS SELECT [date] AS ds FROM test_all_types()")
    assert cur.execute("SELECT count(*) FROM lists").fetchall() == [(3,)]
    # ordinary dates keep their statistics (data skipping)
    cur.execute("CREATE TABLE plain AS SELECT DATE '2024-01-31' AS d")
    stats = deltalake.DeltaTable(str(tmp_path / "wh" / "main" / "plain")).get_add_actions(
        flatten=True
    )
    assert pa.table(stats).column("min.d").to_pylist() == [dt.date(2024, 1, 31)]
    con.close()


def test_an_extreme_date_after_the_first_batch_commits_nothing(tmp_path: Path) -> None:
    con = lakesql.connect(str(tmp_path / "wh"), batch_rows=2)
    cur = con.cursor()
    cur.execute("CREATE TABLE d (i INTEGER, d DATE)")
    with pytest.raises(lakesql.DataError, match="beyond year 262,000"):
        cur.execute(
            "INSERT INTO d SELECT range, CASE WHEN range = 4 THEN DATE '5881580-07-10' "
            "ELSE DATE '2024-01-01' END FROM range(5)"
        )
    assert cur.execute("SELECT count(*) FROM d").fetchall() == [(0,)]
    cur.execute("INSERT INTO d VALUES (9, DATE '5881580-07-10')")  # on its own: accepted
    assert cur.execute("SELECT d FROM d").fetchall()[0][0] is not None
    con.close()


@pytest.mark.parametrize(
    ("setup", "query"),
    [
        (
            [
                "CREATE TABLE h (i HUGEINT)",
                "INSERT INTO h VALUES (12243372036854775807), (12243372036854722124), (NULL)",
            ],
            "SELECT bit_length(BITSTRING_AGG(i)), bit_count(BITSTRING_AGG(i)) FROM h",
        ),
        (
            [
                "CREATE TABLE n (i INTEGER, g VARCHAR)",
                "INSERT INTO n VALUES (NULL, 'a')",  # a file with no min/max for i
                "INSERT INTO n VALUES (6, 'a'), (9, 'b'), (NULL, 'b')",
            ],
            "SELECT g, BITSTRING_AGG(i)::VARCHAR FROM n GROUP BY g ORDER BY g",
        ),
    ],
)
def test_bitstring_agg_gets_the_bounds_statistics_give(
    tmp_path: Path, setup: list[str], query: str
) -> None:
    con, cur, duck = _both(tmp_path / "wh", setup)
    assert cur.execute(query).fetchall() == duck.execute(query).fetchall()
    for c in (cur, duck):  # without the optimizer DuckDB has no statistics: the same error
        c.execute("PRAGMA disable_optimizer")
    with pytest.raises(lakesql.Error, match="Could not retrieve required statistics"):
        cur.execute(query)
    with pytest.raises(duckdb.Error, match="Could not retrieve required statistics"):
        duck.execute(query)
    con.close()


def test_small_tables_are_scanned_in_insertion_order(tmp_path: Path) -> None:
    """A table of several files but no more rows than one DuckDB row group is read in insertion
    order even by unordered queries, as a DuckDB table of one row group is (one thread)."""
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute("CREATE TABLE s (a INTEGER, b INTEGER)")
    for a, b in [(11, 22), (12, 21), (13, 22)]:
        cur.execute(f"INSERT INTO s VALUES ({a}, {b})")
    cur.execute("SET scalar_subquery_error_on_multiple_rows = false")
    cur.execute("PRAGMA enable_verification")  # each query also run several other ways
    for _ in range(10):
        assert cur.execute("SELECT (SELECT a * 42 FROM s)").fetchall() == [(462,)]
        got = cur.execute(
            "SELECT a, (WITH c AS (SELECT sum(b) FROM s t WHERE s.a = t.a) SELECT * FROM c) FROM s"
        ).fetchall()
        assert [r[0] for r in got] == [11, 12, 13]
    plan = cur.execute("EXPLAIN SELECT * FROM s").fetchall()[0][1]
    assert "ORDER_BY" in plan
    cur.execute("PRAGMA disable_verification")
    cur.execute("CREATE TABLE big AS SELECT range AS i FROM range(200000)")
    cur.execute("INSERT INTO big VALUES (-1)")
    assert "ORDER_BY" not in cur.execute("EXPLAIN SELECT * FROM big").fetchall()[0][1]
    con.close()


def test_rowid_of_a_partitioned_table_is_refused_clearly(tmp_path: Path) -> None:
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute("CREATE TABLE p (id INTEGER, grp VARCHAR) PARTITIONED BY (grp)")
    cur.execute("INSERT INTO p VALUES (1, 'a'), (2, 'b')")
    for _ in range(2):  # and again: the refusal is not remembered as a companion view
        with pytest.raises(lakesql.NotSupportedError, match="rowid is not available"):
            cur.execute("SELECT rowid, * FROM p")
    assert cur.execute("SELECT * FROM p ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
    con.close()
