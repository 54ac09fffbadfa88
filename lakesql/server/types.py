"""Postgres type OIDs for DuckDB types, and the text/binary encodings of values both ways."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# name, oid, array oid, typlen, category, format_type() text
_PG_TYPES: list[tuple[str, int, int, int, str, str]] = [
    ("bool", 16, 1000, 1, "B", "boolean"),
    ("bytea", 17, 1001, -1, "U", "bytea"),
    ("char", 18, 1002, 1, "Z", '"char"'),
    ("name", 19, 1003, 64, "S", "name"),
    ("int8", 20, 1016, 8, "N", "bigint"),
    ("int2", 21, 1005, 2, "N", "smallint"),
    ("int4", 23, 1007, 4, "N", "integer"),
    ("regproc", 24, 1008, 4, "N", "regproc"),
    ("text", 25, 1009, -1, "S", "text"),
    ("oid", 26, 1028, 4, "N", "oid"),
    ("json", 114, 199, -1, "U", "json"),
    ("float4", 700, 1021, 4, "N", "real"),
    ("float8", 701, 1022, 8, "N", "double precision"),
    ("unknown", 705, 0, -2, "X", "unknown"),
    ("bpchar", 1042, 1014, -1, "S", "character"),
    ("varchar", 1043, 1015, -1, "S", "character varying"),
    ("date", 1082, 1182, 4, "D", "date"),
    ("time", 1083, 1183, 8, "D", "time without time zone"),
    ("timestamp", 1114, 1115, 8, "D", "timestamp without time zone"),
    ("timestamptz", 1184, 1185, 8, "D", "timestamp with time zone"),
    ("interval", 1186, 1187, 16, "T", "interval"),
    ("timetz", 1266, 1270, 12, "D", "time with time zone"),
    ("bit", 1560, 1561, -1, "V", "bit"),
    ("varbit", 1562, 1563, -1, "V", "bit varying"),
    ("numeric", 1700, 1231, -1, "N", "numeric"),
    ("regclass", 2205, 2210, 4, "N", "regclass"),
    ("regtype", 2206, 2211, 4, "N", "regtype"),
    ("uuid", 2950, 2951, 16, "U", "uuid"),
    ("jsonb", 3802, 3807, -1, "U", "jsonb"),
]
PG_TYPES = _PG_TYPES
OID_NAME = {oid: name for name, oid, *_ in _PG_TYPES}
ARRAY_OF = {oid: arr for _, oid, arr, *_ in _PG_TYPES}
ELEMENT_OF = {arr: oid for oid, arr in ARRAY_OF.items() if arr}

BOOL, BYTEA, INT8, INT2, INT4, TEXT, OID, JSON = 16, 17, 20, 21, 23, 25, 26, 114
FLOAT4, FLOAT8, UNKNOWN, VARCHAR, DATE, TIME = 700, 701, 705, 1043, 1082, 1083
TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID, JSONB = 1114, 1184, 1186, 1700, 2950, 3802

_SCALARS = {
    "BOOLEAN": BOOL,
    "TINYINT": INT2,
    "SMALLINT": INT2,
    "INTEGER": INT4,
    "BIGINT": INT8,
    "HUGEINT": NUMERIC,
    "UHUGEINT": NUMERIC,
    "UTINYINT": INT2,
    "USMALLINT": INT4,
    "UINTEGER": INT8,
    "UBIGINT": NUMERIC,
    "FLOAT": FLOAT4,
    "DOUBLE": FLOAT8,
    "VARCHAR": TEXT,
    "BLOB": BYTEA,
    "DATE": DATE,
    "TIME": TIME,
    "TIME WITH TIME ZONE": 1266,
    "TIMESTAMP": TIMESTAMP,
    "TIMESTAMP_S": TIMESTAMP,
    "TIMESTAMP_MS": TIMESTAMP,
    "TIMESTAMP_NS": TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ,
    "INTERVAL": INTERVAL,
    "UUID": UUID,
    "JSON": JSON,
    "BIT": 1562,
    "NULL": TEXT,
    '"NULL"': TEXT,
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


@dataclass(frozen=True)
class PgType:
    """The Postgres face of a DuckDB column type."""

    oid: int
    typmod: int = -1

    @property
    def size(self) -> int:
        return next((t[3] for t in _PG_TYPES if t[1] == self.oid), -1)


def pg_type(duck: Any) -> PgType:
    """The Postgres type of a DuckDB type (its name as DuckDB prints it)."""
    name = str(duck).upper()
    if name in _SCALARS:
        return PgType(_SCALARS[name])
    m = _DECIMAL.match(name)
    if m:
        return PgType(NUMERIC, ((int(m.group(1)) << 16) | int(m.group(2))) + 4)
    if name.endswith("]"):
        inner = name[: name.rfind("[")]
        element = pg_type(inner)
        if element.oid in ARRAY_OF and ARRAY_OF[element.oid] and not inner.endswith("]"):
            return PgType(ARRAY_OF[element.oid])
        return PgType(TEXT)
    return PgType(TEXT)  # STRUCT, MAP, UNION, ENUM, nested lists: rendered as text


def format_type(oid: int, typmod: int = -1) -> str:
    """Postgres' format_type(oid, typmod)."""
    if oid == NUMERIC and typmod > 4:
        return f"numeric({(typmod - 4) >> 16},{(typmod - 4) & 0xFFFF})"
    if oid in ELEMENT_OF:
        return format_type(ELEMENT_OF[oid]) + "[]"
    return next((t[5] for t in _PG_TYPES if t[1] == oid), "text")


