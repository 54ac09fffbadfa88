"""`lakesql serve`: the Postgres wire-protocol server, driven by real clients.

Each test module's server runs in a thread on 127.0.0.1 with a free port and stops afterwards.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakesql
from lakesql.server import Server, is_loopback

psycopg = pytest.importorskip("psycopg")


def _start(warehouse: Path, password: str | None = None) -> Server:
    server = Server(str(warehouse), "127.0.0.1", 0, password=password)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stop(server: Server) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("served")
    with lakesql.connect(str(path)) as con:
        cur = con.cursor()
        cur.execute(
            "CREATE TABLE people (id INT NOT NULL, name VARCHAR, score DOUBLE) COMMENT 'who is who'"
        )
        cur.execute(
            "INSERT INTO people VALUES (1, 'ada', 9.5), (2, 'alan', 7.25), (3, 'grace', NULL)"
        )
        cur.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(1000)")
    return path


@pytest.fixture(scope="module")
def server(warehouse: Path) -> Iterator[Server]:
    srv = _start(warehouse)
    yield srv
    _stop(srv)


def _dsn(server: Server, **extra: Any) -> str:
    parts = {"host": "127.0.0.1", "port": server.port, "user": "tester", "dbname": "lake"}
    parts.update(extra)
    return " ".join(f"{k}={v}" for k, v in parts.items())


def _connect(server: Server, **kw: Any) -> Any:
    return psycopg.connect(_dsn(server), autocommit=True, connect_timeout=60, **kw)


# -- psql ----------------------------------------------------------------------------------------

PSQL = shutil.which("psql")


def _psql(
    server: Server, *commands: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    args = [PSQL or "psql", "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", "tester", "lake"]
    for c in commands:
        args += ["-c", c]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGPASSWORD": password or ""}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.skipif(
    PSQL is None, reason="psql is not installed (apt-get install postgresql-client)"
)
def test_psql_lists_tables_describes_one_and_queries(server: Server) -> None:
    out = _psql(server, r"\dt", r"\d people", "SELECT name, score FROM people ORDER BY id")
    assert out.returncode == 0, out.stderr
    assert "ERROR" not in out.stderr, out.stderr
    text = out.stdout
    assert "List of relations" in text
    assert "people" in text and "numbers" in text and "table" in text
    assert 'Table "main.people"' in text
    assert "integer" in text and "not null" in text and "double precision" in text
    assert "ada   |   9.5" in text and "(3 rows)" in text


@pytest.mark.skipif(PSQL is None, reason="psql is not installed")
def test_psql_multi_statement_and_error(server: Server) -> None:
    out = _psql(server, "SELECT 1 AS one; SELECT 2 AS two", "SELECT * FROM missing_table")
    assert "one" in out.stdout and "two" in out.stdout
    assert "missing_table" in out.stderr


# -- psycopg -------------------------------------------------------------------------------------


def test_psycopg_parameters_and_types(server: Server) -> None:
    with _connect(server) as con:
        rows = con.execute(
            "SELECT name FROM people WHERE id >= %s AND name LIKE %s ORDER BY id", [2, "%a%"]
        ).fetchall()
        assert rows == [("alan",), ("grace",)]
        row = con.execute(
            "SELECT %s::INT + 1, %s, %s, %s, %s, %s, %s",
            [41, "text", dt.date(2024, 2, 29), decimal.Decimal("1.50"), None, b"\x00\xff", True],
        ).fetchone()
        assert row == (
            42,
            "text",
            dt.date(2024, 2, 29),
            decimal.Decimal("1.50"),
            None,
            b"\x00\xff",
            True,
        )
        row = con.execute(
            "SELECT 12.5::DECIMAL(10,2), [1, 2], TIMESTAMP '2020-01-02 03:04:05.5', "
            "TIMESTAMPTZ '2020-01-02 03:04:05+00', INTERVAL 3 DAY, 'x'::BLOB, 2::BIGINT, 1.5::FLOAT"
        ).fetchone()
        assert row[0] == decimal.Decimal("12.50")
        assert row[1] == [1, 2]
        assert row[2] == dt.datetime(2020, 1, 2, 3, 4, 5, 500000)
        assert row[3] == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        assert row[4] == dt.timedelta(days=3)
        assert row[5] == b"x" and row[6] == 2 and row[7] == 1.5
        cur = con.cursor(binary=True)
        assert cur.execute("SELECT id, name, score FROM people WHERE id = %s", [1]).fetchall() == [
            (1, "ada", 9.5)
        ]


def test_psycopg_errors_carry_sqlstate(server: Server) -> None:
    with _connect(server) as con:
        cases = [
            ("SELECT * FROM no_such_table", psycopg.errors.UndefinedTable, "42P01"),
            ("SELEC 1", psycopg.errors.SyntaxError, "42601"),
            ("INSERT INTO people VALUES (NULL, 'x', 1)", psycopg.errors.NotNullViolation, "23502"),
            ("SELECT nope FROM people", psycopg.errors.UndefinedColumn, "42703"),
            ("SELECT CAST('abc' AS INTEGER)", psycopg.errors.InvalidTextRepresentation, "22P02"),
        ]
        for sql, cls, code in cases:
            with pytest.raises(cls) as info:
                con.execute(sql)
            assert info.value.sqlstate == code, sql
        assert con.execute("SELECT count(*) FROM people").fetchone() == (3,)  # still usable


def test_writes_commit_and_rollback_undoes_a_transaction(server: Server, warehouse: Path) -> None:
    with psycopg.connect(_dsn(server), connect_timeout=10) as con:  # psycopg sends BEGIN
        con.execute("CREATE TABLE IF NOT EXISTS notes (id INT, body VARCHAR)")
        con.commit()
        cur = con.execute("INSERT INTO notes VALUES (%s, %s), (%s, %s)", [1, "a", 2, "b"])
        assert cur.rowcount == 2 and cur.statusmessage == "INSERT 0 2"
        con.commit()
        assert con.execute("SELECT count(*) FROM notes").fetchone() == (2,)
        con.execute("DELETE FROM notes WHERE id = 2")
        assert con.execute("SELECT count(*) FROM notes").fetchone() == (1,)  # its own write
        with lakesql.connect(str(warehouse)) as direct:  # not seen before COMMIT
            assert direct.execute("SELECT count(*) FROM notes").fetchone() == (2,)
        con.rollback()  # a lakesql transaction: the DELETE is undone
        assert con.execute("SELECT count(*) FROM notes").fetchone() == (2,)
        with pytest.raises(psycopg.errors.UndefinedTable):
            con.execute("SELECT * FROM nowhere")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            con.execute("SELECT 1")
        con.rollback()
        con.execute("DELETE FROM notes WHERE id = 2")
        con.commit()
        assert con.execute("SELECT count(*) FROM notes").fetchone() == (1,)
    with lakesql.connect(str(warehouse)) as direct:  # committed for every other client too
        assert direct.execute("SELECT count(*) FROM notes").fetchone() == (1,)


def test_server_side_cursor_and_prepared_statements(server: Server) -> None:
    with psycopg.connect(_dsn(server), connect_timeout=10) as con:
        with con.cursor(name="big") as cur:
            cur.execute("SELECT n FROM numbers WHERE n < %s ORDER BY n", [250])
            first = cur.fetchmany(100)
            rest = cur.fetchall()
        assert [r[0] for r in first + rest] == list(range(250))
        for i in range(8):  # psycopg prepares a statement run this often
            assert con.execute("SELECT n * 2 FROM numbers WHERE n = %s", [i]).fetchone() == (2 * i,)
        con.execute("SHOW transaction isolation level")
        assert con.execute("SELECT current_setting('server_version_num')").fetchone() == ("150000",)


def test_lakesql_statements_work_through_the_server(server: Server) -> None:
    with _connect(server) as con:
        tables = con.execute("SHOW TABLES").fetchall()
        assert ("main", "people") in tables
        history = con.execute("DESCRIBE HISTORY people").fetchall()
        assert len(history) >= 2
        old = con.execute("SELECT count(*) FROM people VERSION AS OF 0").fetchone()
        assert old == (0,)
        cur = con.execute("CREATE TABLE copy_of AS SELECT * FROM people")
        assert cur.statusmessage == "CREATE TABLE"
        assert con.execute("UPDATE copy_of SET score = 0 WHERE id = 3").statusmessage == "UPDATE 1"
        assert con.execute("DROP TABLE copy_of").statusmessage == "DROP TABLE"
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            con.execute("ALTER TABLE people DROP COLUMN name")
        with pytest.raises(psycopg.errors.SyntaxErrorOrAccessRuleViolation, match="UNIQUE"):
            con.execute("INSERT INTO people VALUES (9, 'x', 1) ON CONFLICT DO NOTHING")


def test_cancel_interrupts_a_running_query(server: Server) -> None:
    with _connect(server) as con:
        # cancel_safe(): the blocking cancel() would hold the GIL that this in-process server needs
        timer = threading.Timer(0.5, con.cancel_safe)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            con.execute("SELECT count(*) FROM range(20000000000) t(a) WHERE a % 7 = 3")
        assert info.value.sqlstate == "57014"
        assert time.monotonic() - started < 20
        assert con.execute("SELECT 1").fetchone() == (1,)


def test_sqlalchemy_postgresql_dialect_select_and_reflection(server: Server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(f"postgresql+psycopg://tester@127.0.0.1:{server.port}/lake")
    try:
        with engine.connect() as con:
            rows = con.execute(sa.text("SELECT name FROM people WHERE id = :id"), {"id": 2})
            assert rows.fetchall() == [("alan",)]
        inspector = sa.inspect(engine)
        assert "main" in inspector.get_schema_names()
        assert {"people", "numbers"} <= set(inspector.get_table_names())
        columns = {c["name"]: c for c in inspector.get_columns("people")}
        assert isinstance(columns["id"]["type"], sa.Integer) and not columns["id"]["nullable"]
        assert isinstance(columns["score"]["type"], sa.Float)
        assert inspector.get_table_comment("people")["text"] == "who is who"
        people = sa.Table("people", sa.MetaData(), autoload_with=engine)
        with engine.connect() as con:
            got = con.execute(sa.select(people.c.name).where(people.c.id < 3).order_by(people.c.id))
            assert got.scalars().all() == ["ada", "alan"]
    finally:
        engine.dispose()


def test_twenty_concurrent_clients(server: Server) -> None:
    clients, queries = 20, 50
    failures: list[str] = []
    barrier = threading.Barrier(clients)

    def client(k: int) -> None:
        try:
            with _connect(server) as con:
                barrier.wait(timeout=60)
                for i in range(queries):
                    x = k * 1000 + i
                    row = con.execute(
                        "SELECT %s::BIGINT * 2, count(*) FROM numbers WHERE n < %s", [x, i]
                    ).fetchone()
                    if row != (2 * x, i):
                        failures.append(f"client {k} query {i}: {row}")
        except Exception as e:  # reported below
            failures.append(f"client {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:5]


# -- authentication ------------------------------------------------------------------------------


def test_password_is_required_and_checked(warehouse: Path) -> None:
    srv = _start(warehouse, password="s3cret pass")
    try:
        with psycopg.connect(_dsn(srv, password="'s3cret pass'"), connect_timeout=10) as con:
            assert con.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_dsn(srv, password="wrong"), connect_timeout=10)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(_dsn(srv), connect_timeout=10)  # no password at all
        if PSQL is not None:
            out = _psql(srv, "SELECT 1", password="wrong")
            assert out.returncode != 0 and "password authentication failed" in out.stderr
    finally:
        _stop(srv)


def test_non_loopback_address_needs_a_password(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(lakesql.OptionError, match="needs a password"):
        Server(str(tmp_path), "0.0.0.0", 0)


def test_serve_command(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakesql.cli", "-w", str(tmp_path), "serve", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                con = psycopg.connect(
                    f"host=127.0.0.1 port={port} user=u dbname=d",
                    autocommit=True,
                    connect_timeout=5,
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        with con:
            con.execute("CREATE TABLE t AS SELECT 42 AS answer")
            assert con.execute("SELECT answer FROM t").fetchone() == (42,)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    refused = subprocess.run(
        [sys.executable, "-m", "lakesql.cli", "-w", str(tmp_path), "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            k: v
            for k, v in os.environ.items()
            if k not in ("LAKESQL_SERVER_PASSWORD", "LAKESQL_PASSWORD")
        },
    )
    assert refused.returncode == 2 and "needs a password" in refused.stderr
