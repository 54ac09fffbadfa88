"""Malformed and hostile input: every statement of tests/fixtures/bad_input/*.txt must raise a
lakesql.Error subclass with a useful message, and leave the warehouse exactly as it was.

"Useful" means: not an InternalError, not an engine's internal error text, no Python traceback,
a message of a few words at least. "Exactly as it was" means: the same files (path and size)
under the warehouse folder, the same Delta version of every table, and nothing new beside it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import lakesql

FIXTURES = Path(__file__).parent / "fixtures" / "bad_input"
# Absolute paths some cases name: they must not appear.
OUTSIDE = [Path("/tmp/evil"), Path("/tmp/x"), Path("/tmp/ft"), Path("/evil")]


def expand(text: str) -> str:
    """Apply the corpus macros (see fixtures/bad_input/README.md)."""
    text = text.replace("{{NUL}}", "\x00").replace("{{NL}}", "\n").replace("{{TAB}}", "\t")
    text = re.sub(r"\{\{DEEP:(\d+)\}\}", lambda m: "(" * int(m[1]) + "1" + ")" * int(m[1]), text)
    text = re.sub(r"\{\{SUM:(\d+)\}\}", lambda m: "+".join(["1"] * int(m[1])), text)
    return re.sub(r"\{\{(.)\*(\d+)\}\}", lambda m: m[1] * int(m[2]), text)


def load_cases() -> list[tuple[str, str, Any]]:
    """(id, statement, parameters) for every case of the corpus."""
    cases = []
    for path in sorted(FIXTURES.glob("*.txt")):
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            sql, _, params = line.partition(" ||| ")
            cases.append((f"{path.stem}:{no}", expand(sql), json.loads(params) if params else None))
    return cases


CASES = load_cases()


def warehouse_state(root: Path) -> dict[str, Any]:
    """Every file (path, size) under the warehouse, each table's Delta version, the neighbours."""
    import deltalake

    files = sorted(
        (str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file()
    )
    versions = {
        str(log.parent.relative_to(root)): deltalake.DeltaTable(str(log.parent)).version()
        for log in root.glob("*/*/_delta_log")
    }
    return {
        "files": files,
        "versions": versions,
        "siblings": sorted(p.name for p in root.parent.iterdir()),
        "outside": [str(p) for p in OUTSIDE if p.exists()],
    }


def build_warehouse(root: Path) -> Any:
    """A small warehouse with tables, a schema, a spine, a feature table, a UDF and a model."""
    udfs = root.parent / "udfs"
    shutil.copytree(FIXTURES / "udfs", udfs)
    con = lakesql.connect(str(root), udfs=str(udfs))
    cur = con.cursor()
    for sql in [
        "CREATE TABLE t (id INTEGER NOT NULL, name VARCHAR, ts TIMESTAMP)",
        "INSERT INTO t VALUES (1, 'ada', TIMESTAMP '2024-01-01 10:00:00'), "
        "(2, 'bob', TIMESTAMP '2024-01-02 10:00:00')",
        "INSERT INTO t VALUES (3, 'cy', TIMESTAMP '2024-01-03 10:00:00')",
        "CREATE SCHEMA s",
        "CREATE TABLE s.u AS SELECT 1 AS a",
        "CREATE TABLE spine AS SELECT id, ts + INTERVAL 1 HOUR AS ts FROM t",
        "CREATE FEATURE TABLE ft PRIMARY KEY (id) TIMESTAMP KEY (ts) AS "
        "SELECT id, ts, length(name) AS name_len FROM t",
        "CREATE FUNCTION twice(a BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS 'good:double_it'",
        "SELECT * FROM lakesql.feature_tables",
        "CREATE TABLE train_t AS SELECT range AS id, (range * 7919) % 101 AS a, "
        "(range * 104729) % 53 AS b, CASE WHEN (range * 7919) % 101 > 50 THEN 'x' ELSE 'y' END "
        "AS cls FROM range(200)",
        "TRAIN AUTOML mdl PREDICT cls FROM train_t OPTIONS (time_budget = 2, estimators = ['lgbm'])",
    ]:
        cur.execute(sql)
    return con


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("bad_input") / "warehouse"
    con = build_warehouse(root)
    yield root, con
    con.close()


def check_useful(e: lakesql.Error, sql: str) -> None:
    assert not isinstance(e, lakesql.InternalError), f"internal error for {sql[:200]!r}: {e}"
    text = str(e)
    assert len(e.message.strip()) >= 8, f"message too short for {sql[:200]!r}: {e.message!r}"
    for marker in ("INTERNAL Error", "Traceback (most recent call last)", "__lakesql_stage"):
        assert marker not in text, f"{marker!r} in the message for {sql[:200]!r}: {text[:500]}"


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 200


@pytest.mark.parametrize(("sql", "params"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_lakesql_error(warehouse: Any, sql: str, params: Any) -> None:
    root, con = warehouse
    before = warehouse_state(root)
    cur = con.cursor()
    try:
        cur.execute(sql, params)
        if cur.description is not None:
            cur.fetchall()
    except lakesql.Error as e:
        check_useful(e, sql)
    except BaseException as e:  # a leak: report it as a failure, not as an error of the test
        pytest.fail(f"{type(e).__module__}.{type(e).__name__} leaked for {sql[:200]!r}: {e}")
    else:
        pytest.fail(f"no error for {sql[:200]!r}")
    finally:
        cur.close()
    assert warehouse_state(root) == before, f"the warehouse changed after {sql[:200]!r}"


# -- DB-API misuse and bad connection options -------------------------------------------------

BAD_CONNECT_OPTIONS: list[dict[str, Any]] = [
    {"nope": 1},
    {"threads": "abc"},
    {"threads": 1.5},
    {"threads": True},
    {"batch_rows": "many"},
    {"delta_reader": "bogus"},
    {"time_budget": "x"},
    {"memory_limit": "lots"},
    {"THREADS": "x"},
]


@pytest.mark.parametrize("options", BAD_CONNECT_OPTIONS, ids=lambda o: ",".join(o))
def test_bad_connect_options(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(lakesql.Error) as info:
        lakesql.connect(str(tmp_path / "wh"), **options).close()
    check_useful(info.value, repr(options))


def test_dbapi_misuse(warehouse: Any) -> None:
    root, con = warehouse
    before = warehouse_state(root)
    cur = con.cursor()
    misuse = [
        lambda: cur.execute("SELECT ?", "a string is not a parameter list"),
        lambda: cur.execute("SELECT ?", 5),
        lambda: cur.execute("SELECT ?", [object()]),
        lambda: cur.execute("SELECT ?", [{1, 2}]),
        lambda: cur.execute("SELECT ?; SELECT ?", [1, 2]),
        lambda: cur.executemany("INSERT INTO t VALUES (?, ?, NULL)", [[1, "a"], ["x", "b"]]),
        lambda: cur.executemany("INSERT INTO t VALUES (?, ?, NULL)", [[1]]),
        lambda: cur.execute(None),  # type: ignore[arg-type]
        lambda: cur.execute(b"SELECT 1"),  # type: ignore[arg-type]
        lambda: con.cursor().fetchall(),
        lambda: con.cursor().fetchone(),
        lambda: con.cursor().fetch_arrow_table(),
    ]
    for i, call in enumerate(misuse):
        try:
            call()
        except lakesql.Error as e:
            check_useful(e, f"misuse {i}")
        except BaseException as e:
            pytest.fail(f"misuse {i}: {type(e).__name__} leaked: {e}")
        else:
            pytest.fail(f"misuse {i}: no error")
    # the first row of the executemany that failed on its second row was committed alone
    rows = con.cursor().execute("SELECT id, name FROM t WHERE id = 1 ORDER BY name").fetchall()
    assert rows[0] == (1, "a") if len(rows) > 1 else True
    con.cursor().execute("DELETE FROM t WHERE name = 'a'")
    after = warehouse_state(root)
    assert after["versions"]["main/t"] >= before["versions"]["main/t"]
    closed = con.cursor()
    closed.close()
    with pytest.raises(lakesql.InterfaceError):
        closed.execute("SELECT 1")


# -- a model directory edited by hand ----------------------------------------------------------


def _edit_model(folder: Path, how: str) -> None:
    """Damage a version folder the way a person with a text editor or `rm` might."""
    meta = json.loads((folder / "model.json").read_text())
    model_file = folder / meta["file"]
    if how == "model file deleted":
        model_file.unlink()
    elif how == "model file truncated":
        model_file.write_text(model_file.read_text()[:200])
    elif how == "model file replaced by a pickle":
        import pickle

        model_file.write_bytes(pickle.dumps({"evil": "object"}))
    elif how == "model.json garbage":
        (folder / "model.json").write_text("{not json")
    elif how == "model.json names an unknown family":
        (folder / "model.json").write_text(json.dumps({**meta, "family": "pickle"}))
    elif how == "model.json points outside the folder":
        (folder / "model.json").write_text(json.dumps({**meta, "file": "../../../../etc/passwd"}))
    elif how == "skops file with a foreign type":
        import skops.io as sio

        (folder / "model.skops").write_bytes(b"")
        sio.dump({"path": Path("/tmp")}, folder / "model.skops")
        (folder / "model.json").write_text(
            json.dumps({**meta, "family": "sklearn", "file": "model.skops"})
        )
    elif how == "prep.json deleted":
        (folder / "prep.json").unlink()
    elif how == "prep.json garbage":
        (folder / "prep.json").write_text("[1, 2")
    elif how == "prep.json missing keys":
        (folder / "prep.json").write_text("{}")
    elif how == "version folder deleted":
        shutil.rmtree(folder)
    else:
        raise AssertionError(how)


EDITS = [
    "model file deleted",
    "model file truncated",
    "model file replaced by a pickle",
    "model.json garbage",
    "model.json names an unknown family",
    "model.json points outside the folder",
    "skops file with a foreign type",
    "prep.json deleted",
    "prep.json garbage",
    "prep.json missing keys",
    "version folder deleted",
]


@pytest.fixture(scope="module")
def trained_warehouse(warehouse: Any) -> Path:
    return Path(warehouse[0])


@pytest.mark.parametrize("how", EDITS)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM ML.PREDICT(MODEL mdl, TABLE train_t)",
        "PREDICT mdl FROM train_t INTO scored",
        "SELECT PREDICT(mdl, a, b) FROM train_t",
    ],
    ids=["ML.PREDICT", "PREDICT INTO", "scalar"],
)
def test_model_directory_edited_by_hand(
    trained_warehouse: Path, tmp_path: Path, how: str, sql: str
) -> None:
    """Scoring a damaged model is a clear lakesql error; nothing is unpickled or written."""
    root = tmp_path / "warehouse"
    shutil.copytree(trained_warehouse, root)
    _edit_model(root / "_models" / "mdl" / "v1", how)
    before = warehouse_state(root)
    with lakesql.connect(str(root), udfs=str(FIXTURES / "udfs")) as con:
        cur = con.cursor()
        with pytest.raises(lakesql.Error) as info:
            cur.execute(sql)
            cur.fetchall()
    check_useful(info.value, sql)
    assert "mdl" in str(info.value) or "model" in str(info.value).lower(), str(info.value)
    assert warehouse_state(root) == before
