"""Warehouse SQL, statement by statement, on real Delta tables.

Each test checks what lakesql shows, and where it matters what other Delta readers see in the
same folder: delta-rs metadata (`deltalake.DeltaTable`: version, history, file list, schema
only) and plain DuckDB reading the table with the delta extension.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import deltalake
import duckdb
import pytest
from helpers import Wh

import lakesql

EXTENSION = (
    Path(duckdb.__file__).parent.parent
    / "duckdb_extension_delta"
    / "extensions"
    / f"v{duckdb.__version__}"
    / "delta.duckdb_extension"
)


@pytest.fixture(scope="module")
def plain_duckdb():
    """Plain DuckDB with the delta extension loaded from the installed package."""
    assert EXTENSION.is_file(), EXTENSION
    con = duckdb.connect()
    con.execute(f"LOAD '{EXTENSION}'")
    yield con
    con.close()


def delta_scan(con: duckdb.DuckDBPyConnection, path: str, order: str) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM delta_scan('{path}') ORDER BY {order}").fetchall()


# -- CREATE TABLE --------------------------------------------------------------------------------


def test_create_table_columns_not_null_partition_comment(wh: Wh, plain_duckdb) -> None:
    wh.run(
        "CREATE TABLE sales (id INTEGER NOT NULL, region VARCHAR, amount DECIMAL(10, 2), day DATE) "
        "PARTITIONED BY (region) COMMENT 'daily sales'"
    )
    assert wh.rows("DESCRIBE sales") == [
        ("id", "INTEGER", "NO", None, None, None),
        ("region", "VARCHAR", "YES", "PARTITION", None, None),
        ("amount", "DECIMAL(10,2)", "YES", None, None, None),
        ("day", "DATE", "YES", None, None, None),
    ]
    assert wh.rows("SELECT count(*) FROM sales") == [(0,)]
    table = deltalake.DeltaTable(wh.path("sales"))
    assert table.version() == 0
    fields = {f.name: f for f in table.schema().fields}
    assert list(fields) == ["id", "region", "amount", "day"]
    assert fields["id"].nullable is False and fields["region"].nullable is True
    create = table.history()[-1]
    meta = json.loads(create["operationParameters"]["metadata"])
    assert meta["partitionColumns"] == ["region"]
    assert meta["description"] == "daily sales"

    wh.run(
        "INSERT INTO sales VALUES (1, 'eu', 1.50, DATE '2024-01-01'), (2, 'us', 2.25, NULL), (3, NULL, 0, NULL)"
    )
    uris = deltalake.DeltaTable(wh.path("sales")).file_uris()
    assert any("region=eu" in u for u in uris) and any("region=us" in u for u in uris)
    expected = [
        (1, "eu", Decimal("1.50"), dt.date(2024, 1, 1)),
        (2, "us", Decimal("2.25"), None),
        (3, None, Decimal("0.00"), None),
    ]
    assert wh.rows("SELECT * FROM sales ORDER BY id") == expected
    assert delta_scan(plain_duckdb, wh.path("sales"), "id") == expected
    with pytest.raises(lakesql.IntegrityError, match="id"):
        wh.run("INSERT INTO sales VALUES (NULL, 'eu', 1, NULL)")


def test_create_table_as_query(wh: Wh, plain_duckdb) -> None:
    wh.run(
        "CREATE TABLE sq AS SELECT i AS n, i * i AS square, 'n' || i AS label, [i, i + 1] AS pair "
        "FROM range(1, 6) r(i)"
    )
    assert wh.rows("SELECT * FROM sq ORDER BY n") == [
        (i, i * i, f"n{i}", [i, i + 1]) for i in range(1, 6)
    ]
    assert [(r[0], r[1]) for r in wh.rows("DESCRIBE sq")] == [
        ("n", "BIGINT"),
        ("square", "BIGINT"),
        ("label", "VARCHAR"),
        ("pair", "BIGINT[]"),
    ]
    assert wh.version("sq") == 0
    assert wh.history("sq")[0]["operation"] == "CREATE TABLE AS SELECT"
    assert delta_scan(plain_duckdb, wh.path("sq"), "n") == wh.rows("SELECT * FROM sq ORDER BY n")


def test_create_table_as_query_with_column_types(wh: Wh) -> None:
    wh.run("CREATE TABLE typed (a BIGINT NOT NULL, b VARCHAR) AS SELECT 1, 2 UNION ALL SELECT 3, 4")
    assert [(r[0], r[1], r[2]) for r in wh.rows("DESCRIBE typed")] == [
        ("a", "BIGINT", "NO"),
        ("b", "VARCHAR", "YES"),
    ]
    assert wh.rows("SELECT * FROM typed ORDER BY a") == [(1, "2"), (3, "4")]


def test_create_or_replace(wh: Wh) -> None:
    wh.run("CREATE TABLE r AS SELECT 1 AS a")
    wh.run("CREATE OR REPLACE TABLE r AS SELECT 'x' AS b, 2.5 AS c")
    assert wh.rows("SELECT * FROM r") == [("x", Decimal("2.5"))]
    assert [r[0] for r in wh.rows("DESCRIBE r")] == ["b", "c"]
    assert wh.version("r") == 1
    assert wh.rows("SELECT * FROM r VERSION AS OF 0") == [(1,)]
    wh.run("CREATE OR REPLACE TABLE r (z INTEGER NOT NULL)")
    assert wh.rows("SELECT count(*) FROM r") == [(0,)]
    assert [(c[0], c[2]) for c in wh.rows("DESCRIBE r")] == [("z", "NO")]
    assert wh.version("r") == 2
    assert [h["operation"] for h in wh.history("r")] == [
        "CREATE OR REPLACE TABLE",
        "CREATE OR REPLACE TABLE AS SELECT",
        "CREATE TABLE AS SELECT",
    ]


def test_create_if_not_exists_and_existing(wh: Wh) -> None:
    wh.run("CREATE TABLE e (a INTEGER)")
    wh.run("INSERT INTO e VALUES (1)")
    wh.run("CREATE TABLE IF NOT EXISTS e (b VARCHAR)")
    wh.run("CREATE TABLE IF NOT EXISTS e AS SELECT 'no' AS b")
    assert wh.version("e") == 1
    assert wh.rows("SELECT * FROM e") == [(1,)]
    with pytest.raises(lakesql.ObjectExistsError, match="already exists"):
        wh.run("CREATE TABLE e (a INTEGER)")
    wh.run("CREATE TABLE IF NOT EXISTS f (a INTEGER)")
    assert wh.rows("SHOW TABLES") == [("main", "e"), ("main", "f")]


# -- schemas -------------------------------------------------------------------------------------


def test_schemas(wh: Wh) -> None:
    wh.run("CREATE SCHEMA staging")
    with pytest.raises(lakesql.ObjectExistsError):
        wh.run("CREATE SCHEMA staging")
    wh.run("CREATE SCHEMA IF NOT EXISTS staging")
    wh.run("CREATE TABLE staging.raw (id INTEGER, v VARCHAR)")
    wh.run("INSERT INTO staging.raw VALUES (1, 'a'), (2, 'b')")
    wh.run("CREATE TABLE staging.clean AS SELECT id, upper(v) AS v FROM staging.raw")
    wh.run("CREATE TABLE top AS SELECT 1 AS x")
    assert os.path.isdir(wh.path("raw", "staging"))
    assert wh.rows("SELECT * FROM staging.clean ORDER BY id") == [(1, "A"), (2, "B")]
    assert wh.rows("SHOW TABLES IN staging") == [("staging", "clean"), ("staging", "raw")]
    assert wh.rows("SHOW TABLES") == [("main", "top"), ("staging", "clean"), ("staging", "raw")]
    assert ("staging",) in wh.rows("SHOW SCHEMAS")
    with pytest.raises(lakesql.CatalogError, match="CASCADE"):
        wh.run("DROP SCHEMA staging")
    assert wh.rows("SELECT count(*) FROM staging.raw") == [(2,)]
    wh.run("DROP SCHEMA staging CASCADE")
    assert not (wh.root / "staging").exists()
    assert wh.rows("SHOW TABLES") == [("main", "top")]
    with pytest.raises(lakesql.ProgrammingError):
        wh.run("SELECT * FROM staging.raw")
    wh.run("DROP SCHEMA IF EXISTS staging")
    with pytest.raises(lakesql.UnknownObjectError):
        wh.run("DROP SCHEMA staging")
    wh.run("CREATE SCHEMA empty_one")
    wh.run("DROP SCHEMA empty_one")
    assert not (wh.root / "empty_one").exists()


# -- INSERT ----------------------------------------------------------------------------------


def test_insert_forms(wh: Wh) -> None:
    wh.run("CREATE TABLE t (id INTEGER NOT NULL, name VARCHAR, score DOUBLE DEFAULT 0)")
    assert wh.run("INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', 2.5)").rowcount == 2
    assert wh.run("INSERT INTO t (score, id) VALUES (9.0, 3)").rowcount == 1
    assert wh.run("INSERT INTO t BY NAME SELECT 'd' AS name, 4 AS id").rowcount == 1
    assert wh.run("INSERT INTO t SELECT id + 10, name, score FROM t WHERE id <= 2").rowcount == 2
    assert wh.run("INSERT INTO t VALUES (?, ?, ?)", [20, "p", None]).rowcount == 1
    assert wh.rows("SELECT * FROM t ORDER BY id") == [
        (1, "a", 1.5),
        (2, "b", 2.5),
        (3, None, 9.0),
        (4, "d", 0.0),  # the column's DEFAULT, kept in the Delta schema
        (11, "a", 1.5),
        (12, "b", 2.5),
        (20, "p", None),
    ]
    assert wh.version("t") == 5
    ops = [(h["version"], h["operation"]) for h in wh.history("t")]
    assert ops == [
        (5, "INSERT"),
        (4, "INSERT"),
        (3, "INSERT"),
        (2, "INSERT"),
        (1, "INSERT"),
        (0, "CREATE TABLE"),
    ]
    with pytest.raises(lakesql.IntegrityError):
        wh.run("INSERT INTO t (name) VALUES ('no id')")
    with pytest.raises(lakesql.ProgrammingError):
        wh.run("INSERT INTO t VALUES (1, 2)")
    with pytest.raises(lakesql.UnknownObjectError):
        wh.run("INSERT INTO nope VALUES (1)")
    assert wh.version("t") == 5


def test_insert_overwrite(wh: Wh) -> None:
    wh.run("CREATE TABLE o AS SELECT * FROM range(5) r(i)")
    wh.run("INSERT INTO o VALUES (100)")
    assert wh.run("INSERT OVERWRITE o SELECT i * 2 FROM range(3) r(i)").rowcount == 3
    assert wh.rows("SELECT * FROM o ORDER BY i") == [(0,), (2,), (4,)]
    wh.run("INSERT OVERWRITE TABLE o VALUES (7)")
    assert wh.rows("SELECT * FROM o") == [(7,)]
    assert wh.version("o") == 3
    assert [h["operation"] for h in wh.history("o")][:2] == ["INSERT OVERWRITE", "INSERT OVERWRITE"]
    assert wh.rows("SELECT count(*) FROM o VERSION AS OF 1") == [(6,)]


# -- UPDATE / DELETE / MERGE -------------------------------------------------------------------


def test_update(wh: Wh, plain_duckdb) -> None:
    wh.run("CREATE TABLE u AS SELECT i AS id, i * 10 AS v, 'x' AS tag FROM range(1, 6) r(i)")
    assert wh.run("UPDATE u SET v = v + 1, tag = 'odd' WHERE id % 2 = 1").rowcount == 3
    assert wh.run("UPDATE u SET tag = upper(tag)").rowcount == 5
    assert wh.run("UPDATE u SET v = ? WHERE id = ?", [0, 2]).rowcount == 1
    expected = [(1, 11, "ODD"), (2, 0, "X"), (3, 31, "ODD"), (4, 40, "X"), (5, 51, "ODD")]
    assert wh.rows("SELECT * FROM u ORDER BY id") == expected
    assert delta_scan(plain_duckdb, wh.path("u"), "id") == expected
    assert wh.version("u") == 3
    assert wh.history("u")[0]["sql"] == "UPDATE u SET v = ? WHERE id = ?"


def test_update_from_other_table(wh: Wh) -> None:
    wh.run("CREATE TABLE prices AS SELECT * FROM (VALUES (1, 10.0), (2, 20.0), (3, 30.0)) v(id, p)")
    wh.run("CREATE TABLE changes AS SELECT * FROM (VALUES (2, 25.0), (3, 35.0)) v(id, p)")
    assert (
        wh.run("UPDATE prices SET p = changes.p FROM changes WHERE prices.id = changes.id").rowcount
        == 2
    )
    assert [(i, float(p)) for i, p in wh.rows("SELECT * FROM prices ORDER BY id")] == [
        (1, 10.0),
        (2, 25.0),
        (3, 35.0),
    ]


def test_delete(wh: Wh, plain_duckdb) -> None:
    wh.run("CREATE TABLE d (id INTEGER, grp VARCHAR) PARTITIONED BY (grp)")
    wh.run("INSERT INTO d SELECT i, CASE WHEN i < 5 THEN 'lo' ELSE 'hi' END FROM range(10) r(i)")
    assert wh.run("DELETE FROM d WHERE id % 3 = 0").rowcount == 4
    assert wh.run("DELETE FROM d WHERE grp = 'lo' AND id IN (SELECT 1)").rowcount == 1
    expected = [(i, "lo" if i < 5 else "hi") for i in (2, 4, 5, 7, 8)]
    assert wh.rows("SELECT * FROM d ORDER BY id") == expected
    assert delta_scan(plain_duckdb, wh.path("d"), "id") == expected
    assert wh.run("DELETE FROM d").rowcount == 5
    assert wh.rows("SELECT count(*) FROM d") == [(0,)]
    assert delta_scan(plain_duckdb, wh.path("d"), "id") == []
    assert wh.version("d") == 4
    assert [h["operation"] for h in wh.history("d")][:3] == ["DELETE", "DELETE", "DELETE"]


def test_statement_changing_no_rows_commits_nothing(wh: Wh) -> None:
    wh.run("CREATE TABLE n AS SELECT 1 AS a")
    assert wh.run("UPDATE n SET a = 2 WHERE a > 5").rowcount == 0
    assert wh.run("DELETE FROM n WHERE a > 5").rowcount == 0
    assert wh.run("INSERT INTO n SELECT a FROM n WHERE false").rowcount == 0
    assert wh.version("n") == 0


def test_merge(wh: Wh, plain_duckdb) -> None:
    wh.run("CREATE TABLE target (id INTEGER NOT NULL, v VARCHAR, n INTEGER)")
    wh.run("INSERT INTO target VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 1), (4, 'd', 1)")
    wh.run(
        "CREATE TABLE feed AS SELECT * FROM (VALUES (1, 'A', 'upsert'), (2, NULL, 'delete'), "
        "(5, 'E', 'upsert'), (6, 'F', 'upsert')) v(id, v, op)"
    )
    before = wh.version("target")
    cur = wh.run(
        """MERGE INTO target USING feed ON target.id = feed.id
           WHEN MATCHED AND feed.op = 'delete' THEN DELETE
           WHEN MATCHED THEN UPDATE SET v = feed.v, n = target.n + 1
           WHEN NOT MATCHED THEN INSERT (id, v, n) VALUES (feed.id, feed.v, 0)"""
    )
    assert cur.rowcount == 4
    expected = [(1, "A", 2), (3, "c", 1), (4, "d", 1), (5, "E", 0), (6, "F", 0)]
    assert wh.rows("SELECT * FROM target ORDER BY id") == expected
    assert delta_scan(plain_duckdb, wh.path("target"), "id") == expected
    assert wh.version("target") == before + 1
    assert wh.history("target")[0]["operation"] == "MERGE"
    # An aliased target and a sub-query source.
    wh.run(
        "MERGE INTO target AS t USING (SELECT 3 AS id UNION ALL SELECT 9) s ON t.id = s.id "
        "WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'nine', NULL)"
    )
    assert [r[0] for r in wh.rows("SELECT id FROM target ORDER BY id")] == [1, 4, 5, 6, 9]
    # The source is unchanged.
    assert wh.version("feed") == 0


# -- ALTER TABLE ---------------------------------------------------------------------------------


def test_alter_add_column(wh: Wh, plain_duckdb) -> None:
    wh.run("CREATE TABLE a AS SELECT 1 AS id")
    wh.run("ALTER TABLE a ADD COLUMN note VARCHAR")
    assert wh.rows("SELECT * FROM a") == [(1, None)]
    wh.run("INSERT INTO a VALUES (2, 'two')")
    assert wh.rows("SELECT * FROM a ORDER BY id") == [(1, None), (2, "two")]
    assert [f.name for f in deltalake.DeltaTable(wh.path("a")).schema().fields] == ["id", "note"]
    assert delta_scan(plain_duckdb, wh.path("a"), "id") == [(1, None), (2, "two")]
    assert wh.history("a")[1]["sql"] == "ALTER TABLE a ADD COLUMN note VARCHAR"
    with pytest.raises(lakesql.ObjectExistsError):
        wh.run("ALTER TABLE a ADD COLUMN note INTEGER")
    # The old version keeps its schema.
    assert wh.rows("SELECT * FROM a VERSION AS OF 0") == [(1,)]


def test_alter_rename(wh: Wh) -> None:
    wh.run("CREATE TABLE old_name AS SELECT 1 AS x")
    wh.run("INSERT INTO old_name VALUES (2)")
    wh.run("ALTER TABLE old_name RENAME TO new_name")
    assert not os.path.exists(wh.path("old_name"))
    assert wh.rows("SELECT * FROM new_name ORDER BY x") == [(1,), (2,)]
    assert wh.version("new_name") == 1
    assert wh.rows("SELECT * FROM new_name VERSION AS OF 0") == [(1,)]
    assert wh.rows("SHOW TABLES") == [("main", "new_name")]
    with pytest.raises(lakesql.ProgrammingError):
        wh.run("SELECT * FROM old_name")
    wh.run("CREATE TABLE other AS SELECT 3 AS x")
    with pytest.raises(lakesql.ObjectExistsError):
        wh.run("ALTER TABLE other RENAME TO new_name")


# -- time travel, history, restore ---------------------------------------------------------------


def test_time_travel(wh: Wh) -> None:
    wh.run("CREATE TABLE tt AS SELECT 1 AS v")  # v0
    time.sleep(0.15)
    wh.run("INSERT INTO tt VALUES (2)")  # v1
    time.sleep(0.15)
    wh.run("UPDATE tt SET v = v * 10")  # v2
    assert wh.rows("SELECT * FROM tt VERSION AS OF 0") == [(1,)]
    assert wh.rows("SELECT * FROM tt VERSION AS OF 1 ORDER BY v") == [(1,), (2,)]
    assert wh.rows("SELECT * FROM tt ORDER BY v") == [(10,), (20,)]
    stamps = {h["version"]: h["timestamp"] for h in wh.history("tt")}
    between = stamps[1] + (stamps[2] - stamps[1]) / 2
    text = between.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert wh.rows(f"SELECT * FROM tt TIMESTAMP AS OF '{text}' ORDER BY v") == [(1,), (2,)]
    later = (stamps[2] + dt.timedelta(seconds=5)).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert wh.rows(f"SELECT * FROM tt TIMESTAMP AS OF '{later}' ORDER BY v") == [(10,), (20,)]
    with pytest.raises(lakesql.ProgrammingError, match="version"):
        wh.run("SELECT * FROM tt VERSION AS OF 9")
    with pytest.raises(lakesql.DataError):
        wh.run("SELECT * FROM tt TIMESTAMP AS OF 'not a time'")


def test_describe_history_one_commit_per_statement(wh: Wh) -> None:
    script = [
        ("CREATE TABLE h (id INTEGER NOT NULL, v VARCHAR)", "CREATE TABLE"),
        ("INSERT INTO h VALUES (1, 'a'), (2, 'b')", "INSERT"),
        ("INSERT INTO h SELECT id + 2, v FROM h", "INSERT"),
        ("OPTIMIZE h", "OPTIMIZE"),  # compacts the two files of the inserts
        ("UPDATE h SET v = 'z' WHERE id = 1", "UPDATE"),
        ("DELETE FROM h WHERE id = 4", "DELETE"),
        (
            "MERGE INTO h USING (SELECT 2 AS id) s ON h.id = s.id WHEN MATCHED THEN UPDATE SET v = 'm'",
            "MERGE",
        ),
        ("INSERT OVERWRITE h SELECT * FROM h WHERE id < 3", "INSERT OVERWRITE"),
        ("ALTER TABLE h ADD COLUMN w DOUBLE", "ADD COLUMNS"),
        ("RESTORE TABLE h TO VERSION AS OF 2", "RESTORE"),
    ]
    for sql, _ in script:
        wh.run(sql)
    hist = wh.history("h")
    assert [h["version"] for h in hist] == list(range(len(script) - 1, -1, -1))
    assert [(h["sql"], h["operation"]) for h in reversed(hist)] == script
    assert all(isinstance(h["timestamp"], dt.datetime) for h in hist)
    # delta-rs sees the same commits, with lakesql's keys in the commit info.
    raw = deltalake.DeltaTable(wh.path("h")).history()
    assert [(c["version"], c["lakesql.sql"], c["lakesql.operation"]) for c in raw] == [
        (len(script) - 1 - i, sql, op) for i, (sql, op) in enumerate(reversed(script))
    ]
    assert wh.rows("SELECT * FROM h ORDER BY id") == [(1, "a"), (2, "b"), (3, "a"), (4, "b")]


def test_restore(wh: Wh, plain_duckdb) -> None:
    wh.run("CREATE TABLE rs AS SELECT * FROM range(3) r(i)")  # v0
    wh.run("DELETE FROM rs WHERE i = 0")  # v1
    wh.run("ALTER TABLE rs ADD COLUMN c VARCHAR")  # v2
    wh.run("INSERT INTO rs VALUES (9, 'nine')")  # v3
    wh.run("RESTORE TABLE rs TO VERSION AS OF 1")  # v4
    assert wh.version("rs") == 4
    assert wh.rows("SELECT * FROM rs ORDER BY i") == [(1,), (2,)]
    assert [r[0] for r in wh.rows("DESCRIBE rs")] == ["i"]
    assert delta_scan(plain_duckdb, wh.path("rs"), "i") == [(1,), (2,)]
    assert wh.history("rs")[0]["operation"] == "RESTORE"
    # History is kept: the restored-over version is still readable, and restorable.
    assert wh.rows("SELECT * FROM rs VERSION AS OF 3 ORDER BY i") == [
        (1, None),
        (2, None),
        (9, "nine"),
    ]
    ts = wh.history("rs")[4]["timestamp"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    wh.run(f"RESTORE TABLE rs TO TIMESTAMP AS OF '{ts}'")
    assert wh.rows("SELECT * FROM rs ORDER BY i") == [(0,), (1,), (2,)]
    with pytest.raises(lakesql.ProgrammingError):
        wh.run("RESTORE TABLE rs TO VERSION AS OF 42")
    assert wh.version("rs") == 5


# -- maintenance ---------------------------------------------------------------------------------


def test_optimize_compacts_files(wh: Wh, plain_duckdb) -> None:
    wh.run("CREATE TABLE small (id INTEGER, v VARCHAR)")
    for i in range(6):
        wh.run(f"INSERT INTO small VALUES ({i}, 'v{i}'), ({i + 100}, NULL)")
    before = deltalake.DeltaTable(wh.path("small")).file_uris()
    assert len(before) == 6
    rows = wh.rows("SELECT * FROM small ORDER BY id")
    metrics = dict(wh.rows("OPTIMIZE small"))
    assert metrics["numFilesRemoved"] == 6 and metrics["numFilesAdded"] == 1
    after = deltalake.DeltaTable(wh.path("small")).file_uris()
    assert len(after) == 1
    assert wh.rows("SELECT * FROM small ORDER BY id") == rows
    assert delta_scan(plain_duckdb, wh.path("small"), "id") == rows
    assert wh.history("small")[0]["operation"] == "OPTIMIZE"
    # The compacted files are still on disk (for time travel) until VACUUM.
    assert all(os.path.exists(u.removeprefix("file://")) for u in before)
    # Nothing left to compact: no new version.
    version = wh.version("small")
    assert dict(wh.rows("OPTIMIZE small"))["numFilesAdded"] == 0
    assert wh.version("small") == version


def test_optimize_zorder(wh: Wh) -> None:
    wh.run("CREATE TABLE z (a INTEGER, b INTEGER)")
    for i in range(3):
        wh.run(f"INSERT INTO z VALUES ({i}, {10 - i})")
    wh.run("OPTIMIZE z ZORDER BY (a, b)")
    assert wh.rows("SELECT * FROM z ORDER BY a") == [(0, 10), (1, 9), (2, 8)]
    with pytest.raises(lakesql.ProgrammingError, match="nope"):
        wh.run("OPTIMIZE z ZORDER BY (nope)")


def test_vacuum(wh: Wh) -> None:
    wh.run("CREATE TABLE vac (id INTEGER)")
    for i in range(4):
        wh.run(f"INSERT INTO vac VALUES ({i})")
    old_files = [
        u.removeprefix("file://") for u in deltalake.DeltaTable(wh.path("vac")).file_uris()
    ]
    wh.run("OPTIMIZE vac")
    version = wh.version("vac")
    dry = [r[0] for r in wh.rows("VACUUM vac RETAIN 0 HOURS DRY RUN")]
    assert sorted(os.path.basename(p) for p in dry) == sorted(
        os.path.basename(p) for p in old_files
    )
    assert all(os.path.exists(p) for p in old_files), "a dry run deletes nothing"
    assert wh.version("vac") == version, "a dry run commits nothing"
    assert wh.rows("SELECT count(*) FROM vac VERSION AS OF 2") == [(2,)]

    gone = [r[0] for r in wh.rows("VACUUM vac RETAIN 0 HOURS")]
    assert sorted(gone) == sorted(dry)
    assert not any(os.path.exists(p) for p in old_files)
    assert wh.rows("SELECT * FROM vac ORDER BY id") == [(0,), (1,), (2,), (3,)]
    new = wh.history("vac")[: wh.version("vac") - version]
    assert new and all(
        h["sql"] == "VACUUM vac RETAIN 0 HOURS" and h["operation"] == "VACUUM" for h in new
    )
    # Older versions lost their files: reading one fails with a lakesql error.
    with pytest.raises(lakesql.Error, match=r"VACUUM|vacuum"):
        wh.run("SELECT * FROM vac VERSION AS OF 2")
    # Nothing left to remove, and nothing to commit.
    version = wh.version("vac")
    assert wh.rows("VACUUM vac RETAIN 0 HOURS DRY RUN") == []
    assert wh.rows("VACUUM vac RETAIN 0 HOURS") == []
    assert wh.version("vac") == version


# -- inspection and DROP -------------------------------------------------------------------------


def test_show_tables_describe_drop(wh: Wh) -> None:
    assert wh.rows("SHOW TABLES") == []
    wh.run("CREATE TABLE b (x INTEGER NOT NULL, y VARCHAR[], z STRUCT(p INTEGER, q VARCHAR))")
    wh.run("CREATE TABLE a AS SELECT 1 AS x")
    wh.run("CREATE SCHEMA s2")
    wh.run("CREATE TABLE s2.c AS SELECT 1 AS x")
    assert wh.rows("SHOW TABLES") == [("main", "a"), ("main", "b"), ("s2", "c")]
    assert wh.rows("SHOW TABLES IN s2") == [("s2", "c")]
    assert wh.rows("SHOW TABLES IN main") == [("main", "a"), ("main", "b")]
    with pytest.raises(lakesql.UnknownObjectError):
        wh.run("SHOW TABLES IN nope")
    assert [(r[0], r[1], r[2]) for r in wh.rows("DESCRIBE b")] == [
        ("x", "INTEGER", "NO"),
        ("y", "VARCHAR[]", "YES"),
        ("z", "STRUCT(p INTEGER, q VARCHAR)", "YES"),
    ]
    assert [(r[0], r[1]) for r in wh.rows("DESCRIBE s2.c")] == [("x", "INTEGER")]
    wh.run("DROP TABLE a")
    assert not os.path.exists(wh.path("a"))
    with pytest.raises(lakesql.ProgrammingError):
        wh.run("SELECT * FROM a")
    with pytest.raises(lakesql.UnknownObjectError):
        wh.run("DROP TABLE a")
    wh.run("DROP TABLE IF EXISTS a")
    wh.run("DROP TABLE s2.c")
    assert wh.rows("SHOW TABLES") == [("main", "b")]
    # A dropped name can be created again, starting a new history.
    wh.run("CREATE TABLE a AS SELECT 'again' AS x")
    assert wh.rows("SELECT * FROM a") == [("again",)]
    assert wh.version("a") == 0


# -- other readers see exactly what lakesql shows -----------------------------------------------


def test_external_readers_after_a_script(wh: Wh, plain_duckdb) -> None:
    script = """
        CREATE SCHEMA shop;
        CREATE TABLE shop.orders (id INTEGER NOT NULL, customer VARCHAR, region VARCHAR, total DECIMAL(10,2))
            PARTITIONED BY (region);
        INSERT INTO shop.orders VALUES (1, 'ann', 'eu', 10.00), (2, 'bob', 'us', 20.50), (3, 'cid', 'eu', 5.25);
        INSERT INTO shop.orders SELECT id + 10, customer || '2', region, total * 2 FROM shop.orders;
        UPDATE shop.orders SET total = total + 1 WHERE region = 'us';
        DELETE FROM shop.orders WHERE id = 3;
        CREATE TABLE shop.customers AS SELECT DISTINCT customer AS name, length(customer) AS len FROM shop.orders;
        MERGE INTO shop.orders o USING (SELECT 1 AS id, 99.99 AS total UNION ALL SELECT 50, 1.00) s
            ON o.id = s.id
            WHEN MATCHED THEN UPDATE SET total = s.total
            WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'new', 'apac', s.total);
        ALTER TABLE shop.customers ADD COLUMN vip BOOLEAN;
        INSERT INTO shop.customers VALUES ('zed', 3, true);
        INSERT INTO shop.orders VALUES (60, 'eve', 'eu', 3.00);
        OPTIMIZE shop.orders;
    """
    for statement in [s for s in script.split(";") if s.strip()]:
        wh.run(statement)
    orders = wh.path("orders", "shop")
    customers = wh.path("customers", "shop")

    lake_orders = wh.rows("SELECT * FROM shop.orders ORDER BY id")
    assert [r[0] for r in lake_orders] == [1, 2, 11, 12, 13, 50, 60]
    assert delta_scan(plain_duckdb, orders, "id") == lake_orders
    lake_customers = wh.rows("SELECT * FROM shop.customers ORDER BY name")
    assert delta_scan(plain_duckdb, customers, "name") == lake_customers
    assert ("zed", 3, True) in lake_customers

    t = deltalake.DeltaTable(orders)
    assert t.version() == 7  # create, 2 inserts, update, delete, merge, insert, optimize
    assert [c["lakesql.operation"] for c in t.history()] == [
        "OPTIMIZE",
        "INSERT",
        "MERGE",
        "DELETE",
        "UPDATE",
        "INSERT",
        "INSERT",
        "CREATE TABLE",
    ]
    assert all(os.path.exists(u.removeprefix("file://")) for u in t.file_uris())
    assert [f.name for f in t.schema().fields] == ["id", "customer", "region", "total"]
    c = deltalake.DeltaTable(customers)
    assert c.version() == 2
    assert [f.name for f in c.schema().fields] == ["name", "len", "vip"]

    # Time travel agrees with the delta extension's own versioned scan.
    for v in range(1, t.version() + 1):
        mine = wh.rows(f"SELECT * FROM shop.orders VERSION AS OF {v} ORDER BY id")
        theirs = plain_duckdb.execute(
            f"SELECT * FROM delta_scan('{orders}', version => {v}) ORDER BY id"
        ).fetchall()
        assert mine == theirs, v

    # A fresh connection (new process state) sees the same rows.
    with lakesql.connect(str(wh.root)) as other:
        assert (
            other.cursor().execute("SELECT * FROM shop.orders ORDER BY id").fetchall()
            == lake_orders
        )


def test_column_defaults_survive_sessions_and_rewrites(wh: Wh) -> None:
    wh.run(
        "CREATE TABLE d (id INTEGER, status VARCHAR DEFAULT 'new', seen TIMESTAMP DEFAULT TIMESTAMP '2024-01-01')"
    )
    wh.run("INSERT INTO d (id) VALUES (1)")
    wh.run("UPDATE d SET id = 2 WHERE id = 1")  # rewrites the table: the defaults must stay
    other = lakesql.connect(str(wh.root)).cursor()
    other.execute("INSERT INTO d (id) VALUES (3)")
    assert wh.rows("SELECT id, status, seen FROM d ORDER BY id") == [
        (2, "new", dt.datetime(2024, 1, 1)),
        (3, "new", dt.datetime(2024, 1, 1)),
    ]
    with pytest.raises(lakesql.Error, match="DEFAULT 'x' of column 'n'"):
        wh.run("CREATE TABLE bad (n INTEGER DEFAULT 'x')")
    with pytest.raises(lakesql.NotSupportedError, match=r"ADD COLUMN \.\.\. DEFAULT"):
        wh.run("ALTER TABLE d ADD COLUMN extra INTEGER DEFAULT 1")


def test_verification_checks_the_users_selects_only(wh: Wh) -> None:
    """Under PRAGMA enable_verification (DuckDB re-runs each SELECT and compares), lakesql's own
    statements (the query of CREATE TABLE AS, staging reads) run unverified, as in DuckDB, where
    a CREATE TABLE AS is not verified; the user's SELECTs still are."""
    wh.run("PRAGMA enable_verification")
    wh.run("CREATE TABLE rnd AS SELECT random() AS r, uuid() AS u FROM range(100)")
    wh.run("INSERT INTO rnd SELECT random(), uuid() FROM range(10)")
    wh.run("UPDATE rnd SET r = random() WHERE r < 0.5")
    assert wh.rows("SELECT count(*), count(DISTINCT u) FROM rnd") == [(110, 110)]
    assert wh.rows("DESCRIBE rnd")[0][:2] == ("r", "DOUBLE")  # lakesql's result, kept
    with pytest.raises(lakesql.Error, match="differs from original result"):
        wh.run("SELECT random() FROM range(3)")
    other = wh.con.cursor()  # verification is a setting of the cursor that enabled it
    assert len(other.execute("SELECT random() FROM range(3)").fetchall()) == 3
    wh.run("PRAGMA disable_verification")
    assert len(wh.rows("SELECT random() FROM range(3)")) == 3
