"""A Postgres wire-protocol (v3) server over a lakesql warehouse.

One thread and one lakesql connection per client. Simple and extended query protocols,
SCRAM-SHA-256 passwords, cancel requests, SQLSTATE error codes, and enough of ``pg_catalog`` for
psql and BI tools to browse the warehouse (:mod:`lakesql.server.catalog`).

``BEGIN``/``COMMIT``/``ROLLBACK`` are lakesql transactions (the Python API's): one Delta commit
per table at COMMIT, nothing at ROLLBACK or when the client goes away, SQLSTATE 40001 when another
writer committed to a table the transaction writes since it began. In the extended protocol, the
writes of one table between two Syncs form one implicit transaction, as in PostgreSQL (an
``executemany`` is one commit). The server's limits (authentication timeout, message sizes,
connections, statement and idle-in-transaction timeouts) are listed in docs/security.md.

Size: about 1,800 lines, over the house's 800: one connection's protocol state machine (startup,
messages, portals, transactions, limits) whose parts share the handler's state. The next split is
named: the limits and spill store, and the transaction bookkeeping, into modules of their own.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
import pickle
import re
import secrets
import select
import socket
import socketserver
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import lakesql
from lakesql import errors as E
from lakesql.dialect.classify import classify
from lakesql.server import catalog
from lakesql.server import types as T
from lakesql.server import users as server_users
from lakesql.server.scram import MECHANISM, AuthenticationFailed, Exchange, Verifier
from lakesql.server.sqlstate import PgError, sqlstate

log = logging.getLogger("lakesql.server")

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
SERVER_VERSION = "15.0"
FETCH_ROWS = 1000
SMALL_MESSAGE = 10_000  # PostgreSQL's PQ_SMALL_MESSAGE_LIMIT: startup, authentication, control
_LARGE_KINDS = frozenset(b"QPBdFp")  # the messages that may be larger (query text, parameters)
_READ_CHUNK = 1 << 20  # a long message is read in pieces: memory follows the bytes received


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
    """The first `n` (at most 4) words, upper-case: the dialect's one classification."""
    return list(classify(sql).words[:n])


def strip_leading_comments(sql: str) -> str:
    return classify(sql).body


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
    verb: str = "SELECT"  # the tag's word when it counts the rows sent ("FETCH")
    shared: bool = False  # its rows are pending on the session's cursor


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
    spooled: bool = False  # its rows were set aside (they no longer need the session's cursor)


class Spool:
    """Rows set aside on disk (past `memory` bytes in memory), read back once in order.

    A suspended portal's remaining rows go here when another statement must run on the session's
    cursor (which would discard the pending result): memory stays bounded, and `limit` bytes at
    most are written.
    """

    def __init__(self, memory: int, limit: int):
        self.file = tempfile.SpooledTemporaryFile(max_size=memory)
        self.limit = limit
        self.size = 0

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        data = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        if self.size + len(data) > self.limit:
            raise PgError(
                "54000",
                f"a suspended portal holds more than {self.limit} bytes of rows that another "
                "statement would discard",
                hint="fetch the rest of the portal or close it before running another statement",
            )
        self.file.write(data)
        self.size += len(data)

    def rows(self, rest: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """The spooled rows, then those of `rest`; the file is closed at the end."""
        self.file.seek(0)
        try:
            while self.file.tell() < self.size:
                yield from pickle.load(self.file)
        finally:
            self.file.close()
        yield from rest


_UNITS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(value: str, name: str) -> int:
    """A PostgreSQL time setting ('100ms', '5s', '1min', or an integer of milliseconds)."""
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|min|h|d)?\s*", value.strip().strip("'\"").lower())
    if m is None:
        raise PgError(
            "22023",
            f'invalid value for parameter "{name}": "{value}"',
            hint='Valid units for this parameter are "ms", "s", "min", "h", and "d".',
        )
    ms = int(m.group(1)) * _UNITS[m.group(2) or "ms"]
    if ms > 2**31 - 1:
        raise PgError("22023", f'{ms} ms is outside the valid range for parameter "{name}"')
    return ms


def format_duration_ms(ms: int) -> str:
    """As PostgreSQL shows a time setting: the largest unit that divides it."""
    if ms == 0:
        return "0"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


_TIME_SETTINGS = ("statement_timeout", "idle_in_transaction_session_timeout")
_NAME = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'
_DML = re.compile(
    rf"^(?:INSERT\s+(?:OR\s+(?:REPLACE|IGNORE)\s+)?INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+"
    rf"({_NAME}(?:\s*\.\s*{_NAME})*)",
    re.I | re.S,
)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)


def dml_target(sql: str) -> str | None:
    """The main-schema table an INSERT/UPDATE/DELETE/MERGE without RETURNING writes, else None.

    Such statements between two Syncs form one implicit transaction (one commit).
    """
    body = strip_leading_comments(sql)
    m = _DML.match(body)
    if m is None or _RETURNING.search(body):
        return None
    parts = [
        p[1:-1].replace('""', '"') if p.startswith('"') else p.lower()
        for p in re.findall(_NAME, m.group(1))
    ]
    if len(parts) == 2 and parts[0] == "main":
        parts = parts[1:]
    return parts[0] if len(parts) == 1 else None


def is_dml_without_rows(sql: str) -> bool:
    """An INSERT/UPDATE/DELETE/MERGE without RETURNING: it returns no rows (Describe: NoData)."""
    words = leading_words(sql, 1)
    return (
        bool(words)
        and words[0] in ("INSERT", "UPDATE", "DELETE", "MERGE")
        and not (_RETURNING.search(sql))
    )


