"""`lakesql serve` under attack: every limit of docs/security.md ("Server limits") refused with
its SQLSTATE, driven by psycopg and by raw sockets speaking (or breaking) the protocol."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_server import _connect, _dsn, _stop

import lakesql
from lakesql.server import Server

psycopg = pytest.importorskip("psycopg")

LONG_QUERY = "SELECT count(*) FROM range(20000000000) t(a) WHERE a % 7 = 3"


# -- raw protocol ------------------------------------------------------------------------------


def startup_packet(user: bytes = b"raw", database: bytes = b"lake") -> bytes:
    body = struct.pack("!i", 196608) + b"user\x00" + user + b"\x00database\x00" + database
    body += b"\x00\x00"
    return struct.pack("!i", len(body) + 4) + body


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def query(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\x00")


def read_messages(sock: socket.socket, until: bytes = b"Z", timeout: float = 30) -> list[Any]:
    """(kind, body) messages up to and including one of kind `until`, or to EOF."""
    sock.settimeout(timeout)
    out: list[Any] = []
    buf = b""
    while True:
        while len(buf) >= 5:
            length = struct.unpack("!i", buf[1:5])[0]
            if len(buf) < 1 + length:
                break
            kind, body, buf = buf[:1], buf[5 : 1 + length], buf[1 + length :]
            out.append((kind, body))
            if kind == until:
                return out
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return out
        if not data:
            return out
        buf += data


def error_fields(body: bytes) -> dict[str, str]:
    fields = {}
    for part in body.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode()
    return fields


def errors_of(messages: list[Any]) -> list[dict[str, str]]:
    return [error_fields(body) for kind, body in messages if kind == b"E"]


def raw_session(server: Server) -> socket.socket:
    """A raw, authenticated connection (a server without a password)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(startup_packet())
    got = read_messages(sock)
    assert got and got[-1][0] == b"Z", got
    return sock


