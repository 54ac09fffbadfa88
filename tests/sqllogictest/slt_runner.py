"""A sqllogictest runner for DuckDB's own test files, run through any PEP 249-like connection.

The same runner executes a file through ``duckdb.connect()`` and through ``lakesql.connect()``;
`test_sqllogictest.py` compares the two. Supported (the subset DuckDB's test files use):

* ``statement ok|error|maybe`` (an ``error`` may be followed by ``----`` and the expected message,
  a substring or ``<REGEX>:pattern`` / ``<!REGEX>:pattern``);
* ``query <types> [nosort|rowsort|sort|valuesort] [label]`` + ``----`` + expected values, one row per
  line with tab-separated columns or one value per line, or ``N values hashing to <md5>``;
* ``skipif <engine>`` / ``onlyif <engine>`` (this engine is ``duckdb``), ``require``, ``mode skip`` /
  ``mode unskip``, ``halt``, ``hash-threshold``, ``loop`` / ``foreach`` / ``concurrentloop`` /
  ``concurrentforeach`` … ``endloop`` with ``${var}`` substitution, ``set seed``.

A file needing what the runner cannot provide is skipped with a reason: a ``require`` of an
extension that is not loaded (or of a build option), ``load`` / ``restart`` / ``unzip`` / ``reconnect``
(persistent databases), or a data file that is not present.

Values are formatted the way DuckDB's runner formats them: each value is DuckDB's own VARCHAR cast
of it (``Value::ToString``), NULL as ``NULL``, the empty string as ``(empty)``. Comparison follows
DuckDB's runner too: equal text passes; otherwise numeric columns compare as numbers (floating point
with DuckDB's 1 % tolerance), booleans accept ``1``/``0``/``true``/``false``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

ENGINE_NAME = "duckdb"
SUMMARIES: list[str] = []  # one-line reports the test session prints at its end

# Extensions a runner can `require`: those loaded in a fresh DuckDB (the Python wheel's built-ins).
_BUILTIN_EXTENSIONS: set[str] | None = None

# `require` parameters that are build or machine properties, and whether this build has them.
_REQUIRE_PROPERTIES = {
    "skip_reload": True,  # the runner never reloads a database
    "notwindows": True,
    "windows": False,
    "notmusl": True,
    "64bit": True,
    "no_alternative_verify": True,  # no alternative verification is forced
    "noforcestorage": True,
    "longdouble": False,
    "ram": False,  # memory-hungry tests are not for a test run
    "disk_space": False,
    "exact_vector_size": False,
    "block_size": False,
    "no_extension_autoloading": False,
}
_STANDARD_VECTOR_SIZE = 2048

_FOREACH_MACROS = {
    "<signed>": ["tinyint", "smallint", "integer", "bigint", "hugeint"],
    "<unsigned>": ["utinyint", "usmallint", "uinteger", "ubigint", "uhugeint"],
    "<integral>": ["<signed>", "<unsigned>"],
    "<numeric>": ["<integral>", "float", "double"],
    "<alltypes>": ["bool", "interval", "varchar", "<numeric>"],
}

_HASH_LINE = re.compile(r"^(\d+) values hashing to ([0-9a-f]{32})$")
_NUMERIC_TYPES = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\))$"
)
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}
_PATH_LITERAL = re.compile(r"'((?:data|test|\{DATA_DIR\})/[^']*)'")


class SkipFile(Exception):
    """The file needs something the runner cannot provide."""


# -- parsing ---------------------------------------------------------------------------------


@dataclass
class Record:
    """One statement or query of a test file."""

    kind: str  # "statement" | "query" | "seed" | "halt" | "hash-threshold"
    line: int
    sql: str = ""
    expect: str = "ok"  # statement: ok | error | maybe
    error: str = ""  # expected error text (statement error)
    types: str = ""  # query column types
    sort: str = "nosort"  # nosort | rowsort | valuesort
    label: str = ""
    expected: list[str] = field(default_factory=list)
    connection: str = ""


@dataclass
class TestFile:
    path: Path
    records: list[Record]


def _expand_foreach(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v in _FOREACH_MACROS:
            out.extend(_expand_foreach(_FOREACH_MACROS[v]))
        else:
            out.append(v)
    return out


def _expand_loops(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Unroll loop/foreach blocks (nested too), substituting ${var} in their bodies."""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        no, text = lines[i]
        words = text.split()
        if words and words[0] in {"loop", "foreach", "concurrentloop", "concurrentforeach"}:
            depth = 1
            j = i + 1
            while j < len(lines):
                w = lines[j][1].split()
                if w and w[0] in {"loop", "foreach", "concurrentloop", "concurrentforeach"}:
                    depth += 1
                elif w and w[0] == "endloop":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(lines):
                raise SkipFile(f"line {no}: {words[0]} without endloop")
            body = _expand_loops(lines[i + 1 : j])
            var = words[1]
            if words[0].endswith("loop"):
                values = [str(k) for k in range(int(words[2]), int(words[3]))]
            else:
                values = _expand_foreach(words[2:])
            for value in values:
                out.extend((n, t.replace("${" + var + "}", value)) for n, t in body)
                out.append((no, ""))  # keep records apart
            i = j + 1
        else:
            out.append((no, text))
            i += 1
    return out


