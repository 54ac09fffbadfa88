"""Every Delta Lake read of metadata and every write goes through this module (delta-rs).

Data is never read through deltalake's pyarrow dataset (it can abort the process at exit on
this platform); DuckDB reads the files listed by :func:`snapshot`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import exceptions as dx
from deltalake.schema import Field, Schema

from lakesql.errors import (
    ConflictError,
    DataError,
    Error,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    UnknownObjectError,
)

T = TypeVar("T")

SQL_KEY = "lakesql.sql"
OPERATION_KEY = "lakesql.operation"
# Reader features that make a plain Parquet scan of the file list wrong.
_NEEDS_EXTENSION = {"deletionVectors", "columnMapping"}


@dataclass(frozen=True)
class Snapshot:
    """What a reader needs to know of one version of a table."""

    path: str
    version: int
    files: list[str]
    schema: pa.Schema
    partition_columns: list[str]
    comment: str | None
    plain_parquet: bool  # True when reading `files` with read_parquet is exact
    rows: list[int | None] | None = None  # rows per file (the add action's numRecords), or None


# delta-rs's (and Arrow's) exception classes -> the lakesql error and its message; first match
# wins, so subclasses come before their bases (CommitFailedError before DeltaError).
_TRANSLATION: list[tuple[tuple[type[Exception], ...], type[Error], str, str | None]] = [
    ((dx.TableNotFoundError,), UnknownObjectError, "no Delta table at {path}", None),
    (
        (dx.CommitFailedError,),
        ConflictError,
        "another writer committed to {path} first and the change could not be retried: {e}",
        "run the statement again",
    ),
    ((dx.SchemaMismatchError,), DataError, "the data does not match the table's schema: {e}", None),
    (
        (dx.DeltaProtocolError,),
        NotSupportedError,
        "the table uses a Delta feature lakesql cannot write: {e}",
        None,
    ),
    ((dx.DeltaError, OSError), OperationalError, "Delta operation on {path} failed: {e}", None),
    ((ValueError, TypeError, pa.ArrowInvalid), DataError, "{e}", None),
    ((Exception,), OperationalError, "Delta operation on {path} failed: {e}", None),
]


def _translate(e: Exception, path: str) -> Error:
    for classes, error, message, hint in _TRANSLATION:
        if isinstance(e, classes):
            return error(message.format(path=path, e=e), hint=hint)
    raise AssertionError("unreachable: the table ends with Exception")


def _guard(path: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except Error:
        raise
    except Exception as e:  # translated once, here, by class
        raise _translate(e, path) from e


def _props(sql: str, operation: str, extra: Mapping[str, str] | None = None) -> CommitProperties:
    meta = {SQL_KEY: sql, OPERATION_KEY: operation, **(extra or {})}
    return CommitProperties(custom_metadata=meta)


def is_table(path: str | Path) -> bool:
    """True when `path` holds a committed Delta table."""
    log = Path(path) / "_delta_log"
    return log.is_dir() and any(p.suffix in (".json", ".parquet") for p in log.iterdir())


def open_table(path: str, version: int | str | datetime | None = None) -> DeltaTable:
    """Open the newest (or a given) version of the table at `path`."""

    def go() -> DeltaTable:
        dt = DeltaTable(path)
        if version is not None:
            dt.load_as_version(version)
        if isinstance(version, (str, datetime)):
            _check_existed_at(dt, path, version)
        return dt

    try:
        return go()
    except Exception as e:
        if version is not None and not isinstance(e, dx.TableNotFoundError):
            raise ProgrammingError(
                f"version {version!r} of table at {path} does not exist or was vacuumed: {e}",
                hint="DESCRIBE HISTORY lists the versions",
            ) from e
        raise _translate(e, path) from e


def _check_existed_at(dt: DeltaTable, path: str, when: str | datetime) -> None:
    """delta-rs loads version 0 for a time before the table existed: refuse that.

    delta-rs dates versions by their log files' modification times, so the first log file's is
    the time the table came to exist.
    """
    if dt.version() != 0:
        return
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    try:
        created = Path(path, "_delta_log", f"{0:020d}.json").stat().st_mtime
    except OSError:  # log cleaned up after a checkpoint: cannot tell, keep delta-rs's answer
        return
    if moment.timestamp() < created - 0.001:
        first = datetime.fromtimestamp(created, tz=moment.tzinfo)
        raise ValueError(
            f"the table did not exist yet at {moment.isoformat()}: its first version was "
            f"committed at {first.isoformat()}"
        )


def snapshot(path: str, version: int | str | datetime | None = None) -> Snapshot:
    """Describe one version of a table (default: the newest) for readers."""
    dt = open_table(path, version)
    return _guard(path, lambda: _snapshot(dt, path))


def _snapshot(dt: DeltaTable, path: str) -> Snapshot:
    proto = dt.protocol()
    meta = dt.metadata()
    features = set(proto.reader_features or [])
    mapping = (meta.configuration or {}).get("delta.columnMapping.mode", "none")
    plain = not (features & _NEEDS_EXTENSION) and mapping in (None, "none")
    files, rows = _in_commit_order(dt, path)
    return Snapshot(
        path=path,
        version=dt.version(),
        files=files,
        rows=rows,
        schema=pa.schema(dt.schema().to_arrow()),
        partition_columns=list(meta.partition_columns),
        comment=meta.description,
        plain_parquet=plain,
    )


def _in_commit_order(dt: DeltaTable, path: str) -> tuple[list[str], list[int | None] | None]:
    """The snapshot's files as local paths, oldest first, so a scan returns rows in insertion
    order, and their row counts (None when the log does not say).

    delta-rs lists files newest commit first; DuckDB (and users) expect a table's rows in the
    order they were inserted. Files are ordered by their add action's modification time (the
    listing reversed first, so files of one millisecond keep commit order).

    Paths: an add action's `path` is a URI relative to the table (percent-encoded: the partition
    folder `k=x%20y` on disk is `k=x%2520y` in the log), so the file is the table folder joined
    with the path decoded once. `DeltaTable.file_uris()` is neither: it percent-encodes the table
    folder (`caf%C3%A9/...`) but not the relative part, so it is only used, with its table-folder
    prefix replaced, when the add actions cannot be read.
    """
    try:
        actions = pa.table(dt.get_add_actions(flatten=False))
        times = actions.column("modification_time").to_pylist()
        paths = actions.column("path").to_pylist()
        counts = actions.column("num_records").to_pylist()
    except Exception:  # an older/newer deltalake without these columns: keep its order
        return [_from_file_uri(u, path) for u in dt.file_uris()], None
    files = [local_file(path, p) for p in paths]
    order = sorted(range(len(files) - 1, -1, -1), key=lambda i: times[i] or 0)
    return [files[i] for i in order], [counts[i] for i in order]


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def local_file(table: str, action_path: str) -> str:
    """The local file of an add action's `path` (a relative or `file://` URI) in table `table`.

    Raises:
        NotSupportedError: a file on another file system.
        OperationalError: a relative path leading out of the table's folder.
    """
    from urllib.parse import unquote, urlsplit

    if _URI.match(action_path):
        parts = urlsplit(action_path)
        if parts.scheme != "file":
            raise NotSupportedError(
                f"the table at {table} references a file outside the local file system: "
                f"{action_path}"
            )
        return unquote(parts.path)  # an absolute URI (e.g. a shallow clone's files)
    relative = unquote(action_path)
    if relative.startswith("/") or ".." in Path(relative).parts:
        raise OperationalError(
            f"the log of the table at {table} names a file outside its folder: {action_path}"
        )
    return str(Path(table, relative))


def _from_file_uri(uri: str, table: str) -> str:
    """A local path from one of `DeltaTable.file_uris()`: the table folder percent-encoded (as
    many `/`-separated parts as `table` has), the rest as on disk."""
    from urllib.parse import unquote, urlsplit

    if uri.startswith("file:"):
        uri = urlsplit(uri).path
    root = Path(table)
    depth = len(root.parts) - 1  # parts after the leading '/'
    pieces = uri.lstrip("/").split("/")
    if "/".join(unquote(p) for p in pieces[:depth]) != "/".join(root.parts[1:]):
        return unquote(uri)  # not under the table folder: an absolute file
    return str(root.joinpath(*pieces[depth:]))


def file_url(path: str) -> str:
    """The `file://` URL of a local table folder, percent-encoded.

    DuckDB's delta extension (1.5.5) loses the non-ASCII characters of a plain path when it joins
    it with a partition folder (`café/k=1/...` is read as `caf/k=1/...`); the URL form is read
    right for every name.
    """
    from urllib.parse import quote

    return "file://" + quote(str(Path(path).resolve()))


def create_empty(
    path: str, schema: pa.Schema, *, partition_by: list[str], comment: str | None, sql: str
) -> None:
    """Create an empty table (CREATE TABLE t (cols))."""
    _guard(
        path,
        lambda: DeltaTable.create(
            path,
            Schema.from_arrow(schema),
            mode="error",
            partition_by=partition_by or None,
            description=comment,
            commit_properties=_props(sql, "CREATE TABLE"),
        ),
    )


def write(
    path: str,
    data: pa.RecordBatchReader,
    *,
    mode: str,
    sql: str,
    operation: str,
    partition_by: list[str] | None = None,
    comment: str | None = None,
    replace_schema: bool = False,
    read_version: int | None = None,
) -> int:
    """Write a stream of record batches in one commit and return the new version.

    Args:
        path: table folder.
        data: the rows; consumed once, batch by batch.
        mode: 'error' (create), 'append' or 'overwrite'.
        sql: the statement text stored in the commit info.
        operation: the lakesql operation name stored beside it (UPDATE, MERGE, ...).
        partition_by: partition columns when creating.
        comment: table description when creating.
        replace_schema: let an overwrite change the schema (CREATE OR REPLACE).
        read_version: the version the new rows were computed from; a commit made since then by
            another writer makes this write a conflict instead of silently losing it.

    Raises:
        ConflictError, DataError, OperationalError.
    """

    failure: list[Error] = []  # a lakesql error raised by `data`, which delta-rs turns into text
    data, properties = _date_statistics(data)

    def relay() -> Iterator[pa.RecordBatch]:
        try:
            yield from batches(data)
        except Error as e:
            failure.append(e)
            raise

    def go() -> int:
        target: str | DeltaTable = path
        if read_version is not None:
            target = open_table(path, read_version)
        writer: Any = write_deltalake  # `mode` is checked by the callers, not per overload
        writer(
            target,
            pa.RecordBatchReader.from_batches(data.schema, relay()),
            mode=mode,
            partition_by=partition_by or None,
            description=comment,
            schema_mode="overwrite" if replace_schema else None,
            commit_properties=_props(sql, operation),
            writer_properties=properties,
        )
        return DeltaTable(path).version()

    try:
        return _guard(path, go)
    except Error as e:
        if failure and e is not failure[0]:
            raise failure[0] from e
        raise


# delta-rs computes a DATE column's file statistics with chrono, whose dates end at year 262142:
# a DATE beyond (DuckDB's reach year 5,881,580) panics the writer
_DATE_DAYS_LIMIT = 95_000_000  # about year 262,000 either side of 1970


def _date_statistics(data: pa.RecordBatchReader) -> tuple[pa.RecordBatchReader, Any]:
    """(the same rows, WriterProperties or None): file statistics are left out for the columns
    holding, in the first batch, a DATE beyond delta-rs's date range (for all columns when it is
    nested in a list or struct).

    Raises (while the rows are read):
        DataError: such a date in a later batch, in a column whose statistics are being kept.
    """
    dates = [f.name for f in data.schema if _has_date(f.type)]
    if not dates:
        return data, None
    try:
        first: pa.RecordBatch | None = data.read_next_batch()
    except StopIteration:
        first = None
    off = [n for n in dates if first is not None and _beyond(first.column(n))]
    kept = [n for n in dates if n not in off]

    def rows() -> Iterator[pa.RecordBatch]:
        if first is None:
            return
        yield first
        for batch in batches(data):
            bad = [n for n in kept if _beyond(batch.column(n))]
            if bad:
                raise DataError(
                    f"column {bad[0]!r} has a DATE beyond year 262,000, which Delta file "
                    "statistics (delta-rs) cannot hold, after the statement's first rows",
                    hint="write the rows with such dates in a statement of their own first",
                )
            yield batch

    properties = None
    if off:
        from deltalake import ColumnProperties, WriterProperties

        none = ColumnProperties(statistics_enabled="NONE")
        nested = any(not pa.types.is_date(data.schema.field(n).type) for n in off)
        properties = (
            WriterProperties(default_column_properties=none)
            if nested
            else WriterProperties(column_properties={n: none for n in off})
        )
    return pa.RecordBatchReader.from_batches(data.schema, rows()), properties


def _has_date(t: pa.DataType) -> bool:
    if pa.types.is_date(t):
        return True
    return any(_has_date(t.field(i).type) for i in range(t.num_fields))


def _beyond(col: pa.Array | pa.ChunkedArray) -> bool:
    """Whether `col` holds a DATE (at any depth) beyond _DATE_DAYS_LIMIT days from 1970."""
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        return any(_beyond(c) for c in col.chunks)
    t = col.type
    if pa.types.is_date32(t) or pa.types.is_date64(t):
        days = (
            col.cast(pa.int32())
            if pa.types.is_date32(t)
            else pc.divide(col.cast(pa.int64()), 86_400_000)
        )
        low, high = pc.min_max(days).values()
        return low.is_valid and max(abs(low.as_py()), abs(high.as_py())) > _DATE_DAYS_LIMIT
    if isinstance(col, (pa.ListArray, pa.LargeListArray, pa.FixedSizeListArray)):
        return _has_date(t) and _beyond(col.flatten())
    if isinstance(col, pa.MapArray):
        return _beyond(col.keys) or _beyond(col.items)
    if isinstance(col, pa.StructArray):
        return any(_beyond(col.field(i)) for i in range(t.num_fields) if _has_date(t.field(i).type))
    return False


def append(
    path: str,
    rows: Callable[[], pa.RecordBatchReader],
    *,
    sql: str,
    operation: str,
    attempts: int = 8,
) -> int:
    """Append in one commit, retrying when a concurrent commit wins the race.

    For blind appends only: rows that do not depend on the table's contents (INSERT ... VALUES,
    INSERT ... SELECT from other tables, COPY FROM). delta-rs refuses such an append when a
    concurrent UPDATE/DELETE/MERGE (an overwrite here) committed first, although appending the
    same rows on top of that commit is exactly right; so the rows (`rows()`, called once per try)
    are appended again. Files of a failed try are never referenced (VACUUM removes them).

    Raises:
        ConflictError: still losing the race after `attempts` tries.
    """
    import random
    import time

    for attempt in range(attempts):
        try:
            return write(path, rows(), mode="append", sql=sql, operation=operation)
        except ConflictError:
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


def history(path: str) -> list[dict[str, Any]]:
    """Commit infos, newest first."""
    return _guard(path, lambda: DeltaTable(path).history())


def restore(path: str, target: int | str, *, sql: str) -> int:
    """Restore the table to an older version or timestamp; returns the new version."""

    def go() -> int:
        if isinstance(target, str):
            open_table(path, target)  # refuses a time before the table existed
        dt = DeltaTable(path)
        dt.restore(target, commit_properties=_props(sql, "RESTORE"))
        return DeltaTable(path).version()

    try:
        return go()
    except Exception as e:
        raise ProgrammingError(
            f"cannot restore {path} to {target!r}: {e}", hint="DESCRIBE HISTORY lists the versions"
        ) from e


def optimize(path: str, zorder: list[str], *, sql: str) -> dict[str, Any]:
    """Compact small files (and Z-order when columns are given)."""

    def go() -> dict[str, Any]:
        dt = DeltaTable(path)
        props = _props(sql, "OPTIMIZE")
        if zorder:
            return dt.optimize.z_order(zorder, commit_properties=props)
        return dt.optimize.compact(commit_properties=props)

    return _guard(path, go)


def vacuum(path: str, retain_hours: int | None, *, dry_run: bool, sql: str) -> list[str]:
    """Delete files no longer referenced by versions younger than the retention.

    Returns the files (relative to the table folder) deleted, or that a dry run would delete.
    delta-rs lists the files of old tombstones on every run, even once they are gone: those are
    left out, and a vacuum with nothing on disk to delete commits nothing.
    """

    def go() -> list[str]:
        dt = DeltaTable(path)
        listed = dt.vacuum(
            retention_hours=retain_hours, dry_run=True, enforce_retention_duration=False
        )
        on_disk = [Path(path, f) for f in listed]
        found = [str(p.relative_to(path)) for p in on_disk if p.exists()]
        if dry_run or not found:
            return found
        dt.vacuum(
            retention_hours=retain_hours,
            dry_run=False,
            enforce_retention_duration=False,
            commit_properties=_props(sql, "VACUUM"),
        )
        return found

    return _guard(path, go)


def add_columns(path: str, fields: pa.Schema, *, sql: str) -> None:
    """Add nullable columns (ALTER TABLE ADD COLUMN)."""
    delta_fields: list[Field] = list(Schema.from_arrow(fields).fields)
    _guard(
        path,
        lambda: DeltaTable(path).alter.add_columns(
            delta_fields, commit_properties=_props(sql, "ADD COLUMNS")
        ),
    )


def set_field_metadata(
    path: str, column: str, metadata: dict[str, str], *, sql: str, operation: str
) -> int:
    """Set keys of one column's metadata (CREATE/DROP INDEX) in one commit; the new version."""

    def go() -> int:
        dt = DeltaTable(path)
        dt.alter.set_column_metadata(column, metadata, commit_properties=_props(sql, operation))
        return DeltaTable(path).version()

    return _guard(path, go)


