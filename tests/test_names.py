"""Names: any Unicode name DuckDB accepts works end to end (tables, schemas, columns, feature
tables, models), names with control characters are refused, and a table that cannot be read is an
error for that table alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers import Wh

import lakesql
from lakesql.catalog.warehouse import Warehouse, validate_name
from lakesql.engine.duckdb import _extension_path
from lakesql.storage.delta import file_url

NAMES = ["café", "日本語", "a b", "emoji😀", 'naïve"quote', "CAFÉ x", "Ωmega"]
CONTROL = ["a\nb", "a\tb", "a\x00b", "a\x1fb", "a\x7fb", "\rx", "x\x85"]


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def external_rows(path: str) -> list[Any]:
    """The rows deltalake's own reader sees (in a subprocess: it can abort at exit)."""
    code = (
        "import json, sys, deltalake\n"
        "t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()\n"
        "print(json.dumps(sorted(map(list, zip(*t.to_pydict().values()))), default=str))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120
    )
    assert out.stdout, out.stderr
    return [tuple(r) for r in json.loads(out.stdout.splitlines()[0])]


def delta_scan_rows(path: str) -> list[Any]:
    """The rows DuckDB's delta extension sees, given the table's folder as `file_url(folder)`.

    Extension 1.5.5 drops the non-ASCII characters that end a plain path (`café` is read as
    `caf`, `日本語` as its parent folder), and those of a plain path joined with a partition folder;
    the URL form is read right (see docs/security.md)."""
    con = duckdb.connect()
    extension = _extension_path()
    if extension is None:
        pytest.skip("the delta extension is not installed")
    con.execute(f"LOAD '{extension}'")
    return sorted(con.execute("SELECT * FROM delta_scan(?)", [path]).fetchall())


@pytest.mark.parametrize("name", NAMES)
def test_unicode_table_schema_and_column_names(wh: Wh, name: str) -> None:
    t, c = q(name), q(name + " col")
    stored = validate_name(name)
    wh.run(f"CREATE TABLE {t} AS SELECT 1 AS id, 'x' AS {c}")
    wh.run(f"INSERT INTO {t} VALUES (2, 'y'), (3, 'z')")
    wh.run(f"UPDATE {t} SET {c} = {c} || '!' WHERE id = 2")
    wh.run(f"DELETE FROM {t} WHERE id = 3")
    wh.run(
        f"MERGE INTO {t} AS tt USING (SELECT 4 AS id, 'w' AS v) AS s ON tt.id = s.id "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)"
    )
    expected = [(1, "x"), (2, "y!"), (4, "w")]
    assert wh.rows(f"SELECT * FROM {t} ORDER BY id") == expected
    assert wh.rows(f"SELECT {c} FROM main.{t} WHERE id = 1") == [("x",)]
    assert wh.rows(f"SELECT * FROM {t} VERSION AS OF 0") == [(1, "x")]
    history = wh.rows(f"DESCRIBE HISTORY {t}")
    assert len(history) == 5
    assert (stored, "main") in {(r[1], r[0]) for r in wh.rows("SHOW TABLES")}
    # the folder has the name itself; external readers see the same rows
    path = wh.path(stored)
    assert Path(path, "_delta_log").is_dir()
    assert external_rows(path) == expected
    assert delta_scan_rows(file_url(path)) == expected
    # another session (a fresh sync) sees it too
    other = lakesql.connect(str(wh.root))
    try:
        assert other.cursor().execute(f"SELECT count(*) FROM {t}").fetchall() == [(3,)]
    finally:
        other.close()

    # a schema of that name, and a partitioned table whose partition column has the name too
    wh.run(f"CREATE SCHEMA {t}")
    wh.run(f"CREATE TABLE {t}.{t} PARTITIONED BY ({c}) AS SELECT 1 AS id, 'é x/%' AS {c}")
    wh.run(f"INSERT INTO {t}.{t} VALUES (2, {q(name)[0:0]}'k')")
    assert wh.rows(f"SELECT * FROM {t}.{t} ORDER BY id") == [(1, "é x/%"), (2, "k")]
    part = wh.path(stored, stored)
    assert external_rows(part) == [(1, "é x/%"), (2, "k")]
    # the extension reads the partitioned table through its file URL (a plain non-ASCII path
    # loses its non-ASCII characters in the extension: see docs/security.md)
    assert delta_scan_rows(file_url(part)) == [(1, "é x/%"), (2, "k")]
    wh.run(f"DROP TABLE {t}.{t}")
    wh.run(f"DROP SCHEMA {t}")
    wh.run(f"DROP TABLE {t}")
    assert not Path(path).exists()


