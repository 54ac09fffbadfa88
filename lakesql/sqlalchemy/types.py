"""DuckDB type names <-> SQLAlchemy types for the lakesql dialect."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import types as sqltypes


class TINYINT(sqltypes.Integer):
    """DuckDB TINYINT (1 byte)."""

    __visit_name__ = "TINYINT"


class HUGEINT(sqltypes.Integer):
    """DuckDB HUGEINT (16 bytes; stored in Delta as DECIMAL(38,0))."""

    __visit_name__ = "HUGEINT"


class UNSIGNED(sqltypes.Integer):
    """DuckDB unsigned integers (UTINYINT ... UHUGEINT)."""

    __visit_name__ = "UNSIGNED"

    def __init__(self, name: str = "UBIGINT"):
        self.name = name


class DuckDBType(sqltypes.UserDefinedType[Any]):
    """A DuckDB type SQLAlchemy has no class for (STRUCT, MAP, UNION, ...); keeps its DDL text."""

    cache_ok = True

    def __init__(self, spec: str):
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


_SIMPLE: dict[str, Any] = {
    "BOOLEAN": sqltypes.BOOLEAN,
    "BOOL": sqltypes.BOOLEAN,
    "TINYINT": TINYINT,
    "INT1": TINYINT,
    "SMALLINT": sqltypes.SMALLINT,
    "INT2": sqltypes.SMALLINT,
    "INTEGER": sqltypes.INTEGER,
    "INT": sqltypes.INTEGER,
    "INT4": sqltypes.INTEGER,
    "BIGINT": sqltypes.BIGINT,
    "INT8": sqltypes.BIGINT,
    "HUGEINT": HUGEINT,
    "FLOAT": sqltypes.REAL,
    "REAL": sqltypes.REAL,
    "FLOAT4": sqltypes.REAL,
    "DOUBLE": sqltypes.DOUBLE,
    "FLOAT8": sqltypes.DOUBLE,
    "VARCHAR": sqltypes.VARCHAR,
    "TEXT": sqltypes.VARCHAR,
    "STRING": sqltypes.VARCHAR,
    "CHAR": sqltypes.VARCHAR,
    "BPCHAR": sqltypes.VARCHAR,
    "BLOB": sqltypes.BLOB,
    "BYTEA": sqltypes.BLOB,
    "VARBINARY": sqltypes.BLOB,
    "DATE": sqltypes.DATE,
    "TIME": sqltypes.TIME,
    "INTERVAL": sqltypes.Interval,
    "UUID": sqltypes.UUID,
    "JSON": sqltypes.JSON,
}
_UNSIGNED = {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
_TIMESTAMPS = {
    "TIMESTAMP": False,
    "DATETIME": False,
    "TIMESTAMP_S": False,
    "TIMESTAMP_MS": False,
    "TIMESTAMP_NS": False,
    "TIMESTAMP_US": False,
    "TIMESTAMP WITH TIME ZONE": True,
    "TIMESTAMPTZ": True,
}
_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\s*(?:\((\d+)\s*(?:,\s*(\d+))?\))?$")
_ARRAY = re.compile(r"^(.*)\[(\d*)\]$")


def parse_type(spec: str) -> sqltypes.TypeEngine[Any]:
    """The SQLAlchemy type for a DuckDB type name as DuckDB prints it (e.g. ``DECIMAL(10,2)``)."""
    text = spec.strip()
    upper = text.upper()
    m = _ARRAY.match(text)
    if m:
        return sqltypes.ARRAY(parse_type(m.group(1)))
    if upper in _SIMPLE:
        return _SIMPLE[upper]()
    if upper in _UNSIGNED:
        return UNSIGNED(upper)
    if upper in _TIMESTAMPS:
        return sqltypes.TIMESTAMP(timezone=_TIMESTAMPS[upper])
    if upper.startswith("VARCHAR(") or upper.startswith("CHAR("):
        return sqltypes.VARCHAR()
    m = _DECIMAL.match(upper)
    if m:
        precision = int(m.group(1)) if m.group(1) else 18
        scale = int(m.group(2)) if m.group(2) else (3 if not m.group(1) else 0)
        return sqltypes.NUMERIC(precision, scale)
    return DuckDBType(text)
