"""Roles of untrusted users (`lakesql.connect(role=...)`, which the server gives each client):
what each may do, what none may, and that a refusal changes nothing (docs/security.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakesql

DENIED = lakesql.InsufficientPrivilegeError


def _make(root: Path) -> Path:
    with lakesql.connect(str(root)) as owner:
        cur = owner.cursor()
        cur.execute("CREATE TABLE t AS SELECT range AS i FROM range(5)")
        cur.execute("CREATE FEATURE TABLE f PRIMARY KEY (i) AS SELECT i, i * 2 AS d FROM t")
    return root


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """One warehouse and one connection per role, for tests that change nothing."""
    root = _make(tmp_path_factory.mktemp("roles") / "wh")
    cons = {role: lakesql.connect(str(root), role=role) for role in ("reader", "writer", "admin")}
    yield root, {role: con.cursor() for role, con in cons.items()}
    for con in cons.values():
        con.close()


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    return _make(tmp_path / "wh")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _run(role: str, root: Path, sql: str, **kw: Any) -> list[tuple[Any, ...]] | int:
    with lakesql.connect(str(root), role=role, **kw) as con:
        cur = con.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else cur.rowcount


READS = [
    "SELECT sum(i) FROM t",
    "SELECT * FROM t VERSION AS OF 0",
    "DESCRIBE HISTORY t",
    "SHOW TABLES",
    "SELECT * FROM ML.FEATURES_AT_TIME(TABLE t, FEATURES f)",
    "CREATE TEMP TABLE scratch AS SELECT 1 AS a",
    "PRAGMA table_info('t')",
]
WRITES = [
    "INSERT INTO t VALUES (9)",
    "UPDATE t SET i = i + 10 WHERE i = 1",
    "DELETE FROM t WHERE i = 1",
    "MERGE INTO t USING (SELECT 1 AS i) s ON t.i = s.i WHEN MATCHED THEN DELETE",
    "CREATE TABLE t2 AS SELECT 1 AS a",
    "CREATE SCHEMA lab",
    "ALTER TABLE t ADD COLUMN c INT",
    "OPTIMIZE t",
    "VACUUM t",
    "REFRESH FEATURE TABLE f",
    "DROP FEATURE TABLE f",
    "DROP TABLE t",
]
ADMIN_ONLY = [
    "CREATE FUNCTION up(x VARCHAR) RETURNS VARCHAR LANGUAGE PYTHON AS 'text:slugify'",
    "SET lakesql.cluster = 'none'",
]
NEVER = [
    "INSTALL httpfs",
    "LOAD httpfs",
    "ATTACH 'x.db' AS x",
    "CALL enable_logging(storage_path='/tmp/lakesql-log')",
    "SELECT * FROM arrow_scan(1, 2, 3)",
    "SELECT * FROM query('SELECT 1')",
    "COPY (SELECT 1) TO '{wh}/main/t/evil.parquet'",
]


@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
def test_every_role_reads(shared: tuple[Path, dict[str, Any]], role: str) -> None:
    root, cursors = shared
    before = _files(root)
    for sql in READS:
        cursors[role].execute(sql)
    assert _files(root) == before


@pytest.mark.parametrize("sql", WRITES)
def test_reader_may_not_write_and_nothing_changes(
    shared: tuple[Path, dict[str, Any]], sql: str
) -> None:
    root, cursors = shared
    before = _files(root)
    with pytest.raises(DENIED, match=r"WRITE privilege.*'reader'"):
        cursors["reader"].execute(sql)
    assert _files(root) == before


def test_writer_writes(wh: Path) -> None:
    with lakesql.connect(str(wh), role="writer") as con:
        cur = con.cursor()
        for sql in WRITES:
            cur.execute(sql)
        assert cur.execute("SHOW TABLES").fetchall() == [("main", "t2")]


@pytest.mark.parametrize("sql", ADMIN_ONLY)
@pytest.mark.parametrize("role", ["reader", "writer"])
def test_admin_privileges_are_refused_below_admin(
    shared: tuple[Path, dict[str, Any]], role: str, sql: str
) -> None:
    with pytest.raises(DENIED, match="ADMIN privilege"):
        shared[1][role].execute(sql)


@pytest.mark.parametrize("sql", NEVER)
@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
def test_no_client_reaches_extensions_memory_or_the_warehouse_files(
    shared: tuple[Path, dict[str, Any]], role: str, sql: str
) -> None:
    root, cursors = shared
    before = _files(root)
    with pytest.raises(DENIED):
        cursors[role].execute(sql.format(wh=root))
    assert _files(root) == before


@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/root/*')",
        "SET threads = 1",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "SET profiling_output = '/tmp/lakesql-profile'",
    ],
)
def test_server_files_and_engine_settings_are_out_of_reach(
    shared: tuple[Path, dict[str, Any]], role: str, sql: str
) -> None:
    with pytest.raises(lakesql.Error):
        shared[1][role].execute(sql)


def test_admin_reads_and_writes_only_under_the_allowed_directories(
    wh: Path, tmp_path: Path
) -> None:
    allowed = tmp_path / "exchange"
    allowed.mkdir()
    (allowed / "in.csv").write_text("a,b\n1,2\n3,4\n")
    kw = {"allowed_directories": [str(allowed)]}
    assert _run("admin", wh, f"SELECT sum(a + b) FROM read_csv('{allowed}/in.csv')", **kw) == [
        (10,)
    ]
    _run("admin", wh, f"COPY t TO '{allowed}/out.csv' (HEADER)", **kw)
    assert (allowed / "out.csv").read_text().splitlines()[0] == "i"
    with pytest.raises(lakesql.Error):
        _run("admin", wh, f"COPY t TO '{tmp_path}/elsewhere.csv'", **kw)
    assert not (tmp_path / "elsewhere.csv").exists()
    # not into the UDF folder, even inside an allowed directory: the module would run in the server
    (allowed / "udfs").mkdir()
    with pytest.raises(DENIED, match="UDF folder"):
        _run(
            "admin",
            wh,
            f"COPY (SELECT 'import os' AS c) TO '{allowed}/udfs/evil.py' (HEADER false)",
            udfs=str(allowed / "udfs"),
            **kw,
        )
    assert not (allowed / "udfs" / "evil.py").exists()
    # a writer gets no allowed directories, even when asked for
    with pytest.raises(lakesql.Error):
        _run("writer", wh, f"SELECT * FROM read_csv('{allowed}/in.csv')", **kw)


def test_unknown_role_lists_the_roles(tmp_path: Path) -> None:
    with pytest.raises(lakesql.OptionError, match="reader, writer, admin"):
        lakesql.connect(str(tmp_path / "wh"), role="root")


def test_owner_keeps_every_privilege(wh: Path, tmp_path: Path) -> None:
    with lakesql.connect(str(wh)) as con:
        cur = con.cursor()
        cur.execute(f"COPY t TO '{tmp_path}/owner.csv' (HEADER)")
        cur.execute("SET threads = 1")
    assert os.path.exists(tmp_path / "owner.csv")