def _require(param: list[str]) -> None:
    global _BUILTIN_EXTENSIONS
    what = param[0]
    if what == "vector_size":
        if int(param[1]) > _STANDARD_VECTOR_SIZE:
            raise SkipFile(f"require vector_size {param[1]}")
        return
    if what in _REQUIRE_PROPERTIES:
        if not _REQUIRE_PROPERTIES[what]:
            raise SkipFile(f"require {' '.join(param)}")
        return
    if _BUILTIN_EXTENSIONS is None:
        with duckdb.connect() as con:
            rows = con.execute(
                "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
            ).fetchall()
        _BUILTIN_EXTENSIONS = {r[0] for r in rows}
    if what not in _BUILTIN_EXTENSIONS:
        raise SkipFile(f"require {what} (extension not loaded)")


def parse(path: Path, corpus_root: Path | None = None) -> TestFile:
    """Parse a test file.

    Raises:
        SkipFile: the file needs a feature the runner does not provide.
    """
    raw = path.read_text(encoding="utf-8", errors="replace").splitlines()
    lines = _expand_loops(list(enumerate(raw, start=1)))
    records: list[Record] = []
    pending: list[tuple[str, str]] = []  # (skipif|onlyif, engine) for the next record
    skipping = False
    i = 0
    n = len(lines)
    while i < n:
        no, text = lines[i]
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        words = stripped.split()
        cmd = words[0]
        i += 1
        if cmd in {"skipif", "onlyif"}:
            pending.append((cmd, words[1] if len(words) > 1 else ""))
            continue
        if cmd == "mode":
            if words[1:2] == ["skip"]:
                skipping = True
            elif words[1:2] == ["unskip"]:
                skipping = False
            continue  # output_result, debug, ...: nothing to do
        if cmd == "require":
            _require(words[1:])
            continue
        if cmd == "require-env":
            raise SkipFile(f"require-env {' '.join(words[1:])}")
        if cmd in {"load", "restart", "reconnect", "unzip"}:
            raise SkipFile(f"{cmd}: needs a persistent database")
        if cmd in {"statement", "query"}:
            sql_lines: list[str] = []
            while i < n and lines[i][1].strip() and lines[i][1].strip() != "----":
                sql_lines.append(lines[i][1])
                i += 1
            result: list[str] = []
            if i < n and lines[i][1].strip() == "----":
                i += 1
                while i < n and lines[i][1] != "":
                    result.append(lines[i][1])
                    i += 1
            rec = Record(kind=cmd, line=no, sql="\n".join(sql_lines))
            if cmd == "statement":
                rec.expect = words[1] if len(words) > 1 else "ok"
                if rec.expect not in {"ok", "error", "maybe"}:
                    raise SkipFile(f"line {no}: statement {rec.expect}")
                rec.connection = words[2] if len(words) > 2 else ""
                rec.error = "\n".join(result).strip()
            else:
                rec.types = words[1] if len(words) > 1 else ""
                rest = words[2:]
                if rest and rest[0] in {"nosort", "rowsort", "sort", "valuesort"}:
                    rec.sort = "rowsort" if rest[0] == "sort" else rest[0]
                    rest = rest[1:]
                if rest:
                    rec.label = rest[0]
                rec.expected = result
            skip = skipping
            for kind, engine in pending:
                if (kind == "skipif") == (engine == ENGINE_NAME):
                    skip = True
            pending = []
            if not skip:
                records.append(rec)
            continue
        if cmd == "halt":
            if not skipping:
                records.append(Record(kind="halt", line=no))
            continue
        if cmd == "hash-threshold":
            continue
        if cmd == "set" and words[1:2] == ["seed"]:
            records.append(Record(kind="statement", line=no, sql=f"SELECT setseed({words[2]})"))
            continue
        if cmd in {"endloop"}:
            continue
        raise SkipFile(f"line {no}: unsupported runner command {cmd!r}")
    if corpus_root is not None:
        for rec in records:
            for ref in _PATH_LITERAL.findall(rec.sql):
                ref = ref.replace("{DATA_DIR}", "data")
                if not (corpus_root / ref).exists():
                    raise SkipFile(f"data file {ref} is not present")
    return TestFile(path, records)


