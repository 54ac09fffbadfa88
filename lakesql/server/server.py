"""A Postgres wire-protocol (v3) server over a lakesql warehouse.

One thread and one lakesql connection per client. Simple and extended query protocols,
SCRAM-SHA-256 passwords, cancel requests, SQLSTATE error codes, and enough of ``pg_catalog`` for
psql and BI tools to browse the warehouse (:mod:`lakesql.server.catalog`).

lakesql commits every statement on its own: ``BEGIN``/``COMMIT``/``ROLLBACK`` are accepted so
that drivers which wrap statements in transactions work, but they change nothing (a ``ROLLBACK``
after writes says so in a WARNING notice).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import lakesql
from lakesql import errors as E
from lakesql.server import catalog
from lakesql.server import types as T
from lakesql.server.scram import MECHANISM, AuthenticationFailed, Exchange, Verifier
from lakesql.server.sqlstate import PgError, sqlstate

log = logging.getLogger("lakesql.server")

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
SERVER_VERSION = "15.0"
FETCH_ROWS = 1000


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class ProtocolError(Exception):
    """The client broke the protocol; the connection is closed."""


# -- statement classification --------------------------------------------------------------------

_COMMENTS = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*", re.S)
_TX = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE)\b(.*)$", re.I | re.S
)
_SET = re.compile(
    r"^SET\s+(?:SESSION\s+|LOCAL\s+)?(?:(TIME\s+ZONE)|([A-Za-z_][\w.]*)\s*(?:=|\bTO\b))\s*(.*?)\s*;?\s*$",
    re.I | re.S,
)
_SET_OTHER = re.compile(r"^SET\s+(SESSION\s+CHARACTERISTICS|TRANSACTION|NAMES)\b", re.I)
_SHOW = re.compile(r"^SHOW\s+(.+?)\s*;?\s*$", re.I | re.S)
_RESET = re.compile(r"^RESET\s+(ALL|[A-Za-z_][\w.]*)\s*;?\s*$", re.I)
_DECLARE = re.compile(
    r"^DECLARE\s+(\"[^\"]+\"|\w+)\s+(?:BINARY\s+)?(?:(?:A|IN)SENSITIVE\s+)?(?:(?:NO\s+)?SCROLL\s+)?"
    r"CURSOR\s+(?:(?:WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(.*)$",
    re.I | re.S,
)
_FETCH = re.compile(
    r"^(FETCH|MOVE)\s+(?:(NEXT|ALL|FORWARD\s+ALL|FORWARD\s+\d+|FORWARD|\d+)\s+)?(?:FROM\s+|IN\s+)?"
    r"(\"[^\"]+\"|\w+)\s*;?\s*$",
    re.I,
)
_CLOSE = re.compile(r"^CLOSE\s+(\"[^\"]+\"|\w+)\s*;?\s*$", re.I)
_DISCARD = re.compile(r"^(DISCARD\s+ALL|DEALLOCATE\b|UNLISTEN\b|LISTEN\b|CLOSE\s+ALL)", re.I)
_READS = {
    "SELECT",
    "WITH",
    "VALUES",
    "SHOW",
    "DESCRIBE",
    "TABLE",
    "FROM",
    "EXPLAIN",
    "SUMMARIZE",
    "PRAGMA",
}
_OBJECT_WORDS = {
    "OR",
    "REPLACE",
    "TEMP",
    "TEMPORARY",
    "UNIQUE",
    "IF",
    "NOT",
    "EXISTS",
    "PERSISTENT",
}

# Postgres settings clients set or ask for; SET on them is accepted and remembered.
DEFAULT_SETTINGS = {
    "server_version": SERVER_VERSION,
    "server_version_num": "150000",
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "datestyle": "ISO, MDY",
    "intervalstyle": "postgres",
    "timezone": "UTC",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "transaction_isolation": "serializable",
    "default_transaction_isolation": "serializable",
    "transaction_read_only": "off",
    "default_transaction_read_only": "off",
    "search_path": "main",
    "application_name": "",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "client_min_messages": "notice",
    "max_identifier_length": "128",
    "is_superuser": "off",
    "lc_collate": "C",
    "lc_ctype": "C",
    "statement_timeout": "0",
    "lock_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    "jit": "off",
    "row_security": "on",
    "synchronous_commit": "on",
    "backslash_quote": "safe_encoding",
}
_REPORTED = (
    "server_version",
    "server_encoding",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "integer_datetimes",
    "standard_conforming_strings",
    "is_superuser",
    "application_name",
)
_SHOW_ALIASES = {
    "transaction isolation level": "transaction_isolation",
    "time zone": "timezone",
    "session authorization": "session_authorization",
}


def leading_words(sql: str, n: int = 3) -> list[str]:
    body = _COMMENTS.sub("", sql, count=1)
    return [w.upper() for w in re.findall(r"[A-Za-z_]+", body[:200])[:n]]


def strip_leading_comments(sql: str) -> str:
    return _COMMENTS.sub("", sql, count=1)


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    type: T.PgType


@dataclass
class Outcome:
    """What one statement produced: columns and a row iterator, or only a command tag."""

    columns: list[Column] | None = None
    rows: Iterator[tuple[Any, ...]] | None = None
    tag: str = ""
    notices: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    sql: str
    oids: list[int]


@dataclass
class Portal:
    statement: Prepared
    params: list[Any]
    formats: list[int]
    outcome: Outcome | None = None
    buffered: list[tuple[Any, ...]] | None = None
    sent: int = 0
    done: bool = False


# -- the server ------------------------------------------------------------------------------------


class Server(socketserver.ThreadingTCPServer):
    """A Postgres-protocol server over one warehouse (``serve_forever()``; ``shutdown()``).

    Args:
        warehouse: the warehouse folder (default: lakesql's default).
        host, port: where to listen (port 0 picks a free one; see ``server_address``).
        password: required from every client (SCRAM-SHA-256); needed for non-loopback hosts.
        settings: lakesql session settings for every client connection.
    """

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        warehouse: str | None = None,
        host: str = "127.0.0.1",
        port: int = 5433,
        *,
        password: str | None = None,
        settings: dict[str, Any] | None = None,
    ):
        if not password and not is_loopback(host):
            raise E.OptionError(
                f"listening on {host!r} needs a password",
                hint="pass --password (or LAKESQL_SERVER_PASSWORD), or listen on 127.0.0.1",
            )
        self.warehouse = warehouse
        self.settings = dict(settings or {})
        self.verifier = Verifier.from_password(password) if password else None
        self._clients: dict[int, tuple[int, ClientHandler]] = {}
        self._clients_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), ClientHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def register(self, handler: ClientHandler) -> tuple[int, int]:
        with self._clients_lock:
            while True:
                pid = secrets.randbelow(2**31 - 1) + 1
                if pid not in self._clients:
                    break
            secret = secrets.randbelow(2**31 - 1) + 1
            self._clients[pid] = (secret, handler)
        return pid, secret

    def unregister(self, pid: int) -> None:
        with self._clients_lock:
            self._clients.pop(pid, None)

    def cancel(self, pid: int, secret: int) -> None:
        with self._clients_lock:
            entry = self._clients.get(pid)
        if entry is not None and secrets.compare_digest(
            struct.pack("!i", entry[0]), struct.pack("!i", secret)
        ):
            entry[1].cancel()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("lakesql server: error serving %s", client_address)


class ClientHandler(socketserver.StreamRequestHandler):
    """One client connection."""

    server: Server
    wbufsize = 1 << 16

    # -- wire helpers ------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) < n:
            raise ConnectionResetError("client closed the connection")
        return bytes(data)

    def _read_message(self) -> tuple[bytes, bytes]:
        header = self.rfile.read(5)
        if not header:
            raise ConnectionResetError("client closed the connection")
        if len(header) < 5:
            raise ConnectionResetError("truncated message")
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        if length < 4 or length > 1 << 30:
            raise ProtocolError(f"invalid message length {length}")
        return kind, self._read(length - 4)

    def _send(self, kind: bytes, payload: bytes = b"") -> None:
        self.wfile.write(kind + struct.pack("!i", len(payload) + 4) + payload)

    def _flush(self) -> None:
        self.wfile.flush()

    @staticmethod
    def _cstr(text: str) -> bytes:
        return text.encode() + b"\x00"

    # -- lifecycle ---------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.con: Any = None
        self.cur: Any = None
        self.pid = 0
        self.gucs: dict[str, str] = dict(DEFAULT_SETTINGS)
        self.tx = "I"  # I idle, T in a (pretend) transaction block, E failed block
        self.tx_wrote = False
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.running = threading.Lock()
        self.busy = False
        self.catalog: catalog.Catalog | None = None
        self.cursors: dict[str, tuple[Any, list[Column], Iterator[tuple[Any, ...]]]] = {}

    def handle(self) -> None:
        try:
            if not self._startup():
                return
            self._loop()
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            pass
        except ProtocolError as e:
            try:
                self._error(PgError("08P01", str(e), severity="FATAL"))
                self._flush()
            except OSError:
                pass
        finally:
            if self.pid:
                self.server.unregister(self.pid)
            for cur, _, _ in getattr(self, "cursors", {}).values():
                cur.close()
            if self.con is not None:
                try:
                    self.con.close()
                except Exception:
                    pass

    def cancel(self) -> None:
        """Interrupt the running statement (from the thread serving a CancelRequest)."""
        if self.busy and self.con is not None:
            try:
                self.con.interrupt()
            except Exception:
                log.debug("cancel failed", exc_info=True)

    # -- startup and authentication ----------------------------------------------------------
    def _startup(self) -> bool:
        while True:
            length = struct.unpack("!i", self._read(4))[0]
            if length < 8 or length > 10000:
                raise ProtocolError("invalid startup packet")
            body = self._read(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.wfile.write(b"N")  # no TLS / GSS encryption: go on in plain text
                self._flush()
                continue
            if code == CANCEL_REQUEST:
                pid, secret = struct.unpack("!ii", body[4:12])
                self.server.cancel(pid, secret)
                return False
            if code >> 16 != 3:
                raise ProtocolError(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
            break
        parts = body[4:].split(b"\x00")
        params = {
            parts[i].decode(): parts[i + 1].decode()
            for i in range(0, len(parts) - 1, 2)
            if parts[i]
        }
        self.user = params.get("user", "")
        if not self.user:
            raise ProtocolError("no user name in the startup packet")
        self.database = params.get("database") or self.user
        if params.get("application_name"):
            self.gucs["application_name"] = params["application_name"]
        if not self._authenticate():
            return False
        try:
            self.con = lakesql.connect(self.server.warehouse, **self.server.settings)
            self.cur = self.con.cursor()
        except Exception as e:
            self._error(PgError("58000", f"could not open the warehouse: {e}", severity="FATAL"))
            self._flush()
            return False
        self.catalog = catalog.Catalog(self.con, self.user, self.database, self.gucs)
        self.catalog.cursor_names = lambda: list(self.cursors)
        self._send(b"R", struct.pack("!i", 0))
        for name in _REPORTED:
            value = self.gucs.get(name.lower(), "")
            if name == "server_version":
                value = f"{SERVER_VERSION} (lakesql {lakesql.__version__})"
            self._send(b"S", self._cstr(name) + self._cstr(value))
        self._send(b"S", self._cstr("session_authorization") + self._cstr(self.user))
        self.pid, secret = self.server.register(self)
        self._send(b"K", struct.pack("!ii", self.pid, secret))
        self._ready()
        return True

    def _authenticate(self) -> bool:
        verifier = self.server.verifier
        if verifier is None:
            return True
        mechanism = MECHANISM.encode()
        self._send(b"R", struct.pack("!i", 10) + mechanism + b"\x00\x00")
        self._flush()
        try:
            kind, body = self._read_message()
            if kind != b"p":
                raise AuthenticationFailed("expected a SASL initial response")
            name, _, rest = body.partition(b"\x00")
            if name != mechanism:
                raise AuthenticationFailed(f"unsupported SASL mechanism {name.decode()!r}")
            size = struct.unpack("!i", rest[:4])[0]
            exchange = Exchange(verifier)
            first = exchange.server_first(rest[4 : 4 + size].decode())
            self._send(b"R", struct.pack("!i", 11) + first.encode())
            self._flush()
            kind, body = self._read_message()
            if kind != b"p":
                raise AuthenticationFailed("expected a SASL response")
            final = exchange.server_final(body.decode())
        except (AuthenticationFailed, UnicodeDecodeError, struct.error) as e:
            log.info("authentication failed for %r: %s", self.user, e)
            self._error(
                PgError(
                    "28P01",
                    f'password authentication failed for user "{self.user}"',
                    severity="FATAL",
                )
            )
            self._flush()
            return False
        self._send(b"R", struct.pack("!i", 12) + final.encode())
        return True

    # -- message loop ------------------------------------------------------------------------
    def _ready(self) -> None:
        self._send(b"Z", self.tx.encode())
        self._flush()

    def _loop(self) -> None:
        skipping = False  # after an error in the extended protocol: skip until Sync
        while True:
            kind, body = self._read_message()
            if kind == b"X":
                return
            if kind == b"Q":
                skipping = False
                self._simple_query(body[:-1].decode())
                self._ready()
                continue
            if kind == b"S":
                skipping = False
                self._close_unnamed_portal()
                self._ready()
                continue
            if kind == b"H":
                self._flush()
                continue
            if skipping:
                continue
            try:
                if kind == b"P":
                    self._parse(body)
                elif kind == b"B":
                    self._bind(body)
                elif kind == b"D":
                    self._describe(body)
                elif kind == b"E":
                    self._execute(body)
                elif kind == b"C":
                    self._close(body)
                elif kind in (b"d", b"c", b"f"):
                    continue  # COPY data outside COPY: ignored, as Postgres does
                elif kind == b"F":
                    raise PgError("0A000", "the function call protocol is not supported")
                else:
                    raise ProtocolError(f"unknown message type {kind!r}")
            except PgError as e:
                self._error(e)
                skipping = True
            except Exception as e:
                self._statement_failed(e)
                skipping = True

    # -- errors and notices --------------------------------------------------------------------
    def _error(self, e: BaseException) -> None:
        code = sqlstate(e)
        severity = e.severity if isinstance(e, PgError) else "ERROR"
        message = e.message if isinstance(e, (PgError, E.Error)) else f"{type(e).__name__}: {e}"
        fields = [
            (b"S", severity),
            (b"V", severity),
            (b"C", code),
            (b"M", message),
        ]
        hint = getattr(e, "hint", None)
        if hint:
            fields.append((b"H", str(hint)))
        span = getattr(e, "span", None)
        if isinstance(e, E.Error) and span is not None:
            fields.append((b"D", f"line {span.line}, column {span.column}\n{span.render()}"))
        payload = b"".join(k + self._cstr(v) for k, v in fields) + b"\x00"
        self._send(b"E", payload)

    def _notice(self, text: str, severity: str = "WARNING", code: str = "01000") -> None:
        fields = [(b"S", severity), (b"V", severity), (b"C", code), (b"M", text)]
        self._send(b"N", b"".join(k + self._cstr(v) for k, v in fields) + b"\x00")

    def _statement_failed(self, e: BaseException) -> None:
        if not isinstance(e, (E.Error, PgError)):
            log.exception("lakesql server: unexpected error")
        if self.tx == "T":
            self.tx = "E"
        self._error(e)

    # -- simple query ---------------------------------------------------------------------------
    def _simple_query(self, text: str) -> None:
        from lakesql.script import split_statements

        try:
            statements = [s.sql for s in split_statements(text)]
        except Exception as e:
            self._statement_failed(e)
            return
        if not statements:
            self._send(b"I")
            return
        for sql in statements:
            try:
                outcome = self._run(sql, [])
                if outcome.columns is not None:
                    self._row_description(outcome.columns, [0])
                    sent = self._data_rows(outcome, [0], 0, [])
                    outcome.tag = outcome.tag or f"SELECT {sent}"
                self._complete(outcome)
            except Exception as e:
                self._statement_failed(e)
                return

    def _complete(self, outcome: Outcome) -> None:
        for notice in outcome.notices:
            self._notice(notice)
        self._send(b"C", self._cstr(outcome.tag))

    # -- extended protocol ----------------------------------------------------------------------
    @staticmethod
    def _read_cstr(body: bytes, pos: int) -> tuple[str, int]:
        end = body.index(b"\x00", pos)
        return body[pos:end].decode(), end + 1

    def _parse(self, body: bytes) -> None:
        name, pos = self._read_cstr(body, 0)
        sql, pos = self._read_cstr(body, pos)
        (n,) = struct.unpack("!h", body[pos : pos + 2])
        oids = list(struct.unpack(f"!{n}I", body[pos + 2 : pos + 2 + 4 * n]))
        from lakesql.script import split_statements

        if len(split_statements(sql)) > 1:
            raise PgError("42601", "cannot insert multiple commands into a prepared statement")
        if name and name in self.prepared:
            raise PgError("42P05", f'prepared statement "{name}" already exists')
        self.prepared[name] = Prepared(sql, oids)
        self._send(b"1")

    def _bind(self, body: bytes) -> None:
        portal_name, pos = self._read_cstr(body, 0)
        stmt_name, pos = self._read_cstr(body, pos)
        statement = self.prepared.get(stmt_name)
        if statement is None:
            raise PgError("26000", f'prepared statement "{stmt_name}" does not exist')
        (nf,) = struct.unpack("!h", body[pos : pos + 2])
        pos += 2
        formats = list(struct.unpack(f"!{nf}h", body[pos : pos + 2 * nf]))
        pos += 2 * nf
        (np,) = struct.unpack("!h", body[pos : pos + 2])
        pos += 2
        params: list[Any] = []
        for i in range(np):
            (size,) = struct.unpack("!i", body[pos : pos + 4])
            pos += 4
            if size < 0:
                params.append(None)
                continue
            raw = body[pos : pos + size]
            pos += size
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            oid = statement.oids[i] if i < len(statement.oids) else 0
            try:
                if fmt == 1:
                    params.append(T.decode_binary(raw, oid))
                else:
                    params.append(T.decode_text(raw.decode(), oid))
            except (ValueError, ArithmeticError, struct.error) as e:
                raise PgError(
                    "22P02", f"invalid value for parameter ${i + 1} ({T.format_type(oid)}): {e}"
                ) from e
        (nr,) = struct.unpack("!h", body[pos : pos + 2])
        pos += 2
        result_formats = list(struct.unpack(f"!{nr}h", body[pos : pos + 2 * nr]))
        if portal_name in self.portals and portal_name:
            raise PgError("42P03", f'portal "{portal_name}" already exists')
        self.portals[portal_name] = Portal(statement, params, result_formats)
        self._send(b"2")

    def _describe(self, body: bytes) -> None:
        kind, name = body[:1], body[1:-1].decode()
        if kind == b"S":
            statement = self.prepared.get(name)
            if statement is None:
                raise PgError("26000", f'prepared statement "{name}" does not exist')
            count = _parameter_count(statement.sql)
            oids = [
                statement.oids[i] if i < len(statement.oids) and statement.oids[i] else T.TEXT
                for i in range(max(count, len(statement.oids)))
            ]
            self._send(b"t", struct.pack(f"!h{len(oids)}I", len(oids), *oids))
            columns = self._describe_statement(statement)
            if columns is None:
                self._send(b"n")
            else:
                self._row_description(columns, [0])
            return
        portal = self.portals.get(name)
        if portal is None and name in self.cursors:  # a DECLAREd cursor is a portal too
            self._row_description(self.cursors[name][1], [0])
            return
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        if portal.outcome is None:
            portal.outcome = self._run(portal.statement.sql, portal.params)
        if portal.outcome.columns is None:
            self._send(b"n")
        else:
            self._row_description(portal.outcome.columns, portal.formats)

    def _describe_statement(self, statement: Prepared) -> list[Column] | None:
        """Result columns of a prepared statement without running it (reads only)."""
        words = leading_words(statement.sql, 1)
        if not words or words[0] not in ("SELECT", "WITH", "VALUES", "TABLE", "FROM"):
            return None
        count = _parameter_count(statement.sql)
        body = strip_leading_comments(statement.sql).rstrip().rstrip(";")
        try:
            outcome = self._run(
                f"SELECT * FROM ({body}) AS __lakesql_describe LIMIT 0", [None] * count
            )
        except Exception:
            return None
        if outcome.rows is not None:
            for _ in outcome.rows:
                pass
        return outcome.columns

    def _execute(self, body: bytes) -> None:
        name, pos = self._read_cstr(body, 0)
        (limit,) = struct.unpack("!i", body[pos : pos + 4])
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        if portal.done:
            self._send(b"C", self._cstr(portal.outcome.tag if portal.outcome else ""))
            return
        try:
            if portal.outcome is None:
                portal.outcome = self._run(portal.statement.sql, portal.params)
            outcome = portal.outcome
            if outcome.columns is None:
                portal.done = True
                self._complete(outcome)
                return
            buffered = portal.buffered if portal.buffered is not None else []
            sent = self._data_rows(outcome, portal.formats, limit, buffered, portal)
            portal.sent += sent
            if limit > 0 and sent == limit and not self._exhausted(portal):
                self._send(b"s")
                return
            portal.done = True
            outcome.tag = outcome.tag or f"SELECT {portal.sent}"
            self._complete(outcome)
        except Exception:
            portal.done = True
            raise

    def _exhausted(self, portal: Portal) -> bool:
        """True when `portal` has no rows left (peeks one row into its buffer)."""
        if portal.buffered:
            return False
        outcome = portal.outcome
        if outcome is None or outcome.rows is None:
            return True
        try:
            row = next(outcome.rows)
        except StopIteration:
            return True
        portal.buffered = [row]
        return False

    def _close(self, body: bytes) -> None:
        kind, name = body[:1], body[1:-1].decode()
        if kind == b"S":
            self.prepared.pop(name, None)
        else:
            self.portals.pop(name, None)
        self._send(b"3")

    def _close_unnamed_portal(self) -> None:
        self.portals.pop("", None)
        if self.tx == "I":
            self.portals.clear()

    # -- rows --------------------------------------------------------------------------------
    def _row_description(self, columns: list[Column], formats: list[int]) -> None:
        out = [struct.pack("!h", len(columns))]
        for i, col in enumerate(columns):
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            if fmt == 1 and not T.binary_supported(col.type.oid):
                raise PgError(
                    "0A000",
                    f"binary format is not supported for column {col.name!r} "
                    f"({T.format_type(col.type.oid)})",
                    hint="request text format for this column",
                )
            out.append(
                self._cstr(col.name)
                + struct.pack("!IhIhih", 0, 0, col.type.oid, col.type.size, col.type.typmod, fmt)
            )
        self._send(b"T", b"".join(out))

    def _data_rows(
        self,
        outcome: Outcome,
        formats: list[int],
        limit: int,
        buffered: list[tuple[Any, ...]],
        portal: Portal | None = None,
    ) -> int:
        assert outcome.columns is not None
        columns = outcome.columns
        fmts = [
            (formats[i] if len(formats) > 1 else (formats[0] if formats else 0))
            for i in range(len(columns))
        ]
        oids = [c.type.oid for c in columns]
        header = struct.pack("!h", len(columns))
        sent = 0
        rows: Iterator[tuple[Any, ...]] = iter(buffered)
        if portal is not None:
            portal.buffered = None
        sources = [rows, outcome.rows or iter(())]
        for source in sources:
            for row in source:
                parts = [header]
                for value, fmt, oid in zip(row, fmts, oids, strict=True):
                    if value is None:
                        parts.append(b"\xff\xff\xff\xff")
                        continue
                    data = (
                        T.encode_binary(value, oid) if fmt == 1 else T.encode_text(value).encode()
                    )
                    parts.append(struct.pack("!i", len(data)) + data)
                self._send(b"D", b"".join(parts))
                sent += 1
                if limit > 0 and sent >= limit:
                    return sent
        return sent

    # -- running one statement ---------------------------------------------------------------
    def _run(self, sql: str, params: list[Any]) -> Outcome:
        words = leading_words(sql, 4)
        body = strip_leading_comments(sql).strip()
        if self.tx == "E" and not (words and words[0] in ("ROLLBACK", "ABORT", "COMMIT", "END")):
            raise PgError(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )
        special = self._special(words, body, params)
        if special is not None:
            return special
        self._materialize_portals()
        text = self.catalog.rewrite(body) if self.catalog is not None else body
        self.busy = True
        try:
            self.cur.execute(text, params or None)
        finally:
            self.busy = False
        if self.tx == "T" and (not words or words[0] not in _READS):
            self.tx_wrote = True
        if self.cur.description is None:
            return Outcome(tag=self._tag(words, self.cur))
        columns = [Column(d[0], T.pg_type(d[1])) for d in self.cur.description]
        return Outcome(columns, self._fetch(self.cur))

    def _fetch(self, cur: Any) -> Iterator[tuple[Any, ...]]:
        while True:
            self.busy = True
            try:
                batch = cur.fetchmany(FETCH_ROWS)
            finally:
                self.busy = False
            if not batch:
                return
            yield from batch

    def _materialize_portals(self) -> None:
        """Read the rest of any suspended portal: the cursor is about to run something else."""
        for portal in self.portals.values():
            outcome = portal.outcome
            if outcome is not None and outcome.rows is not None and not portal.done:
                rest = list(outcome.rows)
                portal.buffered = (portal.buffered or []) + rest
                outcome.rows = iter(())

    @staticmethod
    def _tag(words: list[str], cur: Any) -> str:
        message = (cur.message or "").replace(" (exists)", "")
        count = max(cur.rowcount, 0)
        m = re.match(r"^(INSERT OVERWRITE|INSERT)\s+(\d+)$", message)
        if m:
            return f"INSERT 0 {m.group(2)}"
        if re.match(r"^(UPDATE|DELETE|MERGE|COPY)\s+\d+$", message):
            return message
        if message:
            return message.replace("CREATE OR REPLACE", "CREATE")
        first = words[0] if words else ""
        if first == "INSERT":
            return f"INSERT 0 {count}"
        if first in ("UPDATE", "DELETE", "MERGE", "COPY"):
            return f"{first} {count}"
        if first in ("CREATE", "DROP", "ALTER"):
            rest = [w for w in words[1:] if w not in _OBJECT_WORDS]
            return f"{first} {rest[0]}" if rest else first
        return first

    def _special(self, words: list[str], body: str, params: list[Any]) -> Outcome | None:
        """Statements the server answers itself: transaction control and Postgres settings."""
        if not words:
            return None
        m = _TX.match(body)
        if m:
            return self._transaction(m.group(1).upper().split()[0], m.group(2))
        if words[0] == "SET":
            m = _SET.match(body)
            if m:
                name = "timezone" if m.group(1) else m.group(2).lower()
                if name in DEFAULT_SETTINGS or name in self.gucs:
                    value = m.group(3).strip().strip("'\"")
                    self.gucs[name] = value
                    if self.catalog is not None:
                        self.catalog.settings_changed()
                    return Outcome(tag="SET")
            if _SET_OTHER.match(body):
                return Outcome(tag="SET")
        if words[0] == "SHOW":
            m = _SHOW.match(body)
            if m:
                raw = " ".join(m.group(1).lower().split())
                name = _SHOW_ALIASES.get(raw, raw)
                if name == "all":
                    rows = sorted((k, v, "") for k, v in self.gucs.items())
                    cols = [Column(c, T.PgType(T.TEXT)) for c in ("name", "setting", "description")]
                    return Outcome(cols, iter(rows))
                if name == "session_authorization":
                    return Outcome([Column(name, T.PgType(T.TEXT))], iter([(self.user,)]))
                if name in self.gucs:
                    return Outcome([Column(name, T.PgType(T.TEXT))], iter([(self.gucs[name],)]))
        if words[0] == "RESET":
            m = _RESET.match(body)
            if m and (m.group(1).lower() in DEFAULT_SETTINGS or m.group(1).upper() == "ALL"):
                key = m.group(1).lower()
                if key == "all":
                    self.gucs.update(DEFAULT_SETTINGS)
                else:
                    self.gucs[key] = DEFAULT_SETTINGS[key]
                return Outcome(tag="RESET")
        if words[0] in ("DECLARE", "FETCH", "MOVE", "CLOSE"):
            cursor = self._cursor_statement(words[0], body, params)
            if cursor is not None:
                return cursor
        if _DISCARD.match(body):
            return Outcome(tag=" ".join(words[:2]) if words[0] == "DISCARD" else words[0])
        return None

    def _cursor_statement(self, word: str, body: str, params: list[Any]) -> Outcome | None:
        """DECLARE ... CURSOR FOR, FETCH, MOVE and CLOSE (cursors read on their own cursor)."""
        if word == "DECLARE":
            m = _DECLARE.match(body)
            if m is None:
                return None
            name = m.group(1).strip('"')
            if name in self.cursors:
                raise PgError("42P03", f'cursor "{name}" already exists')
            cur = self.con.cursor()
            text = self.catalog.rewrite(m.group(2)) if self.catalog is not None else m.group(2)
            self.busy = True
            try:
                cur.execute(text, params or None)
            finally:
                self.busy = False
            if cur.description is None:
                cur.close()
                raise PgError("42P11", "DECLARE CURSOR needs a query that returns rows")
            columns = [Column(d[0], T.pg_type(d[1])) for d in cur.description]
            self.cursors[name] = (cur, columns, self._fetch(cur))
            return Outcome(tag="DECLARE CURSOR")
        if word == "CLOSE":
            m = _CLOSE.match(body)
            if m is None:
                return None
            name = m.group(1).strip('"')
            names = list(self.cursors) if name.upper() == "ALL" else [name]
            for n in names:
                entry = self.cursors.pop(n, None)
                if entry is None:
                    raise PgError("34000", f'cursor "{n}" does not exist')
                entry[0].close()
            return Outcome(tag="CLOSE CURSOR")
        m = _FETCH.match(body)
        if m is None:
            return None
        name = m.group(3).strip('"')
        entry = self.cursors.get(name)
        if entry is None:
            raise PgError("34000", f'cursor "{name}" does not exist')
        how = " ".join((m.group(2) or "NEXT").upper().split())
        count = (
            -1
            if how.endswith("ALL")
            else (1 if how in ("NEXT", "FORWARD") else int(how.split()[-1]))
        )
        rows = (
            list(entry[2])
            if count < 0
            else [r for _, r in zip(range(count), entry[2], strict=False)]
        )
        if word.upper() == "MOVE":
            return Outcome(tag=f"MOVE {len(rows)}")
        return Outcome(entry[1], iter(rows), tag=f"FETCH {len(rows)}")

    def _transaction(self, word: str, rest: str) -> Outcome:
        rest_words = rest.upper().split()
        if word in ("BEGIN", "START"):
            if self.tx == "I":
                self.tx, self.tx_wrote = "T", False
            return Outcome(tag="BEGIN")
        if word in ("SAVEPOINT",):
            return Outcome(tag="SAVEPOINT")
        if word == "RELEASE":
            return Outcome(tag="RELEASE")
        if word in ("ROLLBACK", "ABORT") and rest_words[:1] == ["TO"]:
            notices = []
            if self.tx_wrote:
                notices.append(_NO_UNDO)
            if self.tx == "E":
                self.tx = "T"
            return Outcome(tag="ROLLBACK", notices=notices)
        notices = []
        if word in ("ROLLBACK", "ABORT") and self.tx_wrote:
            notices.append(_NO_UNDO)
        failed = self.tx == "E"
        if self.tx == "I" and word in ("COMMIT", "END", "ROLLBACK", "ABORT"):
            notices.append("there is no transaction in progress")
        self.tx, self.tx_wrote = "I", False
        for cur, _, _ in self.cursors.values():  # cursors end with the transaction
            cur.close()
        self.cursors.clear()
        if word in ("COMMIT", "END") and not failed:
            return Outcome(tag="COMMIT", notices=notices)
        return Outcome(tag="ROLLBACK", notices=notices)


_NO_UNDO = (
    "lakesql commits every statement when it runs: ROLLBACK did not undo the statements "
    "of this transaction block"
)
_PARAM = re.compile(r"\$(\d+)")


def _parameter_count(sql: str) -> int:
    """The highest $n placeholder outside string literals, quoted names and comments."""
    stripped = re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", "", sql, flags=re.S)
    return max((int(n) for n in _PARAM.findall(stripped)), default=0)


def serve(
    warehouse: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5433,
    *,
    password: str | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Run a server until interrupted."""
    server = Server(warehouse, host, port, password=password, settings=settings)
    try:
        server.serve_forever()
    finally:
        server.server_close()
