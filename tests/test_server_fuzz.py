"""A seeded protocol fuzzer against `lakesql serve`: malformed, truncated and oversized messages,
random type bytes and bogus lengths, before and after login.

Asserts: the server stays up, every error it sends is an ErrorResponse with a SQLSTATE (never
XX000, an internal error), the process's RSS grows less than RSS_BOUND_MIB, and another client
keeps getting correct answers. The short form runs by default; the long form is `slow`.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_server import _connect, _stop
from test_server_limits import (
    closed,
    error_fields,
    message,
    query,
    read_messages,
    rss_kib,
    startup_packet,
)

import lakesql
from lakesql.server import Server

psycopg = pytest.importorskip("psycopg")

RSS_BOUND_MIB = 300  # growth of the (in-process) server's resident memory over the whole run
SUM = 499500

SQL = [
    "SELECT 1",
    "SELECT n FROM numbers WHERE n < $1",
    "SELECT $1::INT + $2::INT",
    "INSERT INTO scratch VALUES ($1)",
    "UPDATE scratch SET i = i + 1",
    "DELETE FROM scratch WHERE i > $1",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "ROLLBACK TO SAVEPOINT s",
    "SET statement_timeout = '50ms'",
    "SHOW statement_timeout",
    "DECLARE c CURSOR FOR SELECT n FROM numbers",
    "FETCH 10 FROM c",
    "CLOSE c",
    "SELECT * FROM pg_catalog.pg_class LIMIT 3",
    "SELEC 1",
    "",
]


class Fuzzer:
    def __init__(self, server: Server, seed: int):
        self.server = server
        self.rng = random.Random(seed)
        self.codes: list[str] = []
        self.sock: socket.socket | None = None
        self.cases = 0

    # -- generators ------------------------------------------------------------------------
    def junk(self, n: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def mutate(self, data: bytes) -> bytes:
        data = bytearray(data)
        for _ in range(self.rng.randint(1, 4)):
            if not data:
                break
            what = self.rng.random()
            i = self.rng.randrange(len(data))
            if what < 0.5:
                data[i] = self.rng.getrandbits(8)
            elif what < 0.75:
                del data[i : i + self.rng.randint(1, 8)]
            else:
                data[i:i] = self.junk(self.rng.randint(1, 8))
        return bytes(data)

    def sql(self) -> bytes:
        text = self.rng.choice(SQL).encode()
        return self.mutate(text) if self.rng.random() < 0.3 else text

    def valid_message(self) -> bytes:
        r = self.rng
        kind = r.choice("QPBDECSH")
        if kind == "Q":
            return query(self.sql().decode("utf-8", "replace"))
        if kind == "P":
            name = r.choice([b"", b"s1", b"s2"])
            oids = [r.choice([0, 23, 25, 20, 17, 1700, 9999]) for _ in range(r.randint(0, 3))]
            body = (
                name
                + b"\x00"
                + self.sql()
                + b"\x00"
                + struct.pack(f"!h{len(oids)}I", len(oids), *oids)
            )
            return message(b"P", body)
        if kind == "B":
            params = []
            for _ in range(r.randint(0, 3)):
                if r.random() < 0.2:
                    params.append(struct.pack("!i", -1))
                else:
                    value = r.choice([b"1", b"42", b"x", self.junk(r.randint(0, 9))])
                    params.append(struct.pack("!i", len(value)) + value)
            formats = [r.choice([0, 1, 7]) for _ in range(r.randint(0, 2))]
            body = (
                r.choice([b"", b"p1"])
                + b"\x00"
                + r.choice([b"", b"s1", b"s2", b"nope"])
                + b"\x00"
                + struct.pack(f"!h{len(formats)}h", len(formats), *formats)
                + struct.pack("!h", len(params))
                + b"".join(params)
                + struct.pack("!hh", 1, r.choice([0, 1]))
            )
            return message(b"B", body)
        if kind == "D":
            return message(
                b"D", r.choice([b"S", b"P", b"Z"]) + r.choice([b"", b"s1", b"p1"]) + b"\x00"
            )
        if kind == "E":
            return message(
                b"E",
                r.choice([b"", b"p1", b"zz"])
                + b"\x00"
                + struct.pack("!i", r.choice([0, 1, 5, -1])),
            )
        if kind == "C":
            return message(
                b"C", r.choice([b"S", b"P", b"?"]) + r.choice([b"", b"s1", b"p1"]) + b"\x00"
            )
        return message(kind.encode())

    def broken_message(self) -> tuple[bytes, bool]:
        """(bytes, framing_intact): a message whose content or framing is wrong."""
        r = self.rng
        what = r.random()
        if what < 0.35:
            return self.mutate(self.valid_message()), False
        if what < 0.55:  # a random type byte with a well-formed length
            body = self.junk(r.randint(0, 40))
            return bytes([r.getrandbits(8)]) + struct.pack("!i", len(body) + 4) + body, True
        if what < 0.7:  # a bogus length: negative, too small, huge
            length = r.choice([-1, 0, 3, 2**31 - 1, 1 << 30, 70 << 20])
            return r.choice([b"Q", b"P", b"S", b"d"]) + struct.pack("!i", length) + self.junk(
                20
            ), False
        if what < 0.8:  # oversized but under the limit, then the client goes away
            return b"Q" + struct.pack("!i", 20 << 20) + self.junk(1000), False
        if what < 0.9:  # a truncated valid message
            data = self.valid_message()
            return data[: r.randrange(1, len(data))] if len(data) > 1 else data, False
        return self.mutate(self.valid_message()), True

    def startup(self) -> bytes:
        r = self.rng
        what = r.random()
        if what < 0.3:
            return self.mutate(startup_packet())
        if what < 0.45:
            return struct.pack("!i", r.choice([-5, 0, 7, 10_001, 1 << 30, 2**31 - 1])) + self.junk(
                16
            )
        if what < 0.6:
            return startup_packet(user=self.junk(r.randint(1, 12)))
        if what < 0.7:  # SSL request, then junk
            return struct.pack("!ii", 8, 80877103) + self.junk(r.randint(0, 30))
        if what < 0.8:
            return struct.pack("!iii", 16, 80877102, r.getrandbits(31)) + self.junk(4)
        if what < 0.9:
            body = struct.pack("!i", r.getrandbits(31)) + self.junk(r.randint(0, 30))
            return struct.pack("!i", len(body) + 4) + body
        return startup_packet()[: r.randint(1, 20)]

    # -- driving ---------------------------------------------------------------------------
    def record(self, messages: list[Any]) -> None:
        for kind, body in messages:
            if kind == b"E":
                fields = error_fields(body)
                code = fields.get("C", "")
                assert len(code) == 5 and fields.get("M"), fields
                assert code != "XX000", fields
                self.codes.append(code)

    def session(self) -> socket.socket:
        if self.sock is None:
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            s.sendall(startup_packet(user=b"fuzz"))
            got = read_messages(s, timeout=30)
            assert got and got[-1][0] == b"Z", got
            self.sock = s
        return self.sock

    def drop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def before_login(self) -> None:
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            data = self.startup()
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                return
            self.record(read_messages(s, until=b"\xff", timeout=5))

    def after_login(self) -> None:
        s = self.session()  # about a second to open: most cases keep it (broken framing ends it)
        if self.rng.random() < 0.8:
            data, intact = self.valid_message(), True
        else:
            data, intact = self.broken_message()
        try:
            if intact:
                s.sendall(data + message(b"S"))
                got = read_messages(s, timeout=10)
                self.record(got)
                if not got or got[-1][0] != b"Z":
                    self.drop()
            else:  # framing broken: the server refuses at once or waits; we go away
                s.sendall(data)
                s.settimeout(0.2)
                try:
                    self.record(read_messages(s, until=b"\xff", timeout=0.2))
                except OSError:
                    pass
                self.drop()
        except OSError:
            self.drop()


def canary(server: Server) -> None:
    with _connect(server) as con:
        assert con.execute("SELECT 42").fetchone() == (42,)
        assert con.execute("SELECT sum(n) FROM numbers").fetchone() == (SUM,)


@pytest.fixture
def fuzz_server(tmp_path: Path) -> Iterator[Server]:
    with lakesql.connect(str(tmp_path)) as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(1000)")
        con.execute("CREATE TABLE scratch (i INT)")
    srv = Server(
        str(tmp_path),
        "127.0.0.1",
        0,
        authentication_timeout=2,
        statement_timeout=2,
        idle_in_transaction_timeout=5,
    )
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    _stop(srv)


def run(server: Server, seed: int, seconds: float, canary_every: int = 50) -> Fuzzer:
    fuzzer = Fuzzer(server, seed)
    canary(server)  # warm up before the memory baseline
    before = rss_kib()
    started = time.monotonic()
    cases = 0
    while time.monotonic() - started < seconds:
        if fuzzer.rng.random() < 0.4:
            fuzzer.before_login()
        else:
            fuzzer.after_login()
        cases += 1
        if cases % canary_every == 0:
            canary(server)
    fuzzer.drop()
    fuzzer.cases = cases
    canary(server)
    grown = (rss_kib() - before) / 1024
    assert grown < RSS_BOUND_MIB, f"RSS grew by {grown:.0f} MiB over {cases} cases"
    assert cases > 50 and len(set(fuzzer.codes)) > 3, (cases, set(fuzzer.codes))
    deadline = time.monotonic() + 10
    while server.connections and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.connections == 0, "connections left open"
    return fuzzer


def test_protocol_fuzz_short(fuzz_server: Server) -> None:
    run(fuzz_server, seed=15, seconds=15)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_protocol_fuzz_long(fuzz_server: Server, seed: int) -> None:
    run(fuzz_server, seed=seed, seconds=120)


def test_closed_means_closed(fuzz_server: Server) -> None:
    """The helper the fuzzer relies on: a FATAL is followed by the server closing."""
    with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=10) as s:
        s.sendall(struct.pack("!i", 3))
        assert closed(s, 5)
