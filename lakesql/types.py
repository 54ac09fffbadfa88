"""PEP 249 type objects and constructors."""

from __future__ import annotations

import datetime as _dt
import time as _time

Date = _dt.date
Time = _dt.time
Timestamp = _dt.datetime


def DateFromTicks(ticks: float) -> _dt.date:
    return Date(*_time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> _dt.time:
    return Time(*_time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> _dt.datetime:
    return Timestamp(*_time.localtime(ticks)[:6])


def Binary(value: bytes | bytearray | memoryview | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class DBAPITypeObject:
    """Compares equal to every DuckDB type name of its family (the cursor's type codes)."""

    def __init__(self, name: str, *prefixes: str):
        self.name = name
        self.prefixes = tuple(p.upper() for p in prefixes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other is self
        text = str(other).upper()
        return any(text == p or text.startswith(p + "(") for p in self.prefixes)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"lakesql.{self.name}"


STRING = DBAPITypeObject("STRING", "VARCHAR", "UUID", "ENUM")
BINARY = DBAPITypeObject("BINARY", "BLOB", "BIT")
NUMBER = DBAPITypeObject(
    "NUMBER",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
)
DATETIME = DBAPITypeObject(
    "DATETIME",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "INTERVAL",
    "TIME WITH TIME ZONE",
)
ROWID = DBAPITypeObject("ROWID", "ROWID")