def log_version(path: str) -> int | None:
    """The newest committed version of the Delta table at `path` (None: no table)."""
    try:
        names = os.listdir(os.path.join(path, "_delta_log"))
    except OSError:
        return None
    versions = [int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit()]
    return max(versions, default=None)


@dataclass
class Limits:
    """The server's limits (see docs/security.md, "Server limits")."""

    authentication_timeout: float = 60.0  # seconds from connect to authenticated
    max_startup_message: int = SMALL_MESSAGE  # bytes, any message before authentication
    max_message_size: int = 64 << 20  # bytes, a query / Bind / COPY message after it
    max_connections: int = 100  # authenticated sessions
    max_startup_connections: int = 1000  # connections still authenticating
    statement_timeout: float = 0.0  # seconds, 0 = none (per session: SET statement_timeout)
    idle_in_transaction_timeout: float = 600.0  # seconds idle inside BEGIN ... before closing
    client_check_interval: float = 0.25  # seconds between checks that a busy client is there
    auth_failure_delay: float = 0.25  # seconds after the first failed login of an address
    auth_failure_delay_max: float = 10.0  # the delay doubles per failure up to this
    portal_memory: int = 16 << 20  # bytes of set-aside portal rows kept in memory
    portal_spill_limit: int = 1 << 30  # bytes of set-aside portal rows at most (then 54000)


# -- the server ------------------------------------------------------------------------------------


class Server(socketserver.ThreadingTCPServer):
    """A Postgres-protocol server over one warehouse (``serve_forever()``; ``shutdown()``).

    Args:
        warehouse: the warehouse folder (default: lakesql's default).
        host, port: where to listen (port 0 picks a free one; see ``server_address``).
        password: required from every client (SCRAM-SHA-256); needed for non-loopback hosts.
        settings: lakesql session settings for every client connection.
        **limits: any field of :class:`Limits` (authentication_timeout, max_connections, ...).
    """

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        warehouse: str | None = None,
        host: str = "127.0.0.1",
        port: int = 5433,
        *,
        password: str | None = None,
        users: str | os.PathLike[str] | None = None,
        allowed_directories: Sequence[str] = (),
        settings: dict[str, Any] | None = None,
        **limits: Any,
    ):
        if password and users is not None:
            raise E.OptionError(
                "give a password or a users file, not both",
                hint="a users file gives every user a password and a role",
            )
        if not password and users is None and not is_loopback(host):
            raise E.OptionError(
                f"listening on {host!r} needs a password",
                hint="pass --password-file (or LAKESQL_PASSWORD), or listen on 127.0.0.1",
            )
        unknown = sorted(set(limits) - set(Limits.__dataclass_fields__))
        if unknown:
            raise E.OptionError(f"unknown server limit {unknown[0]!r}")
        self.limits = Limits(**limits)
        for name, value in vars(self.limits).items():
            if not isinstance(value, (int, float)) or value < 0:
                raise E.OptionError(f"server limit {name} must be a number >= 0, not {value!r}")
        self.warehouse = warehouse
        self.settings = dict(settings or {})
        self.verifier = Verifier.from_password(password) if password else None
        # users file: name -> User (role, verifier); without one every client is a writer
        self.users = server_users.load(users) if users is not None else None
        self.allowed_directories = [os.fspath(d) for d in allowed_directories]
        # a verifier for unknown users, so their failed exchange looks like a wrong password
        self._nobody = Verifier.from_password(os.urandom(16).hex())
        self._clients: dict[int, tuple[int, ClientHandler]] = {}
        self._clients_lock = threading.Lock()
        self._handlers: set[ClientHandler] = set()  # every open connection
        self._starting = 0  # connections not yet authenticated
        self._failures: dict[str, tuple[int, float]] = {}  # address -> (failed logins, last)
        self._closing = threading.Event()
        self._trimmed = 0.0  # when freed memory was last handed back to the system
        self._trim_wanted = False
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), ClientHandler)
        self._watchdog = threading.Thread(
            target=self._watch, name="lakesql-server-watchdog", daemon=True
        )
        self._watchdog.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def active(self) -> int:
        """Connections running a statement now."""
        with self._clients_lock:
            return sum(1 for h in self._handlers if h.busy)

    @property
    def connections(self) -> int:
        """Open connections (authenticated or not)."""
        with self._clients_lock:
            return len(self._handlers)

    # -- connections -------------------------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._clients_lock:
            refuse = self._starting >= self.limits.max_startup_connections
            if not refuse:
                self._starting += 1
        if refuse:  # no thread for it: answer at once and close
            log.warning(
                "lakesql server: refused %s: %d connections are authenticating",
                client_address[0],
                self._starting,
            )
            try:
                request.setblocking(False)
                request.send(
                    error_packet("53300", "sorry, too many clients already", severity="FATAL")
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def started(self, handler: ClientHandler) -> None:
        with self._clients_lock:
            self._handlers.add(handler)

    def authenticated(self, handler: ClientHandler) -> bool:
        """Count `handler` as a session; False when max_connections sessions are open (or its
        authentication timed out meanwhile)."""
        with self._clients_lock:
            if handler.expired:
                return False
            sessions = sum(1 for h in self._handlers if h.authenticated)
            if sessions >= self.limits.max_connections:
                return False
            handler.authenticated = True
            self._starting -= 1
        return True

    def finished(self, handler: ClientHandler) -> None:
        with self._clients_lock:
            self._handlers.discard(handler)
            if not handler.authenticated:
                self._starting -= 1
            if handler.authenticated:
                self._trim_wanted = True  # the watchdog trims (at most once a second)

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
            entry[1].interrupt("user")

    # -- failed logins -----------------------------------------------------------------------
    def login_failed(self, address: str) -> float:
        """Record a failed login from `address`; the delay (seconds) before answering it."""
        now = time.monotonic()
        with self._clients_lock:
            count, last = self._failures.get(address, (0, now))
            if now - last > 600:  # forgotten after ten quiet minutes
                count = 0
            count += 1
            self._failures[address] = (count, now)
            if len(self._failures) > 10_000:  # forget the oldest addresses
                for key, _ in sorted(self._failures.items(), key=lambda kv: kv[1][1])[:5000]:
                    del self._failures[key]
        limits = self.limits
        return min(limits.auth_failure_delay * 2 ** (count - 1), limits.auth_failure_delay_max)

    def login_succeeded(self, address: str) -> None:
        with self._clients_lock:
            self._failures.pop(address, None)

    # -- the watchdog: timeouts and clients that went away -----------------------------------
    def _watch(self) -> None:
        poller_checked = 0.0
        while not self._closing.wait(0.05):
            now = time.monotonic()
            with self._clients_lock:
                handlers = list(self._handlers)
            check = now - poller_checked >= self.limits.client_check_interval > 0
            busy: list[ClientHandler] = []
            for h in handlers:
                try:
                    deadline, reason = h.deadline, h.deadline_reason
                    if deadline is not None and now >= deadline and reason:
                        h.deadline = None
                        if reason == "authentication":
                            with self._clients_lock:  # not if it authenticated meanwhile
                                if not h.authenticated:
                                    h.expire(reason)
                        elif reason == "idle":
                            h.expire(reason)
                        else:
                            h.interrupt(reason)
                    if check and h.busy:
                        busy.append(h)
                except Exception:  # a connection closing meanwhile
                    log.debug("watchdog", exc_info=True)
            if check:
                poller_checked = now
                self._check_clients(busy)
            if self._trim_wanted and now - self._trimmed > 1.0:
                self._trim_wanted, self._trimmed = False, now
                release_memory()

    @staticmethod
    def _check_clients(busy: list[ClientHandler]) -> None:
        """Interrupt the statement of every busy client whose socket was closed."""
        if not busy:
            return
        poller = select.poll()
        fds: dict[int, ClientHandler] = {}
        gone_mask = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)
        for h in busy:
            try:
                fd = h.connection.fileno()
            except OSError:
                continue
            if fd >= 0:
                fds[fd] = h
                poller.register(fd, gone_mask)
        for fd, events in poller.poll(0):
            if events & gone_mask and fd in fds:
                fds[fd].interrupt("gone")

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("lakesql server: error serving %s", client_address)


