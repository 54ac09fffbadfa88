"""PEP 249 Connection and Cursor over a :class:`~lakesql.session.Session`.

Every statement commits on its own (one Delta version per writing statement), so ``commit()``
has nothing left to do and ``rollback()`` has nothing to undo.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakesql import errors as E
from lakesql.catalog.warehouse import FEATURE_TABLES, Warehouse
from lakesql.session import Session


class Connection:
    """A PEP 249 connection to one warehouse."""

    Error = E.Error
    Warning = E.Warning
    InterfaceError = E.InterfaceError
    DatabaseError = E.DatabaseError
    DataError = E.DataError
    OperationalError = E.OperationalError
    IntegrityError = E.IntegrityError
    InternalError = E.InternalError
    ProgrammingError = E.ProgrammingError
    NotSupportedError = E.NotSupportedError

    def __init__(
        self,
        warehouse: str | None = None,
        *,
        role: str | None = None,
        allowed_directories: Sequence[str] = (),
        **settings: Any,
    ):
        self.session: Session | None = Session(
            warehouse, role=role, allowed_directories=allowed_directories, **settings
        )
        self._cursors: list[Cursor] = []

    def _live(self) -> Session:
        if self.session is None:
            raise E.InterfaceError("the connection is closed")
        return self.session

    def cursor(self) -> Cursor:
        """A new cursor."""
        cur = Cursor(self)
        self._cursors.append(cur)
        return cur

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Cursor:
        """Shortcut: a new cursor that has executed `sql`."""
        return self.cursor().execute(sql, parameters)

    def register(self, name: str, data: Any) -> None:
        """Make in-memory rows queryable as `name` in this connection's statements.

        `data` is a pyarrow Table or RecordBatch, read in place (not copied), or a pandas DataFrame,
        converted to Arrow once; nothing is written to the warehouse. It stays until
        :meth:`unregister` or :meth:`close`. As with DuckDB's ``register``, `name` is a temporary
        view: a table created later under the same name in schema main is hidden by it.

        Raises:
            ProgrammingError: `data` is of another type (a RecordBatchReader can be read only
                once), or a table `name` exists in schema main.
        """
        session = self._live()
        table = _as_table(data)
        if not isinstance(name, str) or not name.strip():
            raise E.ProgrammingError("the name to register must be a non-empty string")
        if session.warehouse.exists(session.warehouse.ref(None, name)):
            raise E.ProgrammingError(
                f"table {name!r} exists: registering {name!r} would hide it",
                hint="choose another name",
            )
        session.engine.register(name, table)
        for cur in self._cursors:  # each cursor runs on its own DuckDB connection
            if not cur._closed:
                cur._duck.register(name, table)

    def unregister(self, name: str) -> None:
        """Forget rows registered as `name` (nothing happens if there are none)."""
        session = self._live()
        if not session.engine.unregister(name):
            return
        for cur in self._cursors:
            if not cur._closed:
                cur._duck.unregister(name)

    def commit(self) -> None:
        """COMMIT the transactions its cursors opened with BEGIN (other statements committed
        when they ran)."""
        session = self._live()
        for cur in self._cursors:
            if not cur._closed and session.transaction(cur._duck) is not None:
                cur.execute("COMMIT")

    def rollback(self) -> None:
        """ROLLBACK the transactions its cursors opened with BEGIN (other statements committed
        when they ran and cannot be undone)."""
        session = self._live()
        for cur in self._cursors:
            if not cur._closed and session.transaction(cur._duck) is not None:
                cur.execute("ROLLBACK")

    def interrupt(self) -> None:
        """Cancel the statement running on this connection (from another thread)."""
        self._live().engine.interrupt()
        for cur in self._cursors:  # each cursor runs on its own DuckDB connection
            if not cur._closed:
                try:
                    cur._duck.interrupt()
                except Exception:
                    pass

    def close(self) -> None:
        """Close the connection and its cursors; closing it again raises InterfaceError."""
        if self.session is None:
            raise E.InterfaceError("the connection is already closed")
        for cur in self._cursors:
            cur.close()
        self.session.close()
        self.session = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.session is not None:  # the block may have closed it already
            self.close()


def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if type(data).__name__ == "DataFrame" and type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise E.ProgrammingError(
        f"cannot register a {type(data).__name__}",
        hint="register a pyarrow Table or RecordBatch, or a pandas DataFrame",
    )


class Cursor:
    """A PEP 249 cursor; also offers fetch_arrow_table() and fetchdf()."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.arraysize = 1
        self._duck: Any = connection._live().cursor()
        self._rows: Any = None  # DuckDB cursor holding the pending result
        self._fetched: str | None = None  # how that result is being read: "rows" or "columns"
        self.rowcount = -1
        self.description: list[tuple[Any, ...]] | None = None
        self.message = ""
        self._closed = False

    def _check(self) -> Session:
        if self._closed:
            raise E.InterfaceError("the cursor is closed")
        return self.connection._live()

    def execute(
        self, operation: str, parameters: Sequence[Any] | dict[str, Any] | None = None
    ) -> Cursor:
        """Execute a statement; parameters are bound (`?` or `$1`), never interpolated."""
        session = self._check()
        if not isinstance(operation, str):
            raise E.InterfaceError(f"the statement must be a str, not {type(operation).__name__}")
        if (parameters is not None and not isinstance(parameters, (Sequence, dict))) or isinstance(
            parameters, str
        ):
            raise E.InterfaceError("parameters must be a sequence or a mapping")
        self._rows = None
        self._fetched = None
        self.description = None
        self.rowcount = -1
        result = session.execute(operation, parameters, cur=self._duck)
        self.rowcount = result.rowcount
        self.message = result.message
        if result.cursor is not None:
            self._rows = result.cursor
            desc = result.cursor.description
            self.description = (
                [(d[0], str(d[1]), None, None, None, None, None) for d in desc] if desc else None
            )
            if self.description is None:
                self._rows = None
        return self

    def executemany(
        self, operation: str, seq_of_parameters: Sequence[Sequence[Any] | dict[str, Any]]
    ) -> Cursor:
        """Execute once per parameter set; rowcount is the total.

        An ``INSERT INTO t [(cols)] VALUES (?, ...)`` whose values are parameters only runs once
        for all the parameter sets (read from an Arrow table of them): one Delta commit, and an
        error in any row (NOT NULL, a constraint, a cast) commits none of them.
        """
        session = self._check()
        if not isinstance(operation, str):
            raise E.InterfaceError(f"the statement must be a str, not {type(operation).__name__}")
        rows = seq_of_parameters if isinstance(seq_of_parameters, (list, tuple)) else None
        if rows is None and not isinstance(seq_of_parameters, (str, bytes, dict)):
            try:
                rows = list(seq_of_parameters)  # a generator: read once
            except TypeError:
                rows = None
            seq_of_parameters = rows if rows is not None else seq_of_parameters
        if rows and all(isinstance(p, (list, tuple)) for p in rows):
            self._rows = None
            self._fetched = None
            self.description = None
            self.rowcount = -1
            result = session.execute_many(operation, rows, cur=self._duck)
            if result is not None:
                self.rowcount = result.rowcount
                self.message = result.message
                return self
        total = 0
        for params in seq_of_parameters:
            self.execute(operation, params)
            total += max(self.rowcount, 0)
        self.rowcount = total
        self._rows = None
        self.description = None
        return self

    def _result(self) -> Any:
        self._check()
        if self._rows is None:
            raise E.ProgrammingError("no result set: the last statement returned no rows")
        return self._rows

    def _fetch_rows(self, fn: Any, nothing: Any) -> Any:
        result = self._result()
        if self._fetched == "columns":  # a columnar fetch took every row
            return nothing
        self._fetched = "rows"
        return self._guard(lambda: fn(result))

    def _fetch_columns(self, name: str, fn: Any) -> Any:
        # DuckDB's columnar fetches skip rows a row fetch has buffered, and return None once the
        # result is used up: so they must be the first fetch of a result.
        result = self._result()
        if self._fetched is not None:
            raise E.ProgrammingError(
                f"{name}() returns the whole result, so it must be the result's first fetch",
                hint="execute the statement again",
            )
        self._fetched = "columns"
        return self._guard(lambda: fn(result))

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._fetch_rows(lambda r: r.fetchone(), None)

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        n = self.arraysize if size is None else size
        return self._fetch_rows(lambda r: r.fetchmany(n), [])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._fetch_rows(lambda r: r.fetchall(), [])

    def fetch_arrow_table(self) -> pa.Table:
        """All rows of the result as a pyarrow Table (the result's first fetch)."""
        return self._fetch_columns("fetch_arrow_table", lambda r: r.to_arrow_table())

    def fetch_record_batch(self, rows_per_batch: int = 1_000_000) -> pa.RecordBatchReader:
        """The rows of the result as a stream of record batches (the result's first fetch)."""
        return self._fetch_columns(
            "fetch_record_batch", lambda r: r.to_arrow_reader(rows_per_batch)
        )

    def fetchdf(self) -> Any:
        """All rows of the result as a pandas DataFrame (the result's first fetch)."""
        return self._fetch_columns("fetchdf", lambda r: r.fetchdf())

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except E.Error:
            raise
        except Exception as e:
            from lakesql.engine.duckdb import translate

            raise translate(e) from e

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored (PEP 249)."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Accepted and ignored (PEP 249)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._rows = None
        if self.connection.session is not None:  # an open transaction ends uncommitted
            self.connection.session.forget_cursor(self._duck)
        try:
            self._duck.close()
        except Exception:
            pass

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class WarehouseNames:
    """The names a warehouse folder holds, read without opening a connection."""

    schemas: list[str] = field(default_factory=list)
    tables: dict[str, list[str]] = field(default_factory=dict)  # schema -> tables
    feature_tables: list[tuple[str, str]] = field(default_factory=list)  # (schema, name)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> catalog document


def warehouse_names(warehouse: str) -> WarehouseNames:
    """Schemas, tables, feature tables and models of the warehouse folder `warehouse`.

    For tools that show names while a connection opens or runs a statement (the shell's
    completion); it reads the folder only and starts no engine.

    Raises:
        lakesql.Error: the folder cannot be read as a warehouse.
    """
    wh = Warehouse(warehouse)
    schemas = wh.schemas()
    features = sorted(
        (str(d.get("schema", "main")), str(d["name"]))
        for d in wh.docs(FEATURE_TABLES).values()
        if "name" in d
    )
    return WarehouseNames(schemas, {s: wh.tables(s) for s in schemas}, features, wh.docs("models"))
