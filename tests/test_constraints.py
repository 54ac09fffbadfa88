"""PRIMARY KEY, UNIQUE, CHECK, COLLATE, generated columns and indexes on real Delta tables.

A column declared with more than a type, NOT NULL and DEFAULT keeps its definition in the Delta
field metadata (`lakesql.ddl`), table constraints and indexes in the first field's; every write
runs on a staging table declaring them, so DuckDB enforces them exactly as on its own tables, and
a violating statement commits nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import deltalake
import pytest
from helpers import Wh

import lakesql


def test_primary_key_unique_check_enforced_on_every_write(wh: Wh) -> None:
    wh.run(
        "CREATE TABLE k (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "score INTEGER CHECK (score >= 0), UNIQUE (name))"
    )
    wh.run("INSERT INTO k VALUES (1, 'a', 5), (2, 'b', 6)")
    dup = 'Duplicate key "id: 1" violates primary key constraint'
    wh.fails("INSERT INTO k VALUES (1, 'c', 5)", lakesql.IntegrityError, dup, "k")
    wh.fails("INSERT INTO k VALUES (3, 'a', 5)", lakesql.IntegrityError, "unique constraint", "k")
    wh.fails("INSERT INTO k VALUES (3, 'c', -1)", lakesql.IntegrityError, "CHECK constraint", "k")
    wh.fails("INSERT INTO k VALUES (3, 'c', 1), (3, 'd', 1)", lakesql.IntegrityError, "3", "k")
    wh.fails("UPDATE k SET id = 1 WHERE id = 2", lakesql.IntegrityError, dup, "k")
    wh.fails("UPDATE k SET score = -5", lakesql.IntegrityError, "CHECK constraint", "k")
    wh.fails(
        "MERGE INTO k USING (SELECT 9 AS id) s ON k.id = s.id "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'a', 0)",
        lakesql.IntegrityError,
        "unique constraint",
        "k",
    )
    assert wh.rows("SELECT * FROM k ORDER BY id") == [(1, "a", 5), (2, "b", 6)]
    # the rules live in the table: a new session enforces them too
    other = lakesql.connect(str(wh.root)).cursor()
    with pytest.raises(lakesql.IntegrityError, match=dup):
        other.execute("INSERT INTO k VALUES (1, 'z', 0)")
    other.execute("INSERT INTO k VALUES (3, 'c', 0)")
    assert wh.rows("SELECT count(*) FROM k") == [(3,)]
    meta = wh.delta_schema("k").field("id").metadata
    assert meta[b"lakesql.ddl"] == b"id INTEGER PRIMARY KEY"
    assert json.loads(meta[b"lakesql.constraints"]) == ["UNIQUE (name)"]
    assert not wh.delta_schema("k").field("id").nullable


def test_on_conflict_and_insert_or_replace(wh: Wh) -> None:
    wh.run("CREATE TABLE kv (k VARCHAR PRIMARY KEY, v INTEGER)")
    wh.run("INSERT INTO kv VALUES ('a', 1), ('b', 2)")
    wh.run("INSERT OR REPLACE INTO kv VALUES ('a', 10), ('c', 3)")
    wh.run("INSERT INTO kv VALUES ('b', 5) ON CONFLICT (k) DO UPDATE SET v = kv.v + excluded.v")
    version = wh.version("kv")
    assert wh.run("INSERT INTO kv VALUES ('a', 0) ON CONFLICT DO NOTHING").rowcount == 0
    wh.run("INSERT OR IGNORE INTO kv VALUES ('c', 0)")
    assert wh.version("kv") == version  # nothing inserted: nothing committed
    assert wh.rows("SELECT * FROM kv ORDER BY k") == [("a", 10), ("b", 7), ("c", 3)]
    wh.run("CREATE TABLE plain (k VARCHAR, v INTEGER)")
    wh.fails(
        "INSERT INTO plain VALUES ('a', 1) ON CONFLICT DO NOTHING",
        lakesql.ProgrammingError,
        "no UNIQUE/PRIMARY KEY",
        "plain",
    )


def test_composite_primary_key_and_copy(wh: Wh, tmp_path: Path) -> None:
    wh.run("CREATE TABLE t2 (a INTEGER, b INTEGER, PRIMARY KEY (a, b))")
    wh.run("INSERT INTO t2 VALUES (1, 1), (1, 2)")
    wh.fails("INSERT INTO t2 VALUES (1, 1)", lakesql.IntegrityError, '"a: 1, b: 1"', "t2")
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n2,1\n1,2\n")
    wh.fails(f"COPY t2 FROM '{csv}'", lakesql.IntegrityError, "primary key", "t2")
    csv.write_text("a,b\n2,1\n2,2\n")
    wh.run(f"COPY t2 FROM '{csv}'")
    assert wh.rows("SELECT * FROM t2 ORDER BY ALL") == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_generated_columns_are_computed_and_stored(wh: Wh) -> None:
    wh.run(
        "CREATE TABLE g (price INTEGER, amount INTEGER, "
        "total INTEGER GENERATED ALWAYS AS (price * amount) VIRTUAL, plus AS (price + 5))"
    )
    wh.run("INSERT INTO g VALUES (2, 3), (4, 5)")
    wh.run("UPDATE g SET amount = 10 WHERE price = 4")
    assert wh.rows("SELECT * FROM g ORDER BY price") == [(2, 3, 6, 7), (4, 10, 40, 9)]
    wh.fails("INSERT INTO g (price, total) VALUES (1, 1)", lakesql.Error, "generated", "g")
    # other readers see the computed values
    files = deltalake.DeltaTable(wh.path("g")).file_uris()
    assert len(files) == 1
    import pyarrow.parquet as pq

    assert pq.read_table(files[0]).column("total").to_pylist() == [6, 40]


def test_collate_applies_to_reads_and_keys(wh: Wh) -> None:
    wh.run("CREATE TABLE c (name VARCHAR COLLATE NOCASE PRIMARY KEY)")
    wh.run("INSERT INTO c VALUES ('Amsterdam'), ('berlin')")
    assert wh.rows("SELECT * FROM c WHERE name = 'AMSTERDAM'") == [("Amsterdam",)]
    assert wh.rows("SELECT * FROM c ORDER BY name") == [("Amsterdam",), ("berlin",)]
    wh.run("INSERT INTO c VALUES ('BERLIN')")  # as DuckDB: its key index compares bytes
    assert wh.rows("SELECT count(*) FROM c WHERE name = 'berlin'") == [(2,)]
    wh.run("CREATE TABLE d (name VARCHAR COLLATE NOCASE)")
    wh.run("INSERT INTO d VALUES ('AMSTERDAM')")
    # set operations compare with the collation too (berlin and BERLIN are one value)
    rows = wh.rows("SELECT * FROM c EXCEPT SELECT * FROM d")
    assert [r[0].lower() for r in rows] == ["berlin"]
    assert wh.rows("SELECT count(*) FROM (SELECT DISTINCT name FROM c)") == [(2,)]  # as DuckDB


def test_indexes(wh: Wh) -> None:
    wh.run("CREATE TABLE t (a INTEGER, b INTEGER)")
    wh.run("INSERT INTO t VALUES (1, 1), (1, 1)")
    wh.fails("CREATE UNIQUE INDEX ta ON t (a)", lakesql.IntegrityError, "duplicates", "t")
    wh.run("CREATE INDEX tb ON t (b)")  # kept; DuckDB's scans do not need it
    wh.run("DELETE FROM t WHERE a = 1")
    wh.run("CREATE UNIQUE INDEX ta ON t (a)")
    wh.run("INSERT INTO t VALUES (1, 2)")
    wh.fails("INSERT INTO t VALUES (1, 3)", lakesql.IntegrityError, '"a: 1"', "t")
    with pytest.raises(lakesql.CatalogError, match="already exists"):
        wh.run("CREATE INDEX ta ON t (b)")
    wh.run("CREATE INDEX IF NOT EXISTS ta ON t (b)")
    wh.run("DROP INDEX ta")
    wh.run("INSERT INTO t VALUES (1, 3)")
    assert wh.rows("SELECT * FROM t ORDER BY b") == [(1, 2), (1, 3)]
    assert [h[2] for h in wh.rows("DESCRIBE HISTORY t")][:3] == ["INSERT", "DROP INDEX", "INSERT"]
    with pytest.raises(lakesql.Error):
        wh.run("DROP INDEX nope")


def test_add_column_to_a_table_with_constraints(wh: Wh) -> None:
    wh.run("CREATE TABLE k (id INTEGER PRIMARY KEY)")
    wh.run("INSERT INTO k VALUES (1)")
    wh.run("ALTER TABLE k ADD COLUMN note VARCHAR")
    wh.run("INSERT INTO k VALUES (2, 'two')")
    wh.fails("INSERT INTO k VALUES (2, 'again')", lakesql.IntegrityError, "primary key", "k")
    assert wh.rows("SELECT * FROM k ORDER BY id") == [(1, None), (2, "two")]


def test_refused_and_invalid_declarations_create_nothing(wh: Wh) -> None:
    wh.run("CREATE TABLE f0 (a INTEGER PRIMARY KEY)")
    with pytest.raises(lakesql.Error, match="FOREIGN KEY"):
        wh.run("CREATE TABLE f1 (a INTEGER REFERENCES f0 (a))")
    with pytest.raises(lakesql.Error):
        wh.run("CREATE TABLE bad (a INTEGER, PRIMARY KEY (nope))")
    with pytest.raises(lakesql.Error):
        wh.run("CREATE TABLE bad (a INTEGER CHECK (nope > 1))")
    assert [r[1] for r in wh.rows("SHOW TABLES")] == ["f0"]


def test_racing_inserts_into_a_keyed_table_conflict(wh: Wh) -> None:
    """An INSERT into a table with a key rewrites it: a second writer that raced it must fail,
    not keep both rewrites (which would duplicate the existing rows)."""
    wh.run("CREATE TABLE k (id INTEGER PRIMARY KEY)")
    wh.run("INSERT INTO k VALUES (1)")
    wh.run("BEGIN")
    wh.run("INSERT INTO k VALUES (2)")  # reads version 1 of k
    lakesql.connect(str(wh.root)).cursor().execute("INSERT INTO k VALUES (3)")
    with pytest.raises(lakesql.ConflictError):
        wh.run("COMMIT")
    assert wh.rows("SELECT * FROM k ORDER BY id") == [(1,), (3,)]
