"""`lakesql serve --users FILE`: each client gets its user's role, over a real server with psycopg;
refusals are SQLSTATE 42501 and nothing is written outside the warehouse (docs/security.md)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakesql
from lakesql.server import Server
from lakesql.server import users as server_users

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("roles")
    root = base / "wh"
    with lakesql.connect(str(root)) as con:
        con.cursor().execute("CREATE TABLE accounts AS SELECT 1 AS id, 100 AS balance")
    users = base / "users.toml"
    server_users.add(users, "alice", "reader", "alice-pw")
    server_users.add(users, "bob", "writer", "bob-pw")
    assert "alice-pw" not in users.read_text()
    srv = Server(str(root), "127.0.0.1", 0, users=str(users))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv, base
    srv.shutdown()
    srv.server_close()


def _connect(srv: Server, user: str, password: str) -> Any:
    return psycopg.connect(
        host="127.0.0.1",
        port=srv.port,
        user=user,
        password=password,
        dbname="wh",
        autocommit=True,
        connect_timeout=60,
    )


def _files(base: Path) -> set[str]:
    return {str(p.relative_to(base)) for p in base.rglob("*")}


def test_reader_reads_and_is_refused_writes_with_42501(served: tuple[Server, Path]) -> None:
    srv, base = served
    before = _files(base)
    with _connect(srv, "alice", "alice-pw") as con:
        assert con.execute("SELECT balance FROM accounts").fetchall() == [(100,)]
        for sql in (
            "UPDATE accounts SET balance = 0",
            "CREATE TABLE stolen AS SELECT 1 AS a",
            "COPY accounts TO '/tmp/lakesql-roles-leak.csv'",
            "INSTALL httpfs",
            "SELECT * FROM arrow_scan(1, 2, 3)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
                con.execute(sql)
            assert info.value.sqlstate == "42501"
        with pytest.raises(psycopg.Error):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
        assert con.execute("SELECT balance FROM accounts").fetchall() == [(100,)]
    assert _files(base) == before
    assert not Path("/tmp/lakesql-roles-leak.csv").exists()


def test_writer_writes_but_reaches_no_server_file(served: tuple[Server, Path]) -> None:
    srv = served[0]
    with _connect(srv, "bob", "bob-pw") as con:
        con.execute("UPDATE accounts SET balance = balance - 30")
        assert con.execute("SELECT balance FROM accounts").fetchall() == [(70,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("CREATE FUNCTION f(x VARCHAR) RETURNS VARCHAR LANGUAGE PYTHON AS 'a:b'")
        with pytest.raises(psycopg.Error):
            con.execute("SELECT * FROM glob('/root/*')")


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "anything")])
def test_wrong_password_and_unknown_user_look_the_same(
    served: tuple[Server, Path], user: str, password: str
) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(served[0], user, password)


def test_users_file_keeps_verifiers_and_refuses_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    server_users.add(path, "carol", "admin", "pw")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert server_users.load(path)["carol"].role == "admin"
    path.write_text('[users.dave]\nrole = "root"\nverifier = "x"\n')
    with pytest.raises(lakesql.OptionError, match="unknown role"):
        server_users.load(path)
