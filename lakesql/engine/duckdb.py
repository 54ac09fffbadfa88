"""The only module that imports duckdb: connection, delta extension, views, UDFs, errors."""

from __future__ import annotations

import glob
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from lakesql import errors as E
from lakesql.storage.delta import Snapshot, file_url

ROWID_COLUMN = "__lakesql_rowid"  # a companion view's row position (DuckDB's rowid)
ROW_GROUP_ROWS = 122_880  # DuckDB's row group size


def rowid_view_name(schema: str, name: str) -> tuple[str, str]:
    """(schema, name) of the view of table schema.name that adds ROWID_COLUMN."""
    return "__lakesql", f"rowid:{schema}.{name}"


_FALLBACK_WARNED = False
# Delta field metadata: the DuckDB type of a column stored as another type
LOGICAL_TYPE_KEY = "lakesql.type"
COLLATE_KEY = "lakesql.collate"  # Delta field metadata: the column's collation (e.g. NOCASE)
# DuckDB types whose Arrow form Delta cannot store exactly (or at all): such a column is stored as
# the VARCHAR text of its values, which casts back exactly. Quoted text (ENUM values, field names)
# is removed before matching.
_TEXT_STORED = re.compile(
    r"\b(?:HUGEINT|UHUGEINT|BIT|BITSTRING|INTERVAL|BIGNUM|VARINT|TIMESTAMP_NS|TIME_NS|TIMETZ|GEOMETRY|"
    r"TIME\b(?! ZONE))\b"
)
_UNION = re.compile(r"\bUNION\(")  # a UNION's text does not say which member a value was
UNION_TAG = "__tag"  # a UNION column is stored as a struct of this member name and the members


def _is_union(duckdb_type: str) -> bool:
    """True for a UNION type itself (not a list or struct holding one)."""
    text = _QUOTED.sub("''", duckdb_type.strip())
    if not text.upper().startswith("UNION("):
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and i > 5:
            return i == len(text) - 1
    return False


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_POSITION = re.compile(r'"position"\s*:\s*"?(\d+)')


