"""DuckDB types Delta has no equivalent for, on real Delta tables.

TIME, INTERVAL, HUGEINT, UHUGEINT, BIT, TIMESTAMP_NS, ... are stored as the text of their values
(ENUM, UUID and unsigned integers as what Arrow widens them to), with the DuckDB type in the
Delta field's metadata (`lakesql.type`); lakesql's views cast back, so queries see DuckDB's types
and values exactly. Other Delta readers see the text.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import deltalake
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import Wh

import lakesql

HUGE_MIN = -(2**127)
HUGE_MAX = 2**127 - 1
UHUGE_MAX = 2**128 - 1


COLUMNS = (
    "t TIME, i INTERVAL, h HUGEINT, u UHUGEINT, b BIT, e ENUM('sad', 'ok', 'happy'), "
    "ut UTINYINT, ub UBIGINT, id UUID, ns TIMESTAMP_NS, li INTERVAL[], s STRUCT(x TIME, y INTEGER)"
)
TYPES = [
    "TIME",
    "INTERVAL",
    "HUGEINT",
    "UHUGEINT",
    "BIT",
    "ENUM('sad', 'ok', 'happy')",
    "UTINYINT",
    "UBIGINT",
    "UUID",
    "TIMESTAMP_NS",
    "INTERVAL[]",
    "STRUCT(x TIME, y INTEGER)",
]
VALUES = (
    "(TIME '12:34:56.789', INTERVAL '1 month 2 days 3 hours', "
    f"{HUGE_MIN}, {UHUGE_MAX}, '0101'::BIT, 'happy', 255, 18446744073709551615, "
    "'4ac7a9e9-607c-4c8a-84f3-843f0191e3fd', TIMESTAMP_NS '2020-01-01 00:00:00.123456789', "
    "[INTERVAL 1 DAY, NULL], {'x': TIME '01:02:03', 'y': 7}), "
    f"(TIME '00:00:00', INTERVAL '-1 year', {HUGE_MAX}, 0, '0011'::BIT, 'sad', 0, 0, "
    "'00000000-0000-0000-0000-000000000000', TIMESTAMP_NS '1970-01-01', [], NULL), "
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
)


def _as_text(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` with every value as DuckDB's text of it (exact for every type)."""
    return con.execute(f"SELECT COLUMNS(*)::VARCHAR FROM ({sql})").fetchall()


def test_types_round_trip_exactly(wh: Wh) -> None:
    wh.run(f"CREATE TABLE ty ({COLUMNS})")
    wh.run(f"INSERT INTO ty VALUES {VALUES}")
    assert wh.types("SELECT * FROM ty") == TYPES
    assert [r[1] for r in wh.rows("DESCRIBE ty")] == TYPES
    plain = duckdb.connect()
    expected = _as_text(plain, f"SELECT * FROM (VALUES {VALUES}) v")
    got = wh.rows("SELECT COLUMNS(*)::VARCHAR FROM ty")
    assert got == expected
    # a new session reads the same types and values
    again = Wh(wh.root)
    assert again.types("SELECT * FROM ty") == TYPES
    assert again.rows("SELECT COLUMNS(*)::VARCHAR FROM ty") == expected
    again.con.close()


def test_other_readers_see_text_and_metadata(wh: Wh) -> None:
    wh.run(f"CREATE TABLE ty ({COLUMNS})")
    wh.run(f"INSERT INTO ty VALUES {VALUES}")
    schema = wh.delta_schema("ty")
    kept = {f.name: (f.metadata or {}).get(b"lakesql.type", b"").decode() for f in schema}
    assert kept == dict(zip(schema.names, TYPES, strict=True))
    assert pa.types.is_string(schema.field("t").type)  # text where Delta has no such type
    assert pa.types.is_string(schema.field("h").type)
    assert pa.types.is_int16(schema.field("ut").type)  # widened where it has a wider one
    files = deltalake.DeltaTable(wh.path("ty")).file_uris()
    table = pa.concat_tables(pq.read_table(f) for f in files)
    assert table.column("t").to_pylist()[:2] == ["12:34:56.789", "00:00:00"]
    assert table.column("h").to_pylist()[0] == str(HUGE_MIN)
    assert table.column("b").to_pylist()[0] == "0101"


def test_order_aggregates_and_extremes_as_duckdb(wh: Wh) -> None:
    wh.run(f"CREATE TABLE ty ({COLUMNS})")
    wh.run(f"INSERT INTO ty VALUES {VALUES}")
    assert wh.rows("SELECT e FROM ty ORDER BY e") == [("sad",), ("happy",), (None,)]  # enum order
    assert wh.rows("SELECT min(h), max(h), max(u) FROM ty") == [(HUGE_MIN, HUGE_MAX, UHUGE_MAX)]
    assert wh.rows("SELECT bit_or(b)::VARCHAR, bit_and(b)::VARCHAR FROM ty") == [("0111", "0001")]
    assert wh.rows("SELECT t FROM ty WHERE t > TIME '01:00:00'") == [(dt.time(12, 34, 56, 789000),)]
    assert wh.rows("SELECT max(i)::VARCHAR FROM ty") == [("1 month 2 days 03:00:00",)]
    assert wh.rows("SELECT count(*) FROM ty WHERE e = 'happy' AND ub > 1") == [(1,)]


