"""lakesql: a SQL-first machine-learning lakehouse on Delta Lake and DuckDB.

The public API is the PEP 249 module surface: :func:`connect`, the exception tree and the type
objects. Heavy libraries (DuckDB, deltalake, ML back-ends) load on first use, not on import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakesql.errors import (
    CatalogError,
    ConflictError,
    DatabaseError,
    DataError,
    Error,
    InsufficientPrivilegeError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    ObjectExistsError,
    OperationalError,
    OptionError,
    ParseError,
    ProgrammingError,
    UnknownObjectError,
    Warning,
)
from lakesql.types import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)
from lakesql.udfs import udf

if TYPE_CHECKING:
    from lakesql.dbapi import Connection

__version__ = "0.1.0"
apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "qmark"  # `$1` numbered parameters work too


def connect(
    warehouse: str | None = None,
    *,
    role: str | None = None,
    allowed_directories: Sequence[str] = (),
    **settings: Any,
) -> Connection:
    """Open a connection to a warehouse folder (created when missing).

    Args:
        warehouse: the folder; default `LAKESQL_WAREHOUSE` or ./lakehouse.
        role: None for the warehouse's owner (everything allowed); 'reader', 'writer' or
            'admin' for an untrusted user, confined as docs/security.md says (the server gives
            each client its role).
        allowed_directories: server folders an 'admin' may read and COPY ... TO.
        **settings: session settings (see SHOW SETTINGS), e.g. threads=2.

    Returns:
        A PEP 249 :class:`~lakesql.dbapi.Connection`.

    Raises:
        OptionError: an unknown setting or a bad value.
    """
    from lakesql.dbapi import Connection

    return Connection(warehouse, role=role, allowed_directories=allowed_directories, **settings)


__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "CatalogError",
    "ConflictError",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "InsufficientPrivilegeError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "ObjectExistsError",
    "OperationalError",
    "OptionError",
    "ParseError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "UnknownObjectError",
    "Warning",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
    "udf",
]