# -- formatting and comparison -----------------------------------------------------------------

_FORMATTER: Any = None
# Types Arrow cannot carry exactly (TIMETZ offsets, BIT strings, HUGEINT extremes, BIGNUM):
# results holding them are fetched as Python values and cast back to their type, one by one.
_LOSSY = re.compile(r"TIME WITH TIME ZONE|TIMETZ|\b(BIT|UHUGEINT|BIGNUM|VARINT)\b")


def _formatter() -> Any:
    global _FORMATTER
    if _FORMATTER is None:
        _FORMATTER = duckdb.connect()
        _FORMATTER.execute("SET TimeZone = 'UTC'")
    return _FORMATTER


def _text(v: Any) -> str:
    return "NULL" if v is None else (v if v != "" else "(empty)")


def fetch_values(cur: Any, fetch_arrow: Callable[[Any], pa.Table]) -> tuple[list[str], list[str]]:
    """(column types, values row-major as DuckDB's runner prints them) of a pending result.

    Each value is DuckDB's VARCHAR cast of it (what ``Value::ToString`` prints), done in a separate
    DuckDB connection over the Arrow result, so any engine with a PEP 249 cursor and Arrow
    export is formatted the same way.
    """
    types = [str(d[1]) for d in cur.description]
    fmt = _formatter()
    if any(_LOSSY.search(t) for t in types):
        rows = cur.fetchall()
        values = []
        for row in rows:
            for v, t in zip(row, types, strict=True):
                if v is None or (isinstance(v, str) and not _LOSSY.search(t)):
                    values.append(_text(v))
                    continue
                try:
                    got = fmt.execute(f"SELECT CAST(CAST(? AS {t}) AS VARCHAR)", [v]).fetchone()
                    values.append(_text(got[0] if got else None))
                except duckdb.Error:
                    values.append(str(v))
        return types, values
    table = fetch_arrow(cur)
    names = [f"c{i}" for i in range(table.num_columns)]
    if not names:
        return types, []
    table = table.rename_columns(names)
    # HUGEINT arrives as DECIMAL(38,0), which cannot hold its extremes: print those in Python.
    python = {
        i
        for i, f in enumerate(table.schema)
        if pa.types.is_decimal(f.type) and f.type.scale == 0 and f.type.precision == 38
    }
    casts = ", ".join(
        f'CAST("{c}" AS VARCHAR)' if i not in python else "NULL" for i, c in enumerate(names)
    )
    fmt.register("__slt_result", table)
    try:
        rows = fmt.execute(f"SELECT {casts} FROM __slt_result").fetchall()
    finally:
        fmt.unregister("__slt_result")
    if python:
        columns = {i: table.column(i).to_pylist() for i in python}
        rows = [
            tuple(
                (None if columns[i][r] is None else str(columns[i][r])) if i in python else v
                for i, v in enumerate(row)
            )
            for r, row in enumerate(rows)
        ]
    return types, [_text(v) for row in rows for v in row]