_LIBC: Any = None


def release_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim; elsewhere nothing):
    a session's DuckDB connection and results are freed when it ends, but glibc keeps the pages
    of its per-thread arenas, so without this the server's RSS stays at its peak."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def error_packet(code: str, message: str, *, severity: str = "ERROR") -> bytes:
    fields = [(b"S", severity), (b"V", severity), (b"C", code), (b"M", message)]
    payload = b"".join(k + v.encode() + b"\x00" for k, v in fields) + b"\x00"
    return b"E" + struct.pack("!i", len(payload) + 4) + payload


class MessageReader:
    """Fields of one message body; a malformed body is SQLSTATE 08P01 (the session goes on)."""

    def __init__(self, body: bytes):
        self.body = body
        self.pos = 0

    def _bad(self) -> PgError:
        return PgError("08P01", "invalid message format")

    def cstr(self) -> str:
        end = self.body.find(b"\x00", self.pos)
        if end < 0:
            raise self._bad()
        try:
            text = self.body[self.pos : end].decode()
        except UnicodeDecodeError:
            raise PgError(
                "22021", 'invalid byte sequence for encoding "UTF8" in a message'
            ) from None
        self.pos = end + 1
        return text

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.body):
            raise self._bad()
        data = self.body[self.pos : self.pos + n]
        self.pos += n
        return data

    def int16(self) -> int:
        return int(struct.unpack("!h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack("!i", self.take(4))[0])

    def int16s(self, n: int) -> list[int]:
        return list(struct.unpack(f"!{n}h", self.take(2 * n))) if n > 0 else []

    def uint32s(self, n: int) -> list[int]:
        return list(struct.unpack(f"!{n}I", self.take(4 * n))) if n > 0 else []


class ClientHandler(socketserver.StreamRequestHandler):
    """One client connection."""

    server: Server
    wbufsize = 1 << 16

    # -- wire helpers ------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        if n <= _READ_CHUNK:
            data = self.rfile.read(n)
            if len(data) < n:
                raise ConnectionResetError("client closed the connection")
            return bytes(data)
        out = bytearray()  # a long message: memory follows the bytes that actually arrive
        while len(out) < n:
            piece = self.rfile.read(min(_READ_CHUNK, n - len(out)))
            if not piece:
                raise ConnectionResetError("client closed the connection")
            out += piece
        return bytes(out)

    def _read_message(self, limit: int | None = None) -> tuple[bytes, bytes]:
        header = self.rfile.read(5)
        if not header:
            raise ConnectionResetError("client closed the connection")
        if len(header) < 5:
            raise ConnectionResetError("truncated message")
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        if limit is None:
            limits = self.server.limits
            limit = limits.max_message_size if kind[0] in _LARGE_KINDS else SMALL_MESSAGE
            limit = max(limit, SMALL_MESSAGE)
        if length < 4 or length - 4 > limit:
            raise ProtocolError(
                f"invalid message length {length} for message type {kind!r} (at most {limit})"
            )
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
        self.user = ""
        self.role = "writer"  # set by _authenticate (users file: the user's role)
        self.address = str(self.client_address[0]) if self.client_address else ""
        limits = self.server.limits
        self.defaults: dict[str, str] = dict(DEFAULT_SETTINGS)
        self.defaults["statement_timeout"] = format_duration_ms(
            int(limits.statement_timeout * 1000)
        )
        self.defaults["idle_in_transaction_session_timeout"] = format_duration_ms(
            int(limits.idle_in_transaction_timeout * 1000)
        )
        self.gucs: dict[str, str] = dict(self.defaults)
        self.tx = "I"  # I idle, T in a transaction block, E failed block
        self.tx_versions: dict[str, int | None] = {}  # main tables' versions when BEGIN ran
        self.tx_checked: set[str] = set()  # tables whose copy was checked against them
        self.savepoints: dict[str, int] = {}  # name -> statements written before it
        self.implicit = False  # a lakesql transaction opened for the writes up to the next Sync
        self.implicit_target: str | None = None
        self.batch_failed = False  # an error since the last Sync
        self.pending: Portal | None = None  # a write waiting to know whether others follow
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.busy = False
        self.authenticated = False
        self.catalog: catalog.Catalog | None = None
        self.cursors: dict[str, tuple[Any, list[Column], Iterator[tuple[Any, ...]]]] = {}
        self.deadline: float | None = time.monotonic() + limits.authentication_timeout
        self.deadline_reason = "authentication" if limits.authentication_timeout > 0 else ""
        self.expired = ""  # why the watchdog closed the connection
        self.cancel_reason = ""  # why the running statement was interrupted
        self.roots: list[str] = []  # the warehouse's folder, as errors may spell it
        self.server.started(self)

    def handle(self) -> None:
        try:
            if not self._startup():
                return
            self._loop()
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError):
            self._expired_notice()
        except ProtocolError as e:
            log.warning("lakesql server: %s: protocol violation: %s", self.address, e)
            self._fatal(PgError("08P01", str(e), severity="FATAL"))
        except Exception as e:  # a bug: the client still gets an ErrorResponse
            log.exception("lakesql server: %s: unexpected error", self.address)
            self._fatal(PgError("XX000", f"internal error: {type(e).__name__}", severity="FATAL"))
        finally:
            self._close_session()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.finished(self)

    def _fatal(self, e: PgError) -> None:
        try:
            self._error(e)
            self._flush()
        except OSError:
            pass

    def _expired_notice(self) -> None:
        """The watchdog closed the reading side: tell the client why (PostgreSQL's FATALs)."""
        if self.expired == "authentication":
            log.info("lakesql server: %s: authentication timed out", self.address)
            self._fatal(
                PgError("08006", "canceling authentication due to timeout", severity="FATAL")
            )
        elif self.expired == "idle":
            log.info("lakesql server: %s: idle-in-transaction timeout", self.address)
            self._fatal(
                PgError(
                    "25P03",
                    "terminating connection due to idle-in-transaction timeout",
                    severity="FATAL",
                )
            )

    def _close_session(self) -> None:
        self.deadline = None
        if self.pid:
            self.server.unregister(self.pid)
        for portal in self.portals.values():
            portal.outcome = None
        self.portals.clear()
        for cur, _, _ in self.cursors.values():
            try:
                cur.close()
            except Exception:
                pass
        self.cursors.clear()
        if self.con is not None:  # an open transaction ends uncommitted
            try:
                self.con.close()
            except Exception:
                pass
            self.con = None

    def interrupt(self, reason: str) -> None:
        """Interrupt the running statement: `reason` is "user" (a CancelRequest), "timeout"
        (statement_timeout) or "gone" (the client closed its socket). From another thread."""
        if reason == "timeout" or (self.busy and self.con is not None):
            self.cancel_reason = reason  # checked between fetches too
        if self.busy and self.con is not None:
            if reason == "gone":
                log.info("lakesql server: %s: client went away, statement canceled", self.address)
            try:
                self.con.interrupt()
            except Exception:
                log.debug("cancel failed", exc_info=True)

    def cancel(self) -> None:
        self.interrupt("user")

    def expire(self, reason: str) -> None:
        """Close the connection for `reason` ("authentication", "idle"); from the watchdog."""
        self.expired = reason
        try:
            self.connection.shutdown(socket.SHUT_RD)  # its reader wakes up and says why
        except OSError:
            pass

    def _arm(self, seconds: float, reason: str) -> None:
        self.deadline = time.monotonic() + seconds if seconds > 0 else None
        self.deadline_reason = reason if seconds > 0 else ""

    def _statement_deadline(self) -> None:
        """Start statement_timeout's clock (once per statement; kept while it runs)."""
        if self.deadline_reason == "timeout" and self.deadline is not None:
            return
        self.cancel_reason = ""
        ms = parse_duration_ms(self.gucs.get("statement_timeout", "0"), "statement_timeout")
        self._arm(ms / 1000, "timeout")

    # -- startup and authentication ----------------------------------------------------------
    def _startup(self) -> bool:
        limit = self.server.limits.max_startup_message
        while True:
            length = struct.unpack("!i", self._read(4))[0]
            if length < 8 or length - 4 > max(limit, 8):
                raise ProtocolError(f"invalid length of startup packet ({length})")
            body = self._read(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.wfile.write(b"N")  # no TLS / GSS encryption: go on in plain text
                self._flush()
                continue
            if code == CANCEL_REQUEST:
                if len(body) != 12:
                    raise ProtocolError("invalid length of cancel request packet")
                pid, secret = struct.unpack("!ii", body[4:12])
                self.server.cancel(pid, secret)
                return False
            if code >> 16 != 3:
                raise ProtocolError(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
            break
        if not body.endswith(b"\x00"):
            raise ProtocolError("invalid startup packet layout: expected terminator as last byte")
        parts = body[4:-1].split(b"\x00")
        try:
            params = {
                parts[i].decode(): parts[i + 1].decode()
                for i in range(0, len(parts) - 1, 2)
                if parts[i]
            }
        except UnicodeDecodeError:
            raise ProtocolError("invalid startup packet: a name or value is not UTF-8") from None
        self.user = params.get("user", "")
        if not self.user:
            raise ProtocolError("no PostgreSQL user name specified in startup packet")
        if any(ord(c) < 32 for c in self.user):
            raise ProtocolError("invalid startup packet: the user name has control characters")
        self.database = params.get("database") or self.user
        if params.get("application_name"):
            self.gucs["application_name"] = params["application_name"]
        if not self._has_room():
            return False
        if not self._authenticate():
            return False
        if not self.server.authenticated(self):
            if self.expired:
                raise ConnectionResetError("authentication timed out")
            self._too_many()
            return False
        self.deadline = None
        try:
            self.con = lakesql.connect(
                self.server.warehouse,
                role=self.role,
                allowed_directories=self.server.allowed_directories,
                **self.server.settings,
            )
            self.cur = self.con.cursor()
        except Exception as e:
            self._fatal(PgError("58000", f"could not open the warehouse: {e}", severity="FATAL"))
            return False
        root = str(self.con.session.warehouse.root)
        self.roots = sorted({root, os.path.realpath(root)}, key=len, reverse=True)
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

    def _has_room(self) -> bool:
        server = self.server
        with server._clients_lock:
            sessions = sum(1 for h in server._handlers if h.authenticated)
        if sessions >= server.limits.max_connections:
            self._too_many()
            return False
        return True

    def _too_many(self) -> None:
        log.warning(
            "lakesql server: %s: refused, max_connections (%d) reached",
            self.address,
            self.server.limits.max_connections,
        )
        self._fatal(PgError("53300", "sorry, too many clients already", severity="FATAL"))

    def _authenticate(self) -> bool:
        users = self.server.users
        verifier: Verifier | None
        if users is not None:
            user = users.get(self.user)
            self.role = user.role if user is not None else "reader"
            verifier = user.verifier if user is not None else self.server._nobody
        else:
            self.role = "writer"  # the single password (or loopback without one)
            verifier = self.server.verifier
            if verifier is None:
                return True
        limit = self.server.limits.max_startup_message
        mechanism = MECHANISM.encode()
        self._send(b"R", struct.pack("!i", 10) + mechanism + b"\x00\x00")
        self._flush()
        try:
            kind, body = self._read_message(limit)
            if kind != b"p":
                raise AuthenticationFailed("expected a SASL initial response")
            name, _, rest = body.partition(b"\x00")
            if name != mechanism:
                raise AuthenticationFailed(f"unsupported SASL mechanism {name[:40]!r}")
            size = struct.unpack("!i", rest[:4])[0]
            exchange = Exchange(verifier)
            first = exchange.server_first(rest[4 : 4 + size].decode())
            self._send(b"R", struct.pack("!i", 11) + first.encode())
            self._flush()
            kind, body = self._read_message(limit)
            if kind != b"p":
                raise AuthenticationFailed("expected a SASL response")
            final = exchange.server_final(body.decode())
        except (AuthenticationFailed, UnicodeDecodeError, struct.error, ValueError) as e:
            log.info(
                "lakesql server: %s: authentication failed for %r: %s", self.address, self.user, e
            )
            delay = self.server.login_failed(self.address)
            if delay > 0:
                time.sleep(delay)
            self._fatal(
                PgError(
                    "28P01",
                    f'password authentication failed for user "{self.user}"',
                    severity="FATAL",
                )
            )
            return False
        self.server.login_succeeded(self.address)
        self._send(b"R", struct.pack("!i", 12) + final.encode())
        return True

    # -- message loop ------------------------------------------------------------------------
    def _ready(self) -> None:
        self.deadline, self.deadline_reason = None, ""
        if self.tx != "I":  # idle in a transaction block: idle_in_transaction_session_timeout
            ms = parse_duration_ms(
                self.gucs.get("idle_in_transaction_session_timeout", "0"),
                "idle_in_transaction_session_timeout",
            )
            self._arm(ms / 1000, "idle")
        self._send(b"Z", self.tx.encode())
        self._flush()

    def _loop(self) -> None:
        skipping = False  # after an error in the extended protocol: skip until Sync
        while True:
            kind, body = self._read_message()
            if self.deadline_reason == "idle":
                self.deadline = None
                self.deadline_reason = ""
            if kind == b"X":
                return
            if self.pending is not None and not self._resolve_pending(kind, body):
                skipping = True
            if kind == b"Q":
                skipping = False
                self._end_implicit()
                self.batch_failed = False  # a simple query is its own batch
                try:
                    text = MessageReader(body).cstr()
                except PgError as e:
                    self._error(e)
                else:
                    self._statement_deadline()
                    self._simple_query(text)
                self.batch_failed = False
                self._ready()
                continue
            if kind == b"S":
                skipping = False
                self._close_unnamed_portal()
                self._end_implicit()
                self.batch_failed = False
                self._ready()
                continue
            if kind == b"H":
                self._flush()
                continue
            if skipping:
                continue
            try:
                if kind in (b"P", b"B", b"D", b"E"):
                    self._statement_deadline()
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
                    raise ProtocolError(f"invalid frontend message type {kind[0]}")
            except PgError as e:
                self._failed(e)
                skipping = True
            except ProtocolError:
                raise
            except Exception as e:
                self._statement_failed(e)
                skipping = True
            finally:
                if kind == b"E" and self.deadline_reason == "timeout":
                    self.deadline = None
                    self.deadline_reason = ""

    # -- errors and notices --------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        """`text` without the warehouse's absolute folder (server paths stay on the server)."""
        for root in self.roots:
            text = text.replace("file://" + root + "/", "").replace(root + "/", "")
            text = text.replace("file://" + root, "<warehouse>").replace(root, "<warehouse>")
        return text

    def _error(self, e: BaseException) -> None:
        if self.cancel_reason and not isinstance(e, PgError) and sqlstate(e) == "57014":
            e = PgError("57014", _CANCELED.get(self.cancel_reason, _CANCELED["user"]))
        code = sqlstate(e)
        severity = e.severity if isinstance(e, PgError) else "ERROR"
        message = e.message if isinstance(e, (PgError, E.Error)) else f"{type(e).__name__}: {e}"
        fields = [
            (b"S", severity),
            (b"V", severity),
            (b"C", code),
            (b"M", self._scrub(str(message))),
        ]
        hint = getattr(e, "hint", None)
        if hint:
            fields.append((b"H", self._scrub(str(hint))))
        span = getattr(e, "span", None)
        if isinstance(e, E.Error) and span is not None:
            detail = f"line {span.line}, column {span.column}\n{span.render()}"
            fields.append((b"D", self._scrub(detail)))
        payload = b"".join(k + self._cstr(v) for k, v in fields) + b"\x00"
        self._send(b"E", payload)

    def _notice(self, text: str, severity: str = "WARNING", code: str = "01000") -> None:
        fields = [(b"S", severity), (b"V", severity), (b"C", code), (b"M", self._scrub(text))]
        self._send(b"N", b"".join(k + self._cstr(v) for k, v in fields) + b"\x00")

    def _failed(self, e: BaseException) -> None:
        """A statement failed: its transaction block (or implicit transaction) with it."""
        if self.tx == "T":
            self.tx = "E"
        self.batch_failed = True
        self._error(e)

    def _statement_failed(self, e: BaseException) -> None:
        if not isinstance(e, (E.Error, PgError)):
            log.exception("lakesql server: unexpected error")
        self._failed(e)

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
        for i, sql in enumerate(statements):
            try:
                if self.tx == "I" and not self.implicit:
                    target = dml_target(sql)
                    if (
                        target is not None
                        and i + 1 < len(statements)
                        and dml_target(statements[i + 1]) == target
                    ):
                        self._begin_implicit(target)  # writes of one table: one commit
                elif self.implicit and dml_target(sql) != self.implicit_target:
                    self._end_implicit()
                outcome = self._run(sql, [])
                if outcome.columns is not None:
                    self._row_description(outcome.columns, [0])
                    sent = self._data_rows(outcome, [0], 0, [])
                    outcome.tag = outcome.tag or f"{outcome.verb} {sent}"
                self._complete(outcome)
            except Exception as e:
                self._statement_failed(e)
                self._end_implicit()
                return
        self._end_implicit()

    def _complete(self, outcome: Outcome) -> None:
        for notice in outcome.notices:
            self._notice(notice)
        self._send(b"C", self._cstr(outcome.tag))

    # -- implicit transactions: the writes of one table up to a Sync are one commit -----------
    def _begin_implicit(self, target: str) -> None:
        self._lakesql("BEGIN")
        self.implicit, self.implicit_target = True, target

    def _end_implicit(self) -> None:
        """COMMIT the implicit transaction (ROLLBACK after an error); a failed COMMIT is the
        batch's error."""
        if not self.implicit:
            return
        self.implicit, self.implicit_target = False, None
        if self.batch_failed:
            self._lakesql_end("ROLLBACK")
            return
        try:
            self._lakesql("COMMIT")
        except Exception as e:
            self._lakesql_end("ROLLBACK")
            self._statement_failed(e)

    def _resolve_pending(self, kind: bytes, body: bytes) -> bool:
        """A write was deferred until the next message: run it inside an implicit transaction
        when that message brings another write of the same table, else on its own (committed
        at once). Terminate drops it uncommitted, as PostgreSQL rolls back at Terminate."""
        portal, self.pending = self.pending, None
        assert portal is not None
        if kind == b"X":
            return True
        self._statement_deadline()
        target = dml_target(portal.statement.sql)
        following: str | None = None
        try:
            if kind == b"P":
                reader = MessageReader(body)
                reader.cstr()
                following = dml_target(reader.cstr())
            elif kind == b"B":
                reader = MessageReader(body)
                reader.cstr()
                statement = self.prepared.get(reader.cstr())
                following = dml_target(statement.sql) if statement is not None else None
            elif kind == b"E":
                other = self.portals.get(MessageReader(body).cstr())
                following = dml_target(other.statement.sql) if other is not None else None
        except PgError:
            following = None
        try:
            if following is not None and following == target:
                self._begin_implicit(target)
                try:
                    self._execute_portal(portal, 0)
                except E.NotSupportedError as e:  # a write lakesql cannot run in a transaction
                    if "transaction" not in str(e).lower():
                        raise
                    self.implicit = False
                    self._lakesql_end("ROLLBACK")
                    portal.outcome, portal.done = None, False
                    self._execute_portal(portal, 0)
            else:
                self._execute_portal(portal, 0)
        except Exception as e:
            self._statement_failed(e)
            return False
        return True

    # -- extended protocol ----------------------------------------------------------------------
    def _parse(self, body: bytes) -> None:
        reader = MessageReader(body)
        name = reader.cstr()
        sql = reader.cstr()
        oids = reader.uint32s(reader.int16())
        from lakesql.script import split_statements

        if len(split_statements(sql)) > 1:
            raise PgError("42601", "cannot insert multiple commands into a prepared statement")
        if name and name in self.prepared:
            raise PgError("42P05", f'prepared statement "{name}" already exists')
        self.prepared[name] = Prepared(sql, oids)
        self._send(b"1")

    def _bind(self, body: bytes) -> None:
        reader = MessageReader(body)
        portal_name = reader.cstr()
        stmt_name = reader.cstr()
        statement = self.prepared.get(stmt_name)
        if statement is None:
            raise PgError("26000", f'prepared statement "{stmt_name}" does not exist')
        formats = reader.int16s(reader.int16())
        params: list[Any] = []
        for i in range(reader.int16()):
            size = reader.int32()
            if size < 0:
                params.append(None)
                continue
            raw = reader.take(size)
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            oid = statement.oids[i] if i < len(statement.oids) else 0
            try:
                if fmt == 1:
                    params.append(T.decode_binary(raw, oid))
                else:
                    params.append(T.decode_text(raw.decode(), oid))
            except (ValueError, ArithmeticError, struct.error, OverflowError) as e:
                raise PgError(
                    "22P02", f"invalid value for parameter ${i + 1} ({T.format_type(oid)}): {e}"
                ) from e
        result_formats = reader.int16s(reader.int16())
        if portal_name in self.portals and portal_name:
            raise PgError("42P03", f'portal "{portal_name}" already exists')
        self.portals[portal_name] = Portal(statement, params, result_formats)
        self._send(b"2")

    def _describe(self, body: bytes) -> None:
        reader = MessageReader(body)
        kind = reader.take(1)
        name = reader.cstr()
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
        if kind != b"P":
            raise PgError("08P01", f"invalid DESCRIBE message subtype {kind!r}")
        portal = self.portals.get(name)
        if portal is None and name in self.cursors:  # a DECLAREd cursor is a portal too
            self._row_description(self.cursors[name][1], [0])
            return
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        if portal.outcome is None and is_dml_without_rows(portal.statement.sql):
            self._send(b"n")  # runs at Execute (it may wait to join an implicit transaction)
            return
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
        reader = MessageReader(body)
        name = reader.cstr()
        limit = reader.int32()
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        if portal.outcome is None and not portal.done:
            target = dml_target(portal.statement.sql)
            if self.implicit and target != self.implicit_target:
                self._end_implicit()  # another table, or not a write: commit what came before
            if self.tx == "I" and not self.implicit and target is not None:
                self.pending = portal  # the next message says whether more writes follow
                return
        self._execute_portal(portal, limit)

    def _execute_portal(self, portal: Portal, limit: int) -> None:
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
            outcome.tag = outcome.tag or f"{outcome.verb} {portal.sent}"
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
        reader = MessageReader(body)
        kind = reader.take(1)
        name = reader.cstr()
        if kind == b"S":
            self.prepared.pop(name, None)
        elif kind == b"P":
            self.portals.pop(name, None)
        else:
            raise PgError("08P01", f"invalid CLOSE message subtype {kind!r}")
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
        self._set_aside_portals()
        text = self.catalog.rewrite(body) if self.catalog is not None else body
        self._check_canceled()
        self.busy = True
        try:
            self.cur.execute(text, params or None)
        finally:
            self.busy = False
        if self.tx != "I":
            self._check_snapshot()
        if self.cur.description is None:
            return Outcome(tag=self._tag(words, self.cur))
        columns = [Column(d[0], T.pg_type(d[1])) for d in self.cur.description]
        return Outcome(columns, self._fetch(self.cur), shared=True)

    def _check_canceled(self) -> None:
        if self.cancel_reason:
            raise PgError("57014", _CANCELED.get(self.cancel_reason, _CANCELED["user"]))

    def _fetch(self, cur: Any) -> Iterator[tuple[Any, ...]]:
        while True:
            self._check_canceled()
            self.busy = True
            try:
                batch = cur.fetchmany(FETCH_ROWS)
            finally:
                self.busy = False
            if not batch:
                return
            yield from batch

    def _set_aside_portals(self) -> None:
        """The session's cursor is about to run another statement, which would discard the
        result a suspended portal reads: its remaining rows go to a Spool (memory up to
        portal_memory bytes, then a temporary file; at most portal_spill_limit bytes)."""
        limits = self.server.limits
        for portal in self.portals.values():
            outcome = portal.outcome
            if outcome is None or outcome.rows is None or portal.done or portal.spooled:
                continue
            if not outcome.shared:
                continue
            spool = Spool(limits.portal_memory, limits.portal_spill_limit)
            rows = outcome.rows
            try:
                while batch := list(itertools.islice(rows, FETCH_ROWS)):
                    spool.add(batch)
            except BaseException:
                outcome.rows = spool.rows(rows)  # what was set aside, then the cursor's rest
                raise
            outcome.rows = spool.rows(iter(()))
            portal.spooled = True

    # -- transactions ------------------------------------------------------------------------
    def _lakesql(self, sql: str) -> None:
        """Run transaction control `sql` (BEGIN, COMMIT, ROLLBACK) on the session's cursor."""
        self._set_aside_portals()
        self.busy = True
        try:
            self.cur.execute(sql)
        finally:
            self.busy = False

    def _lakesql_end(self, sql: str) -> None:
        """End the lakesql transaction if one is open (errors are logged, not raised)."""
        try:
            if self.con.session.transaction(self.cur._duck) is not None:
                self.cur.execute(sql)
        except Exception:
            log.warning("lakesql server: %s failed", sql, exc_info=True)

    def _versions(self) -> dict[str, int | None]:
        """The newest version of every table of schema main (a transaction's snapshot)."""
        wh = self.con.session.warehouse
        return {name: log_version(wh.ref("main", name).path) for name in wh.tables("main")}

    def _check_snapshot(self) -> None:
        """40001 when a table this transaction block writes changed since BEGIN.

        lakesql copies a table when the transaction first writes it (and COMMIT conflicts with
        commits made after that copy); a commit made between BEGIN and that first write would
        otherwise go unnoticed, and a read-modify-write would lose it.
        """
        if self.implicit or self.tx == "I":
            return
        tx = self.con.session.transaction(self.cur._duck)
        if tx is None:
            return
        for ref, pending in tx.tables.items():
            if pending.snap is None or ref.name in self.tx_checked:
                continue
            self.tx_checked.add(ref.name)
            before = self.tx_versions.get(ref.name)
            if before != pending.snap.version:
                raise E.ConflictError(
                    f"could not serialize access due to concurrent update: table {ref.name!r} "
                    f"changed since this transaction began (version {before} then "
                    f"{pending.snap.version})",
                    hint="ROLLBACK and run the transaction again",
                )

    def _transaction(self, word: str, rest: str) -> Outcome:
        rest_words = rest.upper().split()
        if word in ("BEGIN", "START"):
            if self.tx != "I":
                return Outcome(tag="BEGIN", notices=["there is already a transaction in progress"])
            self._set_aside_portals()
            self.tx_versions = self._versions()
            self.tx_checked = set()
            self.savepoints = {}
            if self.implicit:  # a BEGIN among the batch's writes: they join the block
                self.implicit, self.implicit_target = False, None
            else:
                self._lakesql("BEGIN")
            self.tx = "T"
            return Outcome(tag="BEGIN")
        if word == "SAVEPOINT":
            if self.tx == "I":
                raise PgError("25P01", "SAVEPOINT can only be used in transaction blocks")
            self.savepoints[rest.strip().strip(";").strip().lower()] = self._written()
            return Outcome(tag="SAVEPOINT")
        if word == "RELEASE":
            return Outcome(tag="RELEASE")
        if word in ("ROLLBACK", "ABORT") and rest_words[:1] == ["TO"]:
            if self.tx == "I":
                raise PgError(
                    "25P01", "ROLLBACK TO SAVEPOINT can only be used in transaction blocks"
                )
            name = rest.strip().strip(";").split()[-1].lower()
            if name not in self.savepoints:
                self.tx = "E"
                raise PgError("3B001", f'savepoint "{name}" does not exist')
            if self._written() != self.savepoints[name]:
                self.tx = "E"
                raise PgError(
                    "0A000",
                    "ROLLBACK TO SAVEPOINT cannot undo statements that wrote since the savepoint: "
                    "a lakesql transaction rolls back whole",
                    hint="ROLLBACK the transaction",
                )
            self.tx = "T"
            return Outcome(tag="ROLLBACK")
        if self.tx == "I":
            tag = "COMMIT" if word in ("COMMIT", "END") else "ROLLBACK"
            return Outcome(tag=tag, notices=["there is no transaction in progress"])
        failed = self.tx == "E"
        self.tx = "I"
        for cur, _, _ in self.cursors.values():  # cursors end with the transaction
            cur.close()
        self.cursors.clear()
        if word in ("COMMIT", "END") and not failed:
            try:
                self._check_snapshot_all()
                self._lakesql("COMMIT")
            except BaseException:
                self._lakesql_end("ROLLBACK")
                raise
            return Outcome(tag="COMMIT")
        self._lakesql_end("ROLLBACK")
        return Outcome(tag="ROLLBACK")

    def _check_snapshot_all(self) -> None:
        saved, self.tx = self.tx, "T"
        try:
            self._check_snapshot()
        finally:
            self.tx = saved

    def _written(self) -> int:
        tx = self.con.session.transaction(self.cur._duck)
        return len(tx.statements) if tx is not None else 0

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
                    if value.upper() == "DEFAULT":
                        value = self.defaults.get(name, "")
                    elif name in _TIME_SETTINGS:
                        value = format_duration_ms(parse_duration_ms(value, name))
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
                    self.gucs.update(self.defaults)
                else:
                    self.gucs[key] = self.defaults[key]
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
        rows = entry[2] if count < 0 else itertools.islice(entry[2], count)
        if word.upper() == "MOVE":
            return Outcome(tag=f"MOVE {sum(1 for _ in rows)}")
        return Outcome(entry[1], rows, verb="FETCH")  # streamed: FETCH ALL holds no rows


_CANCELED = {
    "user": "canceling statement due to user request",
    "timeout": "canceling statement due to statement timeout",
    "gone": "canceling statement: the client closed the connection",
}
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
    **limits: Any,
) -> None:
    """Run a server until interrupted (`limits`: fields of :class:`Limits`)."""
    server = Server(warehouse, host, port, password=password, settings=settings, **limits)
    try:
        server.serve_forever()
    finally:
        server.server_close()