def test_names_fold_case_as_duckdb_does(wh: Wh) -> None:
    """DuckDB folds ASCII letters only: "CAFÉ" and "cafÉ" are one table, "café" another."""
    wh.run('CREATE TABLE "CAFÉ" AS SELECT 1 AS a')
    assert wh.rows('SELECT a FROM "cafÉ"') == [(1,)]
    assert wh.rows("SELECT a FROM CAFÉ") == [(1,)]
    with pytest.raises(lakesql.CatalogError):
        wh.run('SELECT a FROM "café"')
    wh.run('CREATE TABLE "café" AS SELECT 2 AS a')
    assert wh.rows('SELECT a FROM "café"') == [(2,)]
    assert wh.rows('SELECT a FROM "CAFÉ"') == [(1,)]


@pytest.mark.parametrize("name", ["café", "日本語", "a b", "emoji😀"])
def test_unicode_feature_table_names(wh: Wh, name: str) -> None:
    ft = q("f " + name)
    wh.run(
        f"CREATE TABLE {q(name)} AS SELECT range AS cid, range * 2 AS {q(name + ' v')} FROM range(5)"
    )
    wh.run(f"CREATE FEATURE TABLE {ft} PRIMARY KEY (cid) AS SELECT * FROM {q(name)}")
    assert wh.rows(f"SELECT count(*) FROM {ft}") == [(5,)]
    wh.run(f"INSERT INTO {q(name)} VALUES (5, 10)")
    wh.run(f"REFRESH FEATURE TABLE {ft}")
    assert wh.rows(f"SELECT max({q(name + ' v')}) FROM {ft}") == [(10,)]
    assert any(validate_name("f " + name) in r for r in wh.rows("SHOW FEATURE TABLES"))
    wh.run(f"DROP FEATURE TABLE {ft}")


def test_unicode_model_names(wh: Wh) -> None:
    wh.run(
        "CREATE TABLE tr AS SELECT range AS i, (range % 7)::DOUBLE AS x, "
        "(range % 7)::DOUBLE * 2 + (range % 3) AS y FROM range(200)"
    )
    for name in ["modèle 日本", 'naïve"m😀']:
        m = q(name)
        wh.run(
            f"TRAIN AUTOML {m} PREDICT y FROM tr OPTIONS (time_budget = 2, max_trials = 1, "
            "estimators = ['lgbm'], exclude = ['i'])"
        )
        rows = wh.rows(f"SELECT i, predicted_y FROM ML.PREDICT(MODEL {m}, TABLE tr) ORDER BY i")
        assert len(rows) == 200
        assert any(validate_name(name) in r for r in wh.rows("SHOW MODELS"))
        wh.run(f"DROP MODEL {m}")


@pytest.mark.parametrize("bad", CONTROL)
def test_control_characters_are_refused_everywhere(wh: Wh, bad: str) -> None:
    wh.run("CREATE TABLE ok AS SELECT 1 AS a")
    before = sorted(str(p.relative_to(wh.root)) for p in wh.root.rglob("*"))
    statements = [
        f"CREATE TABLE {q(bad)} (a INT)",
        f"CREATE TABLE {q(bad)} AS SELECT 1 AS a",
        f"CREATE SCHEMA {q(bad)}",
        f"CREATE TABLE {q(bad)}.t (a INT)",
        f"CREATE TABLE c1 ({q(bad)} INT)",
        f"CREATE TABLE c2 AS SELECT 1 AS {q(bad)}",
        f"CREATE TABLE c3 AS SELECT {{{q(bad)}: 1}} AS s",
        f"ALTER TABLE ok ADD COLUMN {q(bad)} INT",
        f"ALTER TABLE ok RENAME TO {q(bad)}",
        f"CREATE FEATURE TABLE {q(bad)} PRIMARY KEY (a) AS SELECT 1 AS a",
        f"TRAIN AUTOML {q(bad)} PREDICT a FROM ok OPTIONS (time_budget = 1)",
        f"CREATE FUNCTION {q(bad)}(a BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS 'x:f'",
    ]
    for sql in statements:
        with pytest.raises(lakesql.ProgrammingError) as info:
            wh.run(sql)
        assert not isinstance(info.value, lakesql.ParseError) or "\x00" in bad, sql
        assert "control character" in str(info.value) or "NUL" in str(info.value), (
            f"{sql!r}: {info.value}"
        )
    after = sorted(str(p.relative_to(wh.root)) for p in wh.root.rglob("*"))
    assert [p for p in after if p not in before and "_lakesql" not in p] == []
    assert wh.rows("SELECT * FROM ok") == [(1,)]