def quote(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def _extension_path() -> str | None:
    try:
        import duckdb_extension_delta
    except ImportError:
        return None
    base = os.path.dirname(duckdb_extension_delta.__file__)
    found = glob.glob(os.path.join(base, "**", "delta.duckdb_extension"), recursive=True)
    version = "v" + duckdb.__version__
    exact = [p for p in found if version in p]
    candidates = exact or found
    return candidates[0] if candidates else None


# Translation of DuckDB exceptions, once, by class (most specific first).
# DuckDB's exception classes, the type name that starts their message (all a DuckDB error raised
# while a result streams keeps: it reaches Python as an Arrow error holding only the text), and
# the lakesql error each becomes. First match wins; the bare names end the table.
_TRANSLATION: list[tuple[type[Exception], str | None, type[E.Error]]] = [
    (duckdb.ParserException, "Parser Error", E.ParseError),
    (duckdb.CatalogException, "Catalog Error", E.CatalogError),
    (duckdb.BinderException, "Binder Error", E.ProgrammingError),
    (duckdb.ConstraintException, "Constraint Error", E.IntegrityError),
    (duckdb.ConversionException, "Conversion Error", E.DataError),
    (duckdb.OutOfRangeException, "Out of Range Error", E.DataError),
    (duckdb.InvalidInputException, "Invalid Input Error", E.DataError),
    (duckdb.TypeMismatchException, "Mismatch Type Error", E.DataError),
    (duckdb.InterruptException, "INTERRUPT Error", E.OperationalError),
    (duckdb.NotImplementedException, "Not implemented Error", E.NotSupportedError),
    (duckdb.InvalidTypeException, "Invalid Type Error", E.ProgrammingError),
    (duckdb.DependencyException, "Dependency Error", E.CatalogError),
    (duckdb.PermissionException, "Permission Error", E.OperationalError),
    (duckdb.IOException, "IO Error", E.OperationalError),
    (duckdb.InternalException, "INTERNAL Error", E.InternalError),
    (duckdb.ProgrammingError, None, E.ProgrammingError),
    (duckdb.DataError, None, E.DataError),
    (duckdb.IntegrityError, None, E.IntegrityError),
    (duckdb.NotSupportedError, None, E.NotSupportedError),
    (duckdb.OperationalError, None, E.OperationalError),
    (duckdb.Error, None, E.DatabaseError),
]
_MISSING_TABLE = re.compile(r"^Catalog Error: Table with name (\S+) does not exist")


def _message(e: BaseException) -> str:
    """DuckDB's message without the LINE/caret snippet (lakesql renders its own)."""
    return str(e).split("\n\nLINE ")[0].split("\nLINE ")[0].strip()


def _error(target: type[E.Error], message: str, span: E.SourceSpan | None = None) -> E.Error:
    error = target(message, span=span)
    if isinstance(error, E.CatalogError):
        m = _MISSING_TABLE.match(message)
        error.missing = m.group(1).strip('"') if m else None
    return error


UNREADABLE = "lakesql: table '"  # start of the error a view of an unreadable table raises
_UNREADABLE_ERROR = re.compile(r"(?:Invalid Input Error: )?" + re.escape(UNREADABLE))


def _unreadable(message: str) -> E.Error | None:
    """The OperationalError of a view defined by Engine.define_unreadable_view, if it is one."""
    m = _UNREADABLE_ERROR.match(message)
    if m is None:
        return None
    return E.OperationalError(
        "table '" + message[m.end() :],
        hint="other tables can be read; DROP TABLE removes this one, a new commit may repair it",
    )


def translate(e: Exception, sql: str | None = None, con: Any = None) -> E.Error:
    """Turn a DuckDB exception into the matching lakesql error."""
    if isinstance(e, duckdb.InterruptException):
        return E.OperationalError("statement cancelled")
    target = next((err for cls, _, err in _TRANSLATION if isinstance(e, cls)), E.InternalError)
    unreadable = _unreadable(_message(e))
    if unreadable is not None:
        return unreadable
    span = None
    if target is E.ParseError and sql is not None:
        span = E.SourceSpan(sql, _parse_position(sql, con))
    return _error(target, _message(e), span)


def guard_stream(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """`reader`, with a DuckDB error raised while reading it turned into the lakesql error."""

    def gen() -> Any:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as e:
                message = _message(e)
                unreadable = _unreadable(message)
                if unreadable is not None:
                    raise unreadable from e
                target = next(
                    (err for _, p, err in _TRANSLATION if p and message.startswith(p)),
                    E.DatabaseError,
                )
                raise _error(target, message) from e
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, gen())


def _parse_position(sql: str, con: Any) -> int:
    """The offset of a DuckDB syntax error, from json_serialize_sql (0 when unknown)."""
    try:
        probe = con or duckdb.connect()
        row = probe.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
        m = _POSITION.search(row[0] if row else "")
        return int(m.group(1)) if m else 0
    except Exception:
        return 0


class Engine:
    """One in-memory DuckDB database per lakesql connection; tables appear as views."""

    def __init__(self, *, threads: int = 0, memory_limit: str | None = None, reader: str = "auto"):
        # DuckDB's progress bar writes to stdout once a query passes 2 s: it would corrupt the
        # data a script or a pipe reads there (lakesql's own progress goes to stderr)
        self.con = duckdb.connect(":memory:")
        try:
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.InvalidInputException:  # in Jupyter without ipywidgets DuckDB refuses any
            pass  # change of the setting; there the bar is drawn in the notebook, not on stdout
        self._lock = threading.RLock()
        try:
            self.configure("threads", threads)
            self.configure("memory_limit", memory_limit)
        except E.Error:
            self.con.close()
            raise
        self.extension_loaded = False
        self.extension_error: str | None = None
        if reader != "parquet":
            self._load_extension()
        self.reader = reader if self.extension_loaded else "parquet"
        self.con.execute("CREATE SCHEMA IF NOT EXISTS __lakesql")
        self._udfs: set[str] = set()
        self._registered: dict[str, pa.Table] = {}  # made visible on every new cursor

    def configure(self, setting: str, value: Any) -> None:
        """Apply lakesql setting `threads` or `memory_limit` to DuckDB (0 / None: DuckDB's default).

        Raises:
            OptionError: DuckDB refuses the value.
        """
        if setting not in ("threads", "memory_limit"):
            return
        sql = (
            f"RESET {setting}"
            if not value
            else f"SET threads = {int(value)}"
            if setting == "threads"
            else f"SET memory_limit = {literal(str(value))}"
        )
        try:
            self.con.execute(sql)
        except duckdb.Error as e:
            raise E.OptionError(
                f"setting {setting!r} cannot be {value!r}: {translate(e).message}"
            ) from e

    def _load_extension(self) -> None:
        global _FALLBACK_WARNED
        path = _extension_path()
        try:
            if path is None:
                raise FileNotFoundError("the duckdb-extension-delta package is not installed")
            self.con.execute(f"LOAD {literal(path)}")
            self.extension_loaded = True
        except Exception as e:
            self.extension_error = str(e)
            if not _FALLBACK_WARNED:
                _FALLBACK_WARNED = True
                print(
                    f"lakesql: DuckDB's delta extension could not be loaded ({e}); "
                    "reading tables with read_parquet over each snapshot's file list",
                    file=sys.stderr,
                )

    def lock_down(self, directories: list[str]) -> None:
        """Confine this engine for an untrusted user (docs/security.md): files only under
        `directories`, no extension installed or loaded from now on, and its configuration
        locked (no SET can undo any of it). Call after set-up: the delta extension is loaded.
        """
        folders = [os.path.join(os.path.realpath(d), "") for d in directories]
        with self._lock:
            self.con.execute("SET allowed_directories = ?", [folders])
            for sql in (
                "SET enable_external_access = false",
                "SET autoinstall_known_extensions = false",
                "SET autoload_known_extensions = false",
                "SET lock_configuration = true",
            ):
                self.con.execute(sql)

    # -- cursors -----------------------------------------------------------------------------
    def cursor(self) -> Any:
        """A new DuckDB cursor (its own result set; same database), with the registered tables."""
        cur = self.con.cursor()
        for name, table in list(self._registered.items()):
            cur.register(name, table)
        return cur

    def register(self, name: str, table: pa.Table) -> None:
        """Make `table` readable (in place) as TEMP view `name` here and on cursors made later."""
        with self._lock:
            try:
                self.con.register(name, table)
            except duckdb.Error as e:
                raise translate(e) from e
            self._registered[name.lower()] = table  # DuckDB's names ignore case

    def registered(self, name: str) -> pa.Table | None:
        """The rows registered as `name` (DuckDB's names ignore case), or None."""
        with self._lock:
            return self._registered.get(name.lower())

    def unregister(self, name: str) -> bool:
        """Undo register(name); False when nothing is registered under `name`."""
        with self._lock:
            if self._registered.pop(name.lower(), None) is None:
                return False
            self.con.unregister(name)
            return True

    def run(self, cur: Any, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Execute `sql` on `cur`, translating DuckDB errors."""
        try:
            if params is None:
                return cur.execute(sql)
            return cur.execute(sql, params)
        except duckdb.Error as e:
            raise translate(e, sql, self.con) from e

    def interrupt(self) -> None:
        self.con.interrupt()

    # -- views over tables -------------------------------------------------------------------
    def ensure_schema(self, schema: str) -> None:
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")

    def drop_schema(self, schema: str) -> None:
        self.con.execute(f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE")

    def define_view(self, schema: str, name: str, snap: Snapshot, rowid: bool = False) -> None:
        """(Re)define view schema.name to read exactly snapshot `snap` (`rowid`: plus each row's
        position as column ROWID_COLUMN)."""
        body = self.scan_sql(snap, rowid=rowid)
        with self._lock:
            self.ensure_schema(schema)
            self.con.execute(f"CREATE OR REPLACE VIEW {quote(schema)}.{quote(name)} AS {body}")

    def define_unreadable_view(
        self, schema: str, name: str, error: Exception, table_schema: pa.Schema | None = None
    ) -> None:
        """(Re)define view schema.name as a table that cannot be read: any query reading rows of
        it raises OperationalError "table 'schema.name' cannot be read: <error>" (see translate),
        while every other table, and DROP TABLE of this one, keep working. The view has the
        table's columns when its schema is known (DESCRIBE works), else one placeholder column."""
        reason = error.message if isinstance(error, E.Error) else str(error)
        reason = reason.split("\n\nLINE ")[0].split("\nLINE ")[0].strip()
        message = f"{UNREADABLE}{schema}.{name}' cannot be read: {reason}"
        columns = ""
        if table_schema is not None and len(table_schema):
            try:
                types = self.logical_types(table_schema)
                columns = ", ".join(
                    f"CAST(NULL AS {t}) AS {quote(c)}"
                    for c, t in zip(table_schema.names, types, strict=True)
                )
            except Exception:  # a type DuckDB cannot rebuild: the placeholder column
                pass
        placeholder = f"CAST(NULL AS VARCHAR) AS {quote('__lakesql_unreadable')}"
        with self._lock:
            self.ensure_schema(schema)
            for cols in [c for c in (columns, placeholder) if c]:
                try:
                    self.con.execute(
                        f"CREATE OR REPLACE VIEW {quote(schema)}.{quote(name)} AS SELECT * FROM "
                        f"(SELECT {cols}) WHERE error({literal(message)}) IS NULL"
                    )
                    return
                except duckdb.Error:
                    continue
            self.con.execute(f"DROP VIEW IF EXISTS {quote(schema)}.{quote(name)}")

    def drop_view(self, schema: str, name: str) -> None:
        with self._lock:
            self.con.execute(f"DROP VIEW IF EXISTS {quote(schema)}.{quote(name)}")

    def version_view(self, snap: Snapshot) -> str:
        """A view reading one pinned version (time travel); returns its qualified name."""
        safe = re.sub(r"\W", "_", snap.path)[-80:]
        name = f"v{snap.version}_{safe}"
        with self._lock:
            try:
                self.con.execute(
                    f"CREATE OR REPLACE VIEW __lakesql.{quote(name)} AS {self.scan_sql(snap, pinned=True)}"
                )
            except duckdb.Error as e:  # e.g. the version's files were removed by VACUUM
                err = translate(e)
                if isinstance(e, duckdb.IOException):
                    err.hint = f"version {snap.version} needs files that are gone; VACUUM may have removed them"
                raise err from e
        return f"__lakesql.{quote(name)}"

    def scan_sql(self, snap: Snapshot, pinned: bool = False, rowid: bool = False) -> str:
        """SQL reading a snapshot: Parquet file list when exact, else the delta extension
        (`rowid`: plus column ROWID_COLUMN, the row's position in the snapshot's files).

        Raises:
            NotSupportedError: `rowid` of a snapshot only the delta extension reads exactly.
        """
        columns = snap.schema.names
        extra = [ROWID_COLUMN] if rowid else []
        if not snap.files:  # an empty DuckDB table: plans over it are those over a table
            empty = self._empty_table(snap.schema)
            cols = [quote(c) for c in columns] + [f"rowid AS {c}" for c in extra]
            return f"SELECT {', '.join(cols)} FROM {empty}"
        use_extension = self.extension_loaded and (
            self.reader == "extension" or not snap.plain_parquet or bool(snap.partition_columns)
        )
        if use_extension and rowid:
            raise E.NotSupportedError(
                "rowid is not available for this table: it has partitions or deletion vectors, "
                "read through the delta extension"
            )
        if use_extension:
            version = f", version => {snap.version}" if pinned else ""
            url = literal(file_url(snap.path))
            return self.read_sql(snap, f"SELECT * FROM delta_scan({url}{version})")
        files = "[" + ", ".join(literal(f) for f in snap.files) + "]"
        hive = (
            ", hive_partitioning = true"
            if snap.partition_columns
            else ", hive_partitioning = false"
        )
        source = f"read_parquet({files}, union_by_name = true{hive})"
        present = {r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        types = self.duckdb_types(snap.schema)
        select = []
        for col, typ in zip(columns, types, strict=True):
            if col not in present:
                select.append(f"CAST(NULL AS {typ}) AS {quote(col)}")
            elif col in snap.partition_columns:
                select.append(f"CAST({quote(col)} AS {typ}) AS {quote(col)}")
            else:
                select.append(quote(col))
        if rowid:  # DuckDB's rowid: the position in insertion order, files oldest first
            starts = [0]
            for n in self._file_rows(snap, files):
                starts.append(starts[-1] + n)
            position = "CAST(file_index AS BIGINT) + 1] + file_row_number"
            select.append(
                f"CAST(CAST({starts[:-1]} AS BIGINT[])[{position} AS BIGINT) AS {ROWID_COLUMN}"
            )
        body = f"SELECT {', '.join(select)} FROM {source}"
        logged = snap.rows if snap.rows and None not in snap.rows else None  # no I/O for this
        if (
            1 < len(snap.files)
            and logged is not None
            and sum(int(n or 0) for n in logged) <= ROW_GROUP_ROWS
        ):
            # rows of a DuckDB table this small are one row group, scanned by one thread in
            # insertion order, so even an unordered query (a scalar subquery over several rows,
            # a correlated one) sees them in that order; several files are scanned in parallel
            body += " ORDER BY file_index, file_row_number"
        return self.read_sql(snap, body, extra)

    def _file_rows(self, snap: Snapshot, files: str) -> list[int]:
        """Rows of each of `snap`'s files: from the Delta log, else from the Parquet footers."""
        if snap.rows is not None and all(n is not None for n in snap.rows):
            return [int(n or 0) for n in snap.rows]
        counts = dict(
            self.con.execute(
                f"SELECT file_name, num_rows FROM parquet_file_metadata({files})"
            ).fetchall()
        )
        return [int(counts[f]) for f in snap.files]

    def read_sql(self, snap: Snapshot, body: str, extra: Sequence[str] = ()) -> str:
        """`body` (a scan of `snap`'s files) with columns stored as another type cast back
        (`extra`: BIGINT columns of `body` after the table's, passed through)."""
        keys = {LOGICAL_TYPE_KEY.encode(), COLLATE_KEY.encode()}
        if not any(keys & set(f.metadata or {}) for f in snap.schema):
            return body
        logical = self.logical_types(snap.schema)
        cols = []
        for f, t in zip(snap.schema, logical, strict=True):
            meta = f.metadata or {}
            col = quote(f.name)
            if LOGICAL_TYPE_KEY.encode() in meta and _is_union(t):
                whens = " ".join(
                    f"WHEN {literal(m)} THEN union_value({quote(m)} := "
                    f"CAST({col}.{quote(m)} AS {mt}))::{t}"
                    for m, mt in self.union_members(t)
                )
                col = f"CASE {col}.{quote(UNION_TAG)} {whens} END"
            elif LOGICAL_TYPE_KEY.encode() in meta:
                col = f"CAST({col} AS {t})"
            cols.append(f"{col} AS {quote(f.name)}")
        cols += extra
        scan = f"SELECT {', '.join(cols)} FROM ({body}) AS __lakesql_scan"
        collations = {
            f.name: (f.metadata or {})[COLLATE_KEY.encode()].decode()
            for f in snap.schema
            if COLLATE_KEY.encode() in (f.metadata or {})
        }
        if not collations:
            return scan
        # A column's collation is part of its type, which `col COLLATE x` does not give (DuckDB
        # applies that in the one comparison): a UNION ALL with an empty table whose column has
        # the collation gives the view's column that type, so comparisons, ORDER BY and set
        # operations over the view use it, as over a DuckDB table's column.
        sources = {c: self._collation_table(c) for c in sorted(set(collations.values()))}
        aliases = {c: f"__c{i}" for i, c in enumerate(sources)}
        empty = ", ".join(
            f"{aliases[collations[f.name]]}.v AS {quote(f.name)}"
            if f.name in collations
            else f"CAST(NULL AS {t}) AS {quote(f.name)}"
            for f, t in zip(snap.schema, logical, strict=True)
        )
        empty += "".join(f", CAST(NULL AS BIGINT) AS {c}" for c in extra)
        tables = ", ".join(f"{sources[c]} AS {aliases[c]}" for c in sources)
        return f"SELECT {empty} FROM {tables} UNION ALL {scan}"

    def _empty_table(self, schema: pa.Schema) -> str:
        """An empty table with `schema`'s columns and DuckDB types (created once per schema)."""
        import hashlib

        types = self.logical_types(schema)
        columns = ", ".join(f"{quote(c)} {t}" for c, t in zip(schema.names, types, strict=True))
        name = f"__lakesql.{quote('empty_' + hashlib.sha256(columns.encode()).hexdigest()[:20])}"
        with self._lock:
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
        return name

    def _collation_table(self, collation: str) -> str:
        """An empty table of one VARCHAR COLLATE `collation` column (created once)."""
        name = f"__lakesql.{quote('collate_' + collation.lower())}"
        with self._lock:
            try:
                self.con.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} (v VARCHAR COLLATE {collation})"
                )
            except duckdb.Error as e:
                raise translate(e) from e
        return name

    def replace_table(self, schema: str, name: str, table: pa.Table) -> None:
        """Replace DuckDB table schema.name by the rows of `table` (system tables)."""
        with self._lock:
            self.ensure_schema(schema)
            self.con.register("__lakesql_system", table)
            try:
                self.con.execute(
                    f"CREATE OR REPLACE TABLE {quote(schema)}.{quote(name)} AS SELECT * FROM __lakesql_system"
                )
            finally:
                self.con.unregister("__lakesql_system")

    # -- types -------------------------------------------------------------------------------
    def duckdb_types(self, schema: pa.Schema) -> list[str]:
        """DuckDB type names for an Arrow schema."""
        empty = pa.table({f"c{i}": pa.array([], f.type) for i, f in enumerate(schema)})
        with self._lock:
            rel = self.con.from_arrow(empty)
            return [str(t) for t in rel.types]

    def logical_types(self, schema: pa.Schema) -> list[str]:
        """The DuckDB types of a Delta schema's columns: the recorded type where one is kept."""
        physical = self.duckdb_types(schema)
        return [
            (f.metadata or {}).get(LOGICAL_TYPE_KEY.encode(), b"").decode() or t
            for f, t in zip(schema, physical, strict=True)
        ]

    def describe(self, cur: Any, sql: str, params: Any = None) -> list[tuple[str, str]]:
        """(name, DuckDB type) of the columns of query `sql`, without running it."""
        try:
            rows = self.run(cur, f"DESCRIBE {sql}", params).fetchall()
        except E.ParseError:  # e.g. SUMMARIZE, which DESCRIBE does not take as written
            rows = self.run(cur, f"DESCRIBE SELECT * FROM ({sql})", params).fetchall()
        return [(r[0], r[1]) for r in rows]

    def type_names(self, cur: Any, types: Sequence[str]) -> list[str]:
        """DuckDB's own names of type expressions (`mood` -> `ENUM('sad', 'ok')`, `INT` -> INTEGER)."""
        if not types:
            return []
        select = ", ".join(f"CAST(NULL AS {t}) AS c{i}" for i, t in enumerate(types))
        return [t for _, t in self.describe(cur, f"SELECT {select}")]

    def storage_schema(self, columns: Sequence[tuple[str, str]]) -> pa.Schema:
        """The Arrow schema Delta stores for (name, DuckDB type) columns.

        A type Delta lacks is stored as its text (TIME, INTERVAL, HUGEINT, BIT, ... and nested
        types holding them) or widened by Arrow (unsigned integers, ENUM as string, ...); the
        DuckDB type is then kept in the field's metadata (`lakesql.type`), and readers cast back.
        """
        from lakesql.storage.delta import delta_schema

        stored = []
        for name, t in columns:
            if _is_union(t):
                try:
                    members = self.union_members(t)
                except pa.ArrowException:  # a member holds a UNION
                    raise self._union_refused(name, t) from None
                if any(_UNION.search(_QUOTED.sub("", m.upper())) for _, m in members):
                    raise self._union_refused(name, t)
                parts = [f"{quote(UNION_TAG)} VARCHAR"] + [
                    f"{quote(m)} {'VARCHAR' if self.stored_as_text(mt) else mt}"
                    for m, mt in members
                ]
                stored.append((name, f"STRUCT({', '.join(parts)})"))
            elif _UNION.search(_QUOTED.sub("", t.upper())):
                raise self._union_refused(name, t)
            else:
                stored.append((name, "VARCHAR" if self.stored_as_text(t) else t))
        schema = delta_schema(self.arrow_schema(stored))
        back = self.duckdb_types(schema)
        fields = []
        for f, (_, logical), physical in zip(schema, columns, back, strict=True):
            if physical != logical:
                f = f.with_metadata({**(f.metadata or {}), LOGICAL_TYPE_KEY: logical})
            fields.append(f)
        return pa.schema(fields)

    @staticmethod
    def _union_refused(name: str, t: str) -> E.Error:
        return E.NotSupportedError(
            f"column {name!r} has type {t}, which a Delta table cannot store: a UNION is stored "
            "only as a column of its own, with members that are not UNIONs",
            hint="store each member in a column of its own",
        )

    def union_members(self, union_type: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) of the members of a UNION type."""
        t = self.arrow_schema([("u", union_type)]).field("u").type
        children = [t.field(i) for i in range(t.num_fields)]
        types = self.duckdb_types(pa.schema(children))
        return [(c.name, ty) for c, ty in zip(children, types, strict=True)]

    @staticmethod
    def stored_as_text(duckdb_type: str) -> bool:
        return bool(_TEXT_STORED.search(_QUOTED.sub("", duckdb_type.upper())))

    def storage_select(self, schema: pa.Schema, source: str) -> str:
        """SELECT of `source` (with `schema`'s logical types) giving the values Delta stores."""
        cols = []
        for f in schema:
            col = quote(f.name)
            logical = (f.metadata or {}).get(LOGICAL_TYPE_KEY.encode(), b"").decode()
            if logical and _is_union(logical):
                parts = [f"{quote(UNION_TAG)} := union_tag({col})::VARCHAR"] + [
                    f"{quote(m)} := union_extract({col}, {literal(m)})"
                    + ("::VARCHAR" if self.stored_as_text(mt) else "")
                    for m, mt in self.union_members(logical)
                ]
                cols.append(
                    f"CASE WHEN {col} IS NULL THEN NULL ELSE struct_pack({', '.join(parts)}) END "
                    f"AS {col}"
                )
            elif logical and pa.types.is_string(f.type):
                cols.append(f"CAST({col} AS VARCHAR) AS {col}")
            else:
                cols.append(col)
        if all(c == quote(f.name) for c, f in zip(cols, schema, strict=True)):
            return f"SELECT * FROM {source}"
        return f"SELECT {', '.join(cols)} FROM {source}"

    def converts(self, schema: pa.Schema) -> bool:
        """True when `storage_select` changes values (text- or struct-stored columns)."""
        return self.storage_select(schema, "x") != "SELECT * FROM x"

    def arrow_schema(self, columns: Sequence[tuple[str, str]]) -> pa.Schema:
        """Arrow schema for (name, DuckDB type SQL) pairs, as DuckDB would export them."""
        select = ", ".join(f"CAST(NULL AS {t}) AS {quote(n)}" for n, t in columns)
        with self._lock:
            try:
                return self.con.execute(f"SELECT {select} LIMIT 0").to_arrow_table().schema
            except duckdb.Error as e:
                raise translate(e) from e

    # -- UDFs --------------------------------------------------------------------------------
    def register_function(
        self,
        name: str,
        fn: Callable[..., Any],
        params: Sequence[str],
        returns: str,
        *,
        vectorized: bool = True,
        null_handling: str = "special",
    ) -> None:
        """Register a Python function (Arrow-vectorized by default) under `name`."""
        with self._lock:
            if name in self._udfs:
                self.con.remove_function(name)
                self._udfs.discard(name)
            try:
                register: Any = self.con.create_function
                register(
                    name,
                    fn,
                    [duckdb.sqltype(p) for p in params],
                    duckdb.sqltype(returns),
                    type="arrow" if vectorized else "native",
                    null_handling=null_handling,
                    side_effects=False,
                )
            except duckdb.Error as e:
                raise translate(e) from e
            self._udfs.add(name)

    def unregister_function(self, name: str) -> None:
        with self._lock:
            if name in self._udfs:
                self.con.remove_function(name)
                self._udfs.discard(name)

    def close(self) -> None:
        self.con.close()


def version() -> str:
    return str(duckdb.__version__)