def remove_table(path: str) -> None:
    """Delete a table's folder (DROP TABLE)."""
    _guard(path, lambda: shutil.rmtree(path))


def batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """Iterate a reader (helper for wrappers that check or cast each batch)."""
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


# -- Arrow schema for Delta -----------------------------------------------------------------


def _delta_type(t: pa.DataType, column: str) -> pa.DataType:
    """The Arrow type Delta can store for `t` (widened where Delta lacks the type)."""
    if pa.types.is_uint8(t):
        return pa.int16()
    if pa.types.is_uint16(t):
        return pa.int32()
    if pa.types.is_uint32(t):
        return pa.int64()
    if pa.types.is_uint64(t):
        return pa.decimal128(20, 0)
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_string_view(t) or pa.types.is_large_string(t):
        return pa.string()
    if (
        pa.types.is_binary_view(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return _delta_type(t.value_type, column)
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_null(t):
        raise DataError(
            f"column {column!r} has no type (all NULL)",
            hint="CAST it to a type, e.g. CAST(NULL AS INTEGER)",
        )
    if pa.types.is_time(t) or pa.types.is_interval(t) or pa.types.is_duration(t):
        raise NotSupportedError(
            f"column {column!r} has type {t}, which Delta Lake cannot store",
            hint="cast it to VARCHAR, or to a number of seconds",
        )
    if pa.types.is_decimal(t) and t.precision > 38:
        return pa.float64()
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_fixed_size_list(t)
    ):
        return pa.list_(pa.field("element", _delta_type(t.value_type, column), True))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _delta_type(f.type, column), True) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_delta_type(t.key_type, column), _delta_type(t.item_type, column))
    return t