# -- text encoding of results ---------------------------------------------------------------------


def _float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def _interval(v: dt.timedelta) -> str:
    days, rest = v.days, v.seconds
    sign = ""
    if days < 0 and rest:  # timedelta normalises to negative days, positive seconds
        days += 1
        rest = 86400 - rest
        sign = "-"
    h, rem = divmod(rest, 3600)
    m, s = divmod(rem, 60)
    time = f"{sign}{h:02d}:{m:02d}:{s:02d}"
    if v.microseconds:
        us = v.microseconds if not sign else 1_000_000 - v.microseconds
        time += f".{us:06d}"
    return f"{days} days {time}" if days else time


def _array_item(v: Any) -> str:
    if v is None:
        return "NULL"
    text = encode_text(v)
    if text == "" or re.search(r'[\s{},"\\]', text) or text.upper() == "NULL":
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def encode_text(v: Any) -> str:
    """Postgres text output of a Python value DuckDB returned."""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, decimal.Decimal):
        return format(v, "f") if v.is_finite() else ("NaN" if v.is_nan() else str(v))
    if isinstance(v, dt.datetime):
        text = v.isoformat(sep=" ")
        return text[:-3] if v.tzinfo is not None and text.endswith(":00") else text
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return _interval(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "{" + ",".join(_array_item(x) for x in v) + "}"
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


# -- binary encoding of results -------------------------------------------------------------------

_PG_EPOCH = dt.datetime(2000, 1, 1)
_PG_EPOCH_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_DATE = dt.date(2000, 1, 1)


def _numeric_binary(v: Any) -> bytes:
    d = decimal.Decimal(v)
    if d.is_nan():
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    dscale = max(0, -exp)
    text = "".join(map(str, digits))
    # split the integer and fraction parts into base-10000 groups
    if exp >= 0:
        int_part, frac_part = text + "0" * exp, ""
    else:
        int_part, frac_part = text[:exp] or "0", text[exp:].rjust(-exp, "0")
    int_part = int_part.lstrip("0")
    int_part = int_part.rjust((len(int_part) + 3) // 4 * 4, "0")
    frac_part = frac_part.ljust((len(frac_part) + 3) // 4 * 4, "0")
    groups = [int(int_part[i : i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i : i + 4]) for i in range(0, len(frac_part), 4)]
    while groups and groups[-1] == 0:
        groups.pop()
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    if not groups:
        weight = 0
    return struct.pack(
        f"!hhHh{len(groups)}H", len(groups), weight, 0x4000 if sign else 0, dscale, *groups
    )


def _micros(td: dt.timedelta) -> int:
    return (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds


_BINARY: dict[int, Callable[[Any], bytes]] = {
    BOOL: lambda v: b"\x01" if v else b"\x00",
    BYTEA: lambda v: bytes(v),
    INT2: lambda v: struct.pack("!h", v),
    INT4: lambda v: struct.pack("!i", v),
    INT8: lambda v: struct.pack("!q", v),
    OID: lambda v: struct.pack("!I", v),
    FLOAT4: lambda v: struct.pack("!f", v),
    FLOAT8: lambda v: struct.pack("!d", v),
    TEXT: lambda v: encode_text(v).encode(),
    VARCHAR: lambda v: encode_text(v).encode(),
    JSON: lambda v: encode_text(v).encode(),
    NUMERIC: _numeric_binary,
    DATE: lambda v: struct.pack("!i", (v - _PG_EPOCH_DATE).days),
    TIME: lambda v: struct.pack(
        "!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    ),
    TIMESTAMP: lambda v: struct.pack("!q", _micros(v.replace(tzinfo=None) - _PG_EPOCH)),
    TIMESTAMPTZ: lambda v: struct.pack(
        "!q",
        _micros((v if v.tzinfo else v.replace(tzinfo=dt.UTC)) - _PG_EPOCH_TZ),
    ),
    INTERVAL: lambda v: struct.pack(
        "!qii", _micros(dt.timedelta(seconds=v.seconds, microseconds=v.microseconds)), v.days, 0
    ),
    UUID: lambda v: (v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))).bytes,
}


def binary_supported(oid: int) -> bool:
    return oid in _BINARY


def encode_binary(v: Any, oid: int) -> bytes:
    """Postgres binary output of a value for a type with binary support."""
    return _BINARY[oid](v)


# -- parameters -----------------------------------------------------------------------------------

_TRUE = {"t", "true", "y", "yes", "on", "1"}
_TZ_SUFFIX = re.compile(r"([+-]\d{2})(:?\d{2})?(:?\d{2})?$")


def _timestamp(text: str) -> dt.datetime:
    text = text.strip()
    m = _TZ_SUFFIX.search(text)
    if m and len(text) > 10 and m.start() > 10:
        hours = m.group(1)
        minutes = (m.group(2) or "00").lstrip(":")
        text = text[: m.start()] + f"{hours}:{minutes}"
    return dt.datetime.fromisoformat(text)


def _parse_array(text: str, element: Callable[[str], Any]) -> list[Any]:
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueError(f"malformed array literal: {text!r}")
    body = body[1:-1]
    items: list[Any] = []
    i = 0
    while i < len(body):
        if body[i] == '"':
            j, buf = i + 1, []
            while body[j] != '"':
                if body[j] == "\\":
                    j += 1
                buf.append(body[j])
                j += 1
            items.append(element("".join(buf)))
            i = j + 2
        else:
            j = body.find(",", i)
            j = len(body) if j < 0 else j
            raw = body[i:j].strip()
            items.append(None if raw.upper() == "NULL" else element(raw))
            i = j + 1
    return items


_TEXT_IN: dict[int, Callable[[str], Any]] = {
    BOOL: lambda s: s.strip().lower() in _TRUE,
    INT2: int,
    INT4: int,
    INT8: int,
    OID: int,
    FLOAT4: float,
    FLOAT8: float,
    NUMERIC: decimal.Decimal,
    DATE: dt.date.fromisoformat,
    TIME: dt.time.fromisoformat,
    TIMESTAMP: _timestamp,
    TIMESTAMPTZ: _timestamp,
    BYTEA: lambda s: bytes.fromhex(s[2:]) if s.startswith("\\x") else s.encode(),
    UUID: lambda s: s,
}


def decode_text(text: str, oid: int) -> Any:
    """A parameter sent in text format, as the Python value to bind."""
    if oid in ELEMENT_OF:
        element = ELEMENT_OF[oid]
        return _parse_array(text, lambda s: decode_text(s, element))
    fn = _TEXT_IN.get(oid)
    return fn(text) if fn else text


def _numeric_from_binary(data: bytes) -> decimal.Decimal:
    ndigits, weight, sign, dscale = struct.unpack("!hhHh", data[:8])
    if sign == 0xC000:
        return decimal.Decimal("NaN")
    digits = struct.unpack(f"!{ndigits}H", data[8 : 8 + 2 * ndigits])
    value = decimal.Decimal(0)
    for i, d in enumerate(digits):
        value += decimal.Decimal(d).scaleb(4 * (weight - i))
    value = value.quantize(decimal.Decimal(1).scaleb(-dscale)) if dscale else value
    return -value if sign == 0x4000 else value


_BINARY_IN: dict[int, Callable[[bytes], Any]] = {
    BOOL: lambda b: b != b"\x00",
    BYTEA: bytes,
    INT2: lambda b: struct.unpack("!h", b)[0],
    INT4: lambda b: struct.unpack("!i", b)[0],
    INT8: lambda b: struct.unpack("!q", b)[0],
    OID: lambda b: struct.unpack("!I", b)[0],
    FLOAT4: lambda b: struct.unpack("!f", b)[0],
    FLOAT8: lambda b: struct.unpack("!d", b)[0],
    NUMERIC: _numeric_from_binary,
    DATE: lambda b: _PG_EPOCH_DATE + dt.timedelta(days=struct.unpack("!i", b)[0]),
    TIMESTAMP: lambda b: _PG_EPOCH + dt.timedelta(microseconds=struct.unpack("!q", b)[0]),
    TIMESTAMPTZ: lambda b: _PG_EPOCH_TZ + dt.timedelta(microseconds=struct.unpack("!q", b)[0]),
    TIME: lambda b: (dt.datetime.min + dt.timedelta(microseconds=struct.unpack("!q", b)[0])).time(),
    UUID: lambda b: str(uuid.UUID(bytes=bytes(b))),
    TEXT: lambda b: bytes(b).decode(),
    VARCHAR: lambda b: bytes(b).decode(),
    JSON: lambda b: bytes(b).decode(),
    JSONB: lambda b: bytes(b)[1:].decode(),
    UNKNOWN: lambda b: bytes(b).decode(),
    0: lambda b: bytes(b).decode(),
}


def decode_binary(data: bytes, oid: int) -> Any:
    """A parameter sent in binary format, as the Python value to bind."""
    fn = _BINARY_IN.get(oid)
    if fn is None:
        raise ValueError(
            f"binary format is not supported for parameters of type {format_type(oid)}"
        )
    return fn(data)