@pytest.mark.parametrize("bad", CONTROL)
def test_catalog_refuses_control_characters(tmp_path: Path, bad: str) -> None:
    wh = Warehouse(tmp_path / "wh")
    for what in ("table name", "schema name", "model name", "function name"):
        with pytest.raises(lakesql.ProgrammingError, match="control character"):
            validate_name(bad, what)
    with pytest.raises(lakesql.ProgrammingError, match="control character"):
        wh.create_schema(bad)
    assert sorted(p.name for p in (tmp_path / "wh").iterdir()) == ["main"]


@pytest.mark.parametrize(
    "name,reason",
    [
        ("a%20b", "percent"),
        ("a*b", "glob"),
        ("a?b", "glob"),
        ("a[1]", "glob"),
        ("a.b", "dot"),
        ("\u2025x", "compatibility form"),
        ("x\ud800", "surrogate"),
        ("😀" * 60, "bytes"),
    ],
)
def test_names_refused_say_why(name: str, reason: str) -> None:
    with pytest.raises(lakesql.ProgrammingError, match=reason):
        validate_name(name, "table name")


# -- a table that cannot be read -----------------------------------------------------------


def _break(path: str) -> None:
    """Remove the data files of a table (as a bad VACUUM, or a lost disk, would)."""
    for p in Path(path).rglob("*.parquet"):
        if "_delta_log" not in p.parts:
            p.unlink()


def test_an_unreadable_table_fails_alone(wh: Wh) -> None:
    wh.run("CREATE TABLE good AS SELECT 1 AS a")
    wh.run("CREATE TABLE bad AS SELECT 1 AS a, 'x' AS b")
    wh.run("CREATE TABLE bad_parts PARTITIONED BY (b) AS SELECT 1 AS a, 'x' AS b")
    wh.run("SELECT * FROM bad")  # a view of the readable version exists in this session
    _break(wh.path("bad"))
    _break(wh.path("bad_parts"))
    wh.run("INSERT INTO good VALUES (2)")  # a new commit: this session syncs again
    for con in (wh.con, lakesql.connect(str(wh.root))):  # this session, and a new one
        cur = con.cursor()
        assert cur.execute("SELECT count(*) FROM good").fetchall() == [(2,)]
        assert cur.execute("SELECT 42").fetchall() == [(42,)]
        assert ("main", "bad") in cur.execute("SHOW TABLES").fetchall()
        if con is not wh.con:  # the failure is only seen at the first sync of a new session
            with pytest.raises(lakesql.OperationalError, match=r"table 'main\.bad' cannot be read"):
                cur.execute("SELECT * FROM bad").fetchall()
            with pytest.raises(lakesql.OperationalError, match=r"'main\.bad' cannot be read"):
                cur.execute("SELECT count(*) FROM bad").fetchall()
            assert [r[0] for r in cur.execute("DESCRIBE bad").fetchall()] == ["a", "b"]
            con.close()
    wh.run("DROP TABLE bad")
    wh.run("DROP TABLE bad_parts")
    assert wh.rows("SELECT count(*) FROM good") == [(2,)]
    assert ("main", "bad") not in wh.rows("SHOW TABLES")