def test_create_table_as_insert_select_update_merge_keep_types(wh: Wh) -> None:
    wh.run(
        f"CREATE TABLE c AS SELECT {HUGE_MAX}::HUGEINT AS h, INTERVAL 5 MINUTE AS i, "
        "TIME '23:59:59' AS t, '101'::BIT AS b"
    )
    assert wh.types("SELECT * FROM c") == ["HUGEINT", "INTERVAL", "TIME", "BIT"]
    wh.run("INSERT INTO c SELECT h - 1, i * 2, t - INTERVAL 1 HOUR, ~b FROM c")
    wh.run("UPDATE c SET i = i + INTERVAL 1 DAY WHERE h = ?", [HUGE_MAX])
    wh.run(
        "MERGE INTO c USING (SELECT 1::HUGEINT AS h) s ON c.h = s.h "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.h, INTERVAL 1 SECOND, TIME '00:00:01', '1'::BIT)"
    )
    assert wh.rows("SELECT h, i::VARCHAR, t, b::VARCHAR FROM c ORDER BY h") == [
        (1, "00:00:01", dt.time(0, 0, 1), "1"),
        (HUGE_MAX - 1, "00:10:00", dt.time(22, 59, 59), "010"),
        (HUGE_MAX, "1 day 00:05:00", dt.time(23, 59, 59), "101"),
    ]
    wh.run("DELETE FROM c WHERE t < TIME '01:00:00'")
    assert wh.rows("SELECT count(*) FROM c") == [(2,)]
    wh.run("CREATE OR REPLACE TABLE c AS SELECT h::VARCHAR AS h FROM c")  # types replaced
    assert wh.types("SELECT * FROM c") == ["VARCHAR"]
    assert b"lakesql.type" not in (wh.delta_schema("c").field("h").metadata or {})


def test_time_travel_alter_and_extension_reader(wh: Wh, tmp_path: Path) -> None:
    wh.run("CREATE TABLE tt (k INTEGER, t TIME)")
    wh.run("INSERT INTO tt VALUES (1, TIME '10:00:00')")
    wh.run("ALTER TABLE tt ADD COLUMN i INTERVAL")
    wh.run("INSERT INTO tt VALUES (2, TIME '11:00:00', INTERVAL 2 HOUR)")
    assert wh.types("SELECT * FROM tt VERSION AS OF 1") == ["INTEGER", "TIME"]
    assert wh.rows("SELECT t FROM tt VERSION AS OF 1") == [(dt.time(10),)]
    assert wh.rows("SELECT k, i FROM tt ORDER BY k") == [
        (1, None),
        (2, dt.timedelta(hours=2)),
    ]
    ext = Wh(wh.root, delta_reader="extension")
    assert ext.types("SELECT * FROM tt") == ["INTEGER", "TIME", "INTERVAL"]
    assert ext.rows("SELECT max(t) FROM tt") == [(dt.time(11),)]
    ext.con.close()


def test_invalid_values_commit_nothing(wh: Wh) -> None:
    wh.run("CREATE TABLE e (m ENUM('a', 'b'), b BIT, t TIME)")
    wh.run("INSERT INTO e VALUES ('a', '1', '01:00:00')")
    version = wh.version("e")
    for bad in ("('c', '1', NULL)", "('a', '12', NULL)", "('a', '1', '25:00:00')"):
        with pytest.raises(lakesql.DataError):
            wh.run(f"INSERT INTO e VALUES {bad}")
    with pytest.raises(lakesql.DataError):
        wh.run("UPDATE e SET m = 'z'")
    assert wh.version("e") == version
    assert wh.rows("SELECT m, b::VARCHAR FROM e") == [("a", "1")]


def test_union_columns_round_trip_as_a_struct(wh: Wh) -> None:
    utype = 'UNION("name" VARCHAR, age SMALLINT, i INTERVAL, n INTEGER)'
    wh.run(f"CREATE TABLE un (u {utype})")
    wh.run(
        "INSERT INTO un VALUES ('Frank'), (union_value(age := 5::SMALLINT)), (NULL), "
        "(union_value(i := INTERVAL 1 DAY)), (union_value(n := 5))"
    )
    assert wh.types("SELECT * FROM un") == [utype]
    assert wh.rows("SELECT union_tag(u)::VARCHAR, u::VARCHAR FROM un") == [
        ("name", "Frank"),
        ("age", "5"),
        (None, None),
        ("i", "1 day"),
        ("n", "5"),  # the same value as `age`, another member: kept apart
    ]
    wh.run("CREATE TABLE un2 AS SELECT * FROM un WHERE union_tag(u) = 'age'")
    assert wh.rows("SELECT union_tag(u)::VARCHAR FROM un2") == [("age",)]
    stored = wh.delta_schema("un").field("u").type
    assert pa.types.is_struct(stored) and stored.field(0).name == "__tag"


def test_union_nested_in_other_types_is_refused(wh: Wh) -> None:
    with pytest.raises(lakesql.NotSupportedError, match="cannot store"):
        wh.run("CREATE TABLE un AS SELECT [union_value(k := 1)] AS u")
    with pytest.raises(lakesql.NotSupportedError):
        wh.run("CREATE TABLE un (u UNION(n INTEGER, s UNION(p INTEGER)))")
    assert wh.rows("SHOW TABLES") == []


def test_plain_tables_are_read_without_a_wrapper(wh: Wh) -> None:
    """Only tables with such columns get the casting view: others keep Parquet pushdown."""
    wh.run("CREATE TABLE p (a INTEGER, s VARCHAR)")
    wh.run("CREATE TABLE q (a INTEGER, t TIME)")
    views = dict(wh.rows("SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main'"))
    wh.run("INSERT INTO p VALUES (1, 'x')")
    wh.run("INSERT INTO q VALUES (1, '01:00:00')")
    wh.rows("SELECT * FROM p")
    views = dict(wh.rows("SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main'"))
    assert "__lakesql_scan" not in views["p"]
    assert "__lakesql_scan" in views["q"]