def column_problem(name: str) -> str | None:
    """Why `name` cannot name a column of a Delta table (None when it can): empty, a control
    character (delta-rs refuses them in partition folders, and they make names look alike), or a
    lone surrogate (no UTF-8 form)."""
    import unicodedata

    if not name:
        return "it is empty"
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"it contains the control character U+{ord(ch):04X}"
        if category == "Cs":
            return f"it contains the lone surrogate U+{ord(ch):04X}"
    return None


def check_column_names(schema: pa.Schema) -> None:
    """Raise ProgrammingError for the first column (or struct field) `column_problem` refuses."""

    def walk(t: pa.DataType) -> Iterator[str]:
        if pa.types.is_struct(t):
            for f in t:
                yield f.name
                yield from walk(f.type)
        elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            yield from walk(t.value_type)
        elif pa.types.is_map(t):
            yield from walk(t.key_type)
            yield from walk(t.item_type)

    for field in schema:
        for name in [field.name, *walk(field.type)]:
            problem = column_problem(name)
            if problem is not None:
                raise ProgrammingError(
                    f"invalid column name {name!r}: {problem}",
                    hint="give the column another name (an alias)",
                )


def delta_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every type replaced by one Delta can store.

    Raises:
        DataError, NotSupportedError: for columns without a Delta equivalent (TIME, INTERVAL).
    """
    seen: set[str] = set()
    check_column_names(schema)
    for name in schema.names:
        if name.lower() in seen:
            raise DataError(
                f"duplicate column name {name!r}", hint="give the columns distinct aliases"
            )
        seen.add(name.lower())
    return pa.schema(
        [
            pa.field(f.name, _delta_type(f.type, f.name), f.nullable, metadata=f.metadata)
            for f in schema
        ]
    )


def conform(reader: pa.RecordBatchReader, target: pa.Schema) -> pa.RecordBatchReader:
    """Cast each batch to `target`, checking NOT NULL columns as the batches stream by."""
    required = [f.name for f in target if not f.nullable]

    def gen() -> Iterator[pa.RecordBatch]:
        for batch in batches(reader):
            if batch.schema.names != target.names:
                batch = pa.RecordBatch.from_arrays(batch.columns, names=target.names)
            for name in required:
                if batch.column(name).null_count:
                    from lakesql.errors import IntegrityError

                    raise IntegrityError(
                        f"NOT NULL constraint failed: column {name!r} received NULL"
                    )
            try:
                yield batch.cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise DataError(f"cannot store the rows in the table's types: {e}") from e

    return pa.RecordBatchReader.from_batches(target, gen())


def upsert(
    path: str, data: pa.RecordBatchReader, keys: list[str], *, sql: str, operation: str
) -> int:
    """Make the table's rows equal `data`, matching rows by `keys`, in one commit.

    Rows whose values did not change are not rewritten; rows missing from `data` are deleted.
    Returns the new version.
    """

    def col(alias: str, name: str) -> str:
        return f'{alias}."{name}"'

    def go() -> int:
        dt = DeltaTable(path)
        names = data.schema.names
        on = " AND ".join(f"{col('t', k)} = {col('s', k)}" for k in keys)
        changed = " OR ".join(
            f"({col('t', c)} IS DISTINCT FROM {col('s', c)})" for c in names if c not in keys
        )
        merger = dt.merge(
            source=data,
            predicate=on,
            source_alias="s",
            target_alias="t",
            commit_properties=_props(sql, operation),
        )
        if changed:
            merger = merger.when_matched_update_all(predicate=changed)
        merger.when_not_matched_insert_all().when_not_matched_by_source_delete().execute()
        return DeltaTable(path).version()

    return _guard(path, go)