def test_a_table_with_a_corrupt_log_fails_alone(wh: Wh) -> None:
    wh.run("CREATE TABLE good AS SELECT 1 AS a")
    wh.run("CREATE TABLE bad AS SELECT 1 AS a")
    log = Path(wh.path("bad"), "_delta_log", f"{1:020d}.json")
    log.write_text("this is not json\n")
    other = lakesql.connect(str(wh.root))
    try:
        cur = other.cursor()
        assert cur.execute("SELECT * FROM good").fetchall() == [(1,)]
        with pytest.raises(lakesql.OperationalError, match=r"table 'main\.bad' cannot be read"):
            cur.execute("SELECT * FROM bad").fetchall()
        cur.execute("DROP TABLE bad")
        assert not Path(wh.path("bad")).exists()
        assert cur.execute("SELECT * FROM good").fetchall() == [(1,)]
    finally:
        other.close()


def test_percent_encoded_file_uris_are_decoded_once(tmp_path: Path) -> None:
    """A partition folder on disk is `k=x%20y`; in the log it is `k=x%2520y`."""
    from lakesql.storage.delta import local_file

    assert (
        local_file("/w/main/café", "k=x%2520y/part-1.parquet")
        == "/w/main/café/k=x%20y/part-1.parquet"
    )
    assert local_file("/w/main/t", "part%20one.parquet") == "/w/main/t/part one.parquet"
    assert local_file("/w/t", "file:///data/caf%C3%A9/p.parquet") == "/data/café/p.parquet"
    with pytest.raises(lakesql.OperationalError, match="outside its folder"):
        local_file("/w/t", "..%2F..%2Fetc/passwd")
    with pytest.raises(lakesql.NotSupportedError):
        local_file("/w/t", "s3://bucket/p.parquet")
    assert os.sep == "/"


@pytest.mark.parametrize("name", ["ta b", "$HOME", "t;rm -rf", "a'b", "x,y=z"])
def test_shell_and_sql_characters_are_plain_names(wh: Wh, name: str, tmp_path: Path) -> None:
    """Refused before issue 15 (tests/fixtures/bad_input/paths.txt); now ordinary names whose
    folder is the name itself, inside the warehouse: nothing expands `$HOME` or runs `;`."""
    outside = sorted(p.name for p in tmp_path.iterdir())
    wh.run(f"CREATE TABLE {q(name)} (a INT)")
    wh.run(f"INSERT INTO {q(name)} VALUES (1)")
    assert wh.rows(f"SELECT a FROM {q(name)}") == [(1,)]
    assert Path(wh.root, "main", validate_name(name), "_delta_log").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == outside
    wh.run(f"DROP TABLE {q(name)}")


@pytest.mark.parametrize("name", [" ", "t ", " t", "\u3000", "t\u00a0"])
def test_names_starting_or_ending_with_a_space_are_refused(name: str) -> None:
    with pytest.raises(lakesql.ProgrammingError, match="space"):
        validate_name(name, "table name")


def test_file_uris_fallback_replaces_the_encoded_table_folder(tmp_path: Path) -> None:
    """Without add actions, `DeltaTable.file_uris()` is used: its table folder is percent-encoded,
    its relative part is as on disk (a partition folder keeps its own %XX)."""
    from urllib.parse import quote

    from lakesql.storage.delta import _from_file_uri

    table = str(tmp_path / "main" / "café 😀")
    uri = quote(table) + "/k=x%20y/part-1.parquet"
    assert _from_file_uri(uri, table) == table + "/k=x%20y/part-1.parquet"
    assert _from_file_uri("file://" + uri, table) == table + "/k=x%20y/part-1.parquet"
    assert _from_file_uri("/data/caf%C3%A9/p.parquet", table) == "/data/café/p.parquet"


def test_unicode_function_names(tmp_path: Path) -> None:
    folder = tmp_path / "udfs"
    folder.mkdir()
    (folder / "names_mod.py").write_text("def same(x):\n    return x\n")
    con = lakesql.connect(str(tmp_path / "wh"), udfs=str(folder))
    try:
        for name in ["fonction é😀", "関数", 'a"b c']:
            con.execute(
                f"CREATE FUNCTION {q(name)}(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS 'names_mod:same'"
            )
            assert con.execute(f"SELECT {q(name)}(4)").fetchall() == [(4,)]
        other = lakesql.connect(str(tmp_path / "wh"), udfs=str(folder))  # from the catalog
        assert other.execute(f"SELECT {q('関数')}(5)").fetchall() == [(5,)]
        other.close()
        con.execute(f"DROP FUNCTION {q('関数')}")
    finally:
        con.close()