def _approx_equal(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    return abs(a - b) <= abs(b) * 0.01 + 1e-8


def _as_number(text: str) -> Decimal | float | None:
    t = text.strip().lower()
    if t in {"nan", "-nan"}:
        return float("nan")
    if t in {"inf", "infinity", "+inf"}:
        return float("inf")
    if t in {"-inf", "-infinity"}:
        return float("-inf")
    try:
        return Decimal(t)
    except InvalidOperation:
        return None


def values_equal(actual: str, expected: str, sql_type: str) -> bool:
    """DuckDB's runner comparison of one value."""
    if actual == expected:
        return True
    if expected.startswith("<REGEX>:"):
        return re.fullmatch(expected[8:], actual, re.S) is not None
    if expected.startswith("<!REGEX>:"):
        return re.fullmatch(expected[9:], actual, re.S) is None
    if _NUMERIC_TYPES.match(sql_type):
        if actual == "NULL" or expected == "NULL":
            return False
        a, b = _as_number(actual), _as_number(expected)
        if a is None or b is None:
            return False
        if sql_type in _FLOAT_TYPES:
            return _approx_equal(float(a), float(b))
        if isinstance(a, float) or isinstance(b, float):
            return False
        scale = 0
        if sql_type.startswith("DECIMAL"):
            scale = int(sql_type.rstrip(")").split(",")[1])
        with localcontext() as ctx:
            ctx.prec = 100
            q = Decimal(1).scaleb(-scale)
            try:
                return a.quantize(q, ROUND_HALF_UP) == b.quantize(q, ROUND_HALF_UP)
            except InvalidOperation:
                return False
    if sql_type == "BOOLEAN":
        truth = {"true": 1, "1": 1, "false": 0, "0": 0}
        a2, b2 = truth.get(actual.lower()), truth.get(expected.lower())
        return a2 is not None and a2 == b2
    return False


def _sort(values: list[str], ncols: int, style: str) -> list[str]:
    if style == "valuesort":
        return sorted(values)
    if style == "rowsort" and ncols:
        rows = [values[i : i + ncols] for i in range(0, len(values), ncols)]
        rows.sort()
        return [v for r in rows for v in r]
    return values


def result_hash(values: list[str]) -> str:
    digest = hashlib.md5("".join(v + "\n" for v in values).encode()).hexdigest()
    return f"{len(values)} values hashing to {digest}"


def check_query(rec: Record, types: list[str], values: list[str], labels: dict[str, str]) -> str:
    """'' when the result matches the record, else what differs."""
    ncols = len(types)
    values = _sort(values, ncols, rec.sort)
    expected = rec.expected
    if rec.label:
        h = result_hash(values)
        if rec.label in labels and labels[rec.label] != h:
            return f"result differs from the earlier query labelled {rec.label!r}"
        labels.setdefault(rec.label, h)
    if len(expected) == 1 and _HASH_LINE.match(expected[0].strip()):
        got = result_hash(values)
        return "" if got == expected[0].strip() else f"expected {expected[0]}, got {got}"
    if not expected and rec.label:
        return ""
    if rec.types and ncols != len(rec.types):
        return f"expected {len(rec.types)} columns, got {ncols}"
    nrows = len(values) // ncols if ncols else 0
    if ncols > 1 and len(expected) == nrows:
        flat = []
        for line in expected:
            parts = [p for p in line.split("\t") if p]  # as DuckDB's Split: no empty parts
            if len(parts) != ncols:
                return f"expected row {line!r} does not have {ncols} columns"
            flat.extend(parts)
    else:
        flat = list(expected)
    flat = _sort(flat, ncols, rec.sort)
    if len(flat) != len(values):
        return f"expected {len(flat)} values, got {len(values)}: {_preview(values, ncols)}"
    for k, (a, b) in enumerate(zip(values, flat, strict=True)):
        if not values_equal(a, b, types[k % ncols]):
            return (
                f"row {k // ncols + 1}, column {k % ncols + 1} ({types[k % ncols]}): "
                f"expected {b!r}, got {a!r}"
            )
    return ""


def _preview(values: list[str], ncols: int, rows: int = 5) -> str:
    if not ncols:
        return "[]"
    out = [
        "\t".join(values[i : i + ncols]) for i in range(0, min(len(values), rows * ncols), ncols)
    ]
    more = " ..." if len(values) > rows * ncols else ""
    return repr(out) + more


def error_matches(message: str, expected: str) -> bool:
    if not expected:
        return True
    if expected.startswith("<REGEX>:"):
        return re.fullmatch(expected[8:], message, re.S) is not None
    if expected.startswith("<!REGEX>:"):
        return re.fullmatch(expected[9:], message, re.S) is None
    return expected in message


# -- running -----------------------------------------------------------------------------------


class Adapter:
    """How the runner talks to an engine: a connection factory plus its error class."""

    name = "?"
    error: type[Exception] = Exception

    def __init__(self, work_dir: Path):
        self.work_dir = work_dir

    def open(self) -> Any:  # a PEP 249 connection
        raise NotImplementedError

    def cursor(self, con: Any) -> Any:
        return con.cursor()

    def arrow(self, cur: Any) -> pa.Table:
        """The pending result as an Arrow table."""
        return cur.fetch_arrow_table()

    def message(self, e: Exception) -> str:
        return str(e)


class DuckDBAdapter(Adapter):
    name = "duckdb"
    error = duckdb.Error

    def open(self) -> Any:
        return duckdb.connect(":memory:")

    def arrow(self, cur: Any) -> pa.Table:
        return cur.to_arrow_table()


@dataclass
class Failure:
    line: int
    sql: str
    reason: str
    error: str = ""  # the engine's error message when the statement failed unexpectedly
    error_class: str = ""


@dataclass
class FileResult:
    path: str
    status: str  # pass | fail | skip
    detail: str = ""
    failure: Failure | None = None
    statements: int = 0
    seconds: float = 0.0


def substitute(sql: str, test_dir: Path, corpus_root: Path) -> str:
    return (
        sql.replace("__TEST_DIR__", str(test_dir))
        .replace("{TEMP_DIR}", str(test_dir))
        .replace("__WORKING_DIRECTORY__", str(corpus_root))
        .replace("{DATA_DIR}", str(corpus_root / "data"))
    )


def run_file(
    path: Path,
    make_adapter: Callable[[Path], Adapter],
    corpus_root: Path,
    *,
    time_limit: float = 120.0,
) -> FileResult:
    """Run one test file; stops at the first record that does not behave as expected."""
    rel = str(path.relative_to(corpus_root)) if path.is_relative_to(corpus_root) else str(path)
    started = time.monotonic()
    try:
        tf = parse(path, corpus_root)
    except SkipFile as e:
        return FileResult(rel, "skip", str(e))
    cwd = os.getcwd()
    os.chdir(corpus_root)  # DuckDB's tests name their data files relative to the repository
    try:
        return _run_parsed(tf, rel, make_adapter, corpus_root, started, time_limit)
    finally:
        os.chdir(cwd)


def _run_parsed(
    tf: TestFile,
    rel: str,
    make_adapter: Callable[[Path], Adapter],
    corpus_root: Path,
    started: float,
    time_limit: float,
) -> FileResult:
    with tempfile.TemporaryDirectory(prefix="slt-") as tmp:
        test_dir = Path(tmp) / "testdir"
        test_dir.mkdir()
        adapter = make_adapter(Path(tmp))
        con = adapter.open()
        cursors: dict[str, Any] = {}
        labels: dict[str, str] = {}
        count = 0
        try:
            for rec in tf.records:
                if rec.kind == "halt":
                    break
                if time.monotonic() - started > time_limit:
                    return FileResult(
                        rel, "fail", "time limit", Failure(rec.line, rec.sql, "time limit"), count
                    )
                cur = cursors.get(rec.connection)
                if cur is None:
                    cur = cursors[rec.connection] = adapter.cursor(con)
                sql = substitute(rec.sql, test_dir, corpus_root)
                count += 1
                failure = _run_record(adapter, cur, rec, sql, labels)
                if failure is not None:
                    return FileResult(
                        rel, "fail", failure.reason, failure, count, time.monotonic() - started
                    )
        finally:
            for c in cursors.values():
                try:
                    c.close()
                except Exception:
                    pass
            try:
                con.close()
            except Exception:
                pass
    return FileResult(rel, "pass", "", None, count, time.monotonic() - started)


def _run_record(
    adapter: Adapter, cur: Any, rec: Record, sql: str, labels: dict[str, str]
) -> Failure | None:
    result: tuple[list[str], list[str]] | None = None
    try:
        cur.execute(sql)
        if rec.kind == "query":
            if cur.description is not None:
                result = fetch_values(cur, adapter.arrow)
            else:
                # PEP 249: a statement without rows reports its count in rowcount; DuckDB returns
                # it as a one-row "Count" result (and DDL as an empty one).
                count = getattr(cur, "rowcount", -1)
                result = (["BIGINT"], [str(count)] if count >= 0 else [])
        # a statement's rows are not fetched: execute() has run it to the end already
    except adapter.error as e:
        message = adapter.message(e)
        if rec.kind == "statement" and rec.expect in {"error", "maybe"}:
            if rec.expect == "error" and not error_matches(message, rec.error):
                return Failure(
                    rec.line,
                    sql,
                    "error message differs",
                    f"expected {rec.error!r}; got: {message}",
                    type(e).__name__,
                )
            return None
        return Failure(rec.line, sql, "unexpected error", message, type(e).__name__)
    if rec.kind == "statement":
        if rec.expect == "error":
            return Failure(rec.line, sql, "statement succeeded but an error was expected")
        return None
    assert result is not None
    types, values = result
    problem = check_query(rec, types, values, labels)
    if problem:
        return Failure(rec.line, sql, "wrong result", problem)
    return None


def corpus_files(corpus_root: Path, dirs: list[str] | None = None) -> Iterator[Path]:
    base = corpus_root / "test" / "sql"
    for d in dirs or sorted(p.name for p in base.iterdir() if p.is_dir()):
        yield from sorted((base / d).rglob("*.test"))