def closed(sock: socket.socket, timeout: float) -> bool:
    """True when the server closed `sock` within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits")
    with lakesql.connect(str(path)) as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(1000)")
    return path


@pytest.fixture
def make_server(warehouse: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def make(**kw: Any) -> Server:
        srv = Server(str(warehouse), "127.0.0.1", 0, **kw)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        _stop(srv)


# -- before authentication ---------------------------------------------------------------------


def test_half_open_connections_are_closed_after_the_authentication_timeout(
    make_server: Any,
) -> None:
    server = make_server(authentication_timeout=1.0)
    socks = []
    for i in range(500):  # half send nothing, half send half a startup packet
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        if i % 2:
            s.sendall(startup_packet()[:11])
        socks.append(s)
    started = time.monotonic()
    with _connect(server) as con:  # a real client is served meanwhile
        assert con.execute("SELECT 42").fetchone() == (42,)
    deadline = time.monotonic() + 20
    fatal = 0
    for s in socks:
        got = read_messages(s, timeout=max(0.1, deadline - time.monotonic()))
        codes = [e.get("C") for e in errors_of(got)]
        fatal += codes == ["08006"]
        assert closed(s, max(0.1, deadline - time.monotonic())), "still open"
        s.close()
    elapsed = time.monotonic() - started
    assert fatal == 500
    assert elapsed < 15, elapsed
    for _ in range(100):
        if server.connections == 0:
            break
        time.sleep(0.05)
    assert server.connections == 0
    with _connect(server) as con:
        assert con.execute("SELECT 42").fetchone() == (42,)


def test_a_huge_length_prefix_is_refused_at_once_before_and_after_login(make_server: Any) -> None:
    server = make_server()
    before = rss_kib()
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            started = time.monotonic()
            s.sendall(struct.pack("!i", 1 << 30) + struct.pack("!i", 196608))
            got = read_messages(s)
            assert time.monotonic() - started < 2
            assert [e["C"] for e in errors_of(got)] == ["08P01"]
            assert "invalid length of startup packet" in errors_of(got)[0]["M"]
            assert closed(s, 5)
        with raw_session(server) as s:  # after login: a query message of 1 GiB
            started = time.monotonic()
            s.sendall(b"Q" + struct.pack("!i", 1 << 30) + b"SELECT ")
            got = read_messages(s)
            assert time.monotonic() - started < 2
            assert [(e["S"], e["C"]) for e in errors_of(got)] == [("FATAL", "08P01")]
            assert closed(s, 5)
        with raw_session(server) as s:  # a control message longer than 10 000 bytes
            s.sendall(b"S" + struct.pack("!i", 20_000))
            assert [e["C"] for e in errors_of(read_messages(s))] == ["08P01"]
    assert rss_kib() - before < 100_000  # no gigabyte reserved
    with _connect(server) as con:
        assert con.execute("SELECT sum(n) FROM numbers").fetchone() == (499500,)


def test_a_long_message_costs_the_bytes_that_arrive(make_server: Any) -> None:
    server = make_server()
    socks = []
    before = rss_kib()
    for _ in range(4):  # 60 MiB announced (under the 64 MiB limit), 6 bytes sent
        s = raw_session(server)
        s.sendall(b"Q" + struct.pack("!i", 60 << 20) + b"SELECT")
        socks.append(s)
    time.sleep(0.5)
    assert rss_kib() - before < 64_000  # not 4 x 60 MiB
    for s in socks:
        s.close()


def test_password_exchange_messages_are_small(make_server: Any) -> None:
    server = make_server(password="pw", auth_failure_delay=0)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(startup_packet())
        got = read_messages(s, until=b"R")
        assert got[-1][0] == b"R"
        s.sendall(b"p" + struct.pack("!i", 1 << 30))
        assert [e["C"] for e in errors_of(read_messages(s))] == ["08P01"]


@pytest.mark.parametrize(
    "packet, words",
    [
        (startup_packet(user=b"\xff\xfe\xfd"), "not UTF-8"),
        (startup_packet(user=b""), "no PostgreSQL user name"),
        (struct.pack("!ii", 13, 196608) + b"userx", "expected terminator"),
        (struct.pack("!iii", 12, 80877102, 5), "cancel request"),
        (struct.pack("!ii", 8, 131072), "unsupported frontend protocol"),
        (struct.pack("!i", 3), "invalid length of startup packet"),
    ],
)
def test_a_malformed_startup_packet_is_one_protocol_error_and_one_log_line(
    make_server: Any, caplog: pytest.LogCaptureFixture, packet: bytes, words: str
) -> None:
    server = make_server()
    caplog.set_level(logging.INFO, logger="lakesql.server")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(packet)
        errors = errors_of(read_messages(s))
        assert [(e["S"], e["C"]) for e in errors] == [("FATAL", "08P01")]
        assert words in errors[0]["M"]
        assert closed(s, 5)
    time.sleep(0.2)
    records = [r for r in caplog.records if r.name == "lakesql.server"]
    assert len(records) == 1 and records[0].exc_info is None, records
    with _connect(server) as con:
        assert con.execute("SELECT 42").fetchone() == (42,)


# -- connections, logins -----------------------------------------------------------------------


def test_max_connections_is_53300(make_server: Any) -> None:
    server = make_server(max_connections=2)
    first, second = _connect(server), _connect(server)
    with pytest.raises(psycopg.OperationalError, match="too many clients"):
        _connect(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(startup_packet())
        assert [(e["S"], e["C"]) for e in errors_of(read_messages(s))] == [("FATAL", "53300")]
    first.close()
    time.sleep(0.2)
    with _connect(server) as third:  # a slot is free again
        assert third.execute("SELECT 1").fetchone() == (1,)
    second.close()


def test_failed_logins_wait_longer_and_longer(make_server: Any) -> None:
    server = make_server(password="right", auth_failure_delay=0.2, auth_failure_delay_max=0.8)
    waits = []
    for _ in range(4):
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_dsn(server, password="wrong"), connect_timeout=10)
        waits.append(time.monotonic() - started)
    assert 0.2 <= waits[0] < waits[1] < waits[2] and waits[2] >= 0.8, waits
    assert waits[3] < 1.5, waits  # capped
    with psycopg.connect(_dsn(server, password="right"), connect_timeout=10) as con:
        assert con.execute("SELECT 1").fetchone() == (1,)
    started = time.monotonic()  # a success resets the count
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_dsn(server, password="wrong"), connect_timeout=10)
    assert time.monotonic() - started < 0.6


# -- sessions ----------------------------------------------------------------------------------


def test_statement_timeout_per_session_cancels_with_57014(make_server: Any) -> None:
    server = make_server()
    with _connect(server) as con:
        assert con.execute("SHOW statement_timeout").fetchone() == ("0",)
        con.execute("SET statement_timeout = '200ms'")
        assert con.execute("SHOW statement_timeout").fetchone() == ("200ms",)
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout") as info:
            con.execute(LONG_QUERY)
        assert info.value.sqlstate == "57014"
        assert time.monotonic() - started < 10
        assert con.execute("SELECT sum(n) FROM numbers").fetchone() == (499500,)  # usable
        con.execute("SET statement_timeout TO 60000")
        assert con.execute("SHOW statement_timeout").fetchone() == ("1min",)
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            con.execute("SET statement_timeout = 'soon'")
        con.execute("RESET statement_timeout")
        assert con.execute("SHOW statement_timeout").fetchone() == ("0",)
        for binary in (False, True):  # the extended protocol too
            con.execute("SET statement_timeout = 300")
            with pytest.raises(psycopg.errors.QueryCanceled):
                con.cursor(binary=binary).execute(
                    LONG_QUERY.replace("%", "%%") + " AND a > %s", [-1]
                )
            assert con.execute("SELECT %s::INT", [7]).fetchone() == (7,)


def test_server_statement_timeout_is_the_default(make_server: Any) -> None:
    server = make_server(statement_timeout=0.3)
    with _connect(server) as con:
        assert con.execute("SHOW statement_timeout").fetchone() == ("300ms",)
        with pytest.raises(psycopg.errors.QueryCanceled):
            con.execute(LONG_QUERY)
        con.execute("SET statement_timeout = 0")
        con.execute("RESET statement_timeout")
        assert con.execute("SHOW statement_timeout").fetchone() == ("300ms",)
        assert con.execute("SELECT 1").fetchone() == (1,)


def test_idle_in_transaction_timeout_is_25p03(make_server: Any) -> None:
    server = make_server(idle_in_transaction_timeout=0.5)
    with raw_session(server) as s:
        s.sendall(query("BEGIN"))
        assert read_messages(s)[-1] == (b"Z", b"T")
        started = time.monotonic()
        errors = errors_of(read_messages(s, until=b"\x00"))
        assert [(e["S"], e["C"]) for e in errors] == [("FATAL", "25P03")]
        assert 0.4 < time.monotonic() - started < 5
        assert closed(s, 5)
    with raw_session(server) as s:  # idle outside a transaction: kept
        s.sendall(query("SET idle_in_transaction_session_timeout = '5s'"))
        read_messages(s)
        time.sleep(1)
        s.sendall(query("BEGIN"))
        read_messages(s)
        time.sleep(1)  # under its own 5 s
        s.sendall(query("SELECT 1"))
        got = read_messages(s)
        assert not errors_of(got) and got[-1] == (b"Z", b"T")
    with psycopg.connect(_dsn(server), connect_timeout=10) as con:
        con.execute("SELECT 1")  # psycopg sent BEGIN
        time.sleep(1.5)
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout) as info:
            con.execute("SELECT 1")
        assert info.value.sqlstate == "25P03"


def test_a_client_that_goes_away_has_its_query_canceled(make_server: Any) -> None:
    server = make_server()
    s = raw_session(server)
    s.sendall(query(LONG_QUERY))
    for _ in range(100):
        if server.active == 1:
            break
        time.sleep(0.05)
    assert server.active == 1
    s.close()
    started = time.monotonic()
    while server.active and time.monotonic() - started < 10:
        time.sleep(0.05)
    assert server.active == 0, "the query still runs"
    assert time.monotonic() - started < 5
    with _connect(server) as con:
        started = time.monotonic()
        assert con.execute("SELECT sum(n) FROM numbers").fetchone() == (499500,)
        assert time.monotonic() - started < 5


def test_errors_do_not_show_the_warehouse_folder(make_server: Any, warehouse: Path) -> None:
    server = make_server()
    with _connect(server) as con:
        with pytest.raises(psycopg.Error) as info:
            con.execute(f"SELECT * FROM read_csv('{warehouse}/missing.csv')")
        diag = info.value.diag
        text = " ".join(
            str(x) for x in (diag.message_primary, diag.message_hint, diag.message_detail)
        )
        assert str(warehouse) not in text and os.path.realpath(warehouse) not in text
        assert info.value.sqlstate


def test_a_suspended_portal_is_streamed_and_set_aside_with_bounded_memory(
    make_server: Any,
) -> None:
    server = make_server(portal_memory=1 << 20)
    with psycopg.connect(_dsn(server), connect_timeout=10) as con:
        with con.cursor(name="many") as big:  # DECLARE ... FETCH: read in batches
            big.itersize = 10_000
            big.execute("SELECT range AS i FROM range(1000000)")
            before = rss_kib()
            total = sum(r[0] for r in big)
            assert total == 1000000 * 999999 // 2
            assert rss_kib() - before < 200_000
    with raw_session(server) as s:  # a portal suspended by Execute(limit), then a query
        s.sendall(query("BEGIN"))
        read_messages(s)
        sql = b"SELECT range AS i FROM range(300000)\x00"
        s.sendall(
            message(b"P", b"\x00" + sql + b"\x00\x00")
            + message(b"B", b"p1\x00\x00" + b"\x00\x00\x00\x00\x00\x00")
            + message(b"E", b"p1\x00" + struct.pack("!i", 5))
            + message(b"S")
        )
        got = read_messages(s)
        assert [k for k, _ in got].count(b"D") == 5 and (b"s", b"") in got
        s.sendall(query("SELECT 42"))  # runs on the session's cursor: the portal is set aside
        assert (b"D", struct.pack("!hi", 1, 2) + b"42") in read_messages(s)
        s.sendall(message(b"E", b"p1\x00" + struct.pack("!i", 0)) + message(b"S"))
        got = read_messages(s)
        values = [int(body[6:]) for kind, body in got if kind == b"D"]
        assert values == list(range(5, 300000))
        assert (b"C", b"SELECT 300000\x00") in got


def test_serve_reads_the_password_from_a_file_or_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("file pass\n")
    for args, env, password in (
        (["--password-file", str(secret)], {}, "file pass"),
        ([], {"LAKESQL_PASSWORD": "env pass"}, "env pass"),
    ):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "lakesql.cli", "-w", str(tmp_path / "wh"), "serve"]
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), "--max-connections", "1", *args],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        try:
            deadline = time.monotonic() + 60
            dsn = f"host=127.0.0.1 port={port} user=u dbname=d password='{password}'"
            while True:
                try:
                    con = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
                    break
                except psycopg.OperationalError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.2)
            with con:
                assert con.execute("SELECT 1").fetchone() == (1,)
                with pytest.raises(psycopg.OperationalError, match="too many clients"):
                    psycopg.connect(dsn, connect_timeout=5)
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                assert password.encode() not in f.read()  # not visible in ps
        finally:
            proc.terminate()
            proc.wait(timeout=10)
