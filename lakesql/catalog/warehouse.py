"""The warehouse folder is the catalog, so every process sees the same one.

Layout::

    <root>/<schema>/<table>/_delta_log/...   a Delta table per folder (schema `main` by default)
    <root>/_lakesql/<kind>/<name>.json       other catalog objects (functions, ...)

Names are validated before they touch the file system: they can never address a path outside
the warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakesql.errors import (
    CatalogError,
    ObjectExistsError,
    ProgrammingError,
    UnknownObjectError,
    suggest,
)

DEFAULT_SCHEMA = "main"
RESERVED_SCHEMAS = {"lakesql", "information_schema", "pg_catalog", "temp", "system"}
FEATURE_TABLES = "feature_tables"  # document kind of feature-table definitions (lakesql.features)


def feature_doc_name(schema: str, name: str) -> str:
    """The document name of feature table schema.name."""
    return f"{schema}__{name}"


MAX_NAME = 128
MAX_NAME_BYTES = 200
# Characters a name cannot hold, with the reason: each name is a folder (or file) name in the
# warehouse, written by delta-rs (which percent-decodes `%` and panics on `[`) and read by DuckDB
# (whose file lists expand `*`, `?` and `[...]` as globs).
_REFUSED = {
    "/": "a path separator",
    "\\": "a path separator",
    ".": "a dot (names are one folder; '.' and '..' address others)",
    "%": "a percent sign (delta-rs decodes %XX in table paths)",
    "~": "a tilde (home-folder expansion)",
    "*": "a glob character (DuckDB expands it in file lists)",
    "?": "a glob character (DuckDB expands it in file lists)",
    "[": "a glob character (DuckDB expands it in file lists)",
    "]": "a glob character (DuckDB expands it in file lists)",
}


def _ascii_lower(name: str) -> str:
    """`name` with ASCII letters lower-cased: DuckDB folds the case of ASCII letters only
    (`"CAFÉ"` and `"cafÉ"` are one table, `"café"` another), and so does lakesql."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a schema, table, model or function (None when it can).

    Any name DuckDB takes is allowed except: empty, longer than MAX_NAME characters (or
    MAX_NAME_BYTES bytes of UTF-8), a control character
    (U+0000-U+001F, U+007F-U+009F), a lone surrogate, a character of _REFUSED (also in its
    compatibility form, e.g. the two-dot leader U+2025 or the full-width solidus U+FF0F), a space
    first or last, or a first character that is `_` (lakesql's own folders: `_lakesql`,
    `_delta_log`) or a digit.
    """
    import unicodedata

    if not isinstance(name, str):
        return "it is not text"
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"it contains the control character U+{ord(ch):04X}"
        if category == "Cs":
            return f"it contains the lone surrogate U+{ord(ch):04X}"
    if len(name.encode()) > MAX_NAME_BYTES:  # a file name holds 255 bytes; '__v<n>.json' is added
        return f"it is longer than {MAX_NAME_BYTES} bytes in UTF-8"
    folded = unicodedata.normalize("NFKC", name)
    for ch in folded:
        if ch in _REFUSED:
            shown = repr(ch) if ch in name else f"{ch!r} (in a compatibility form)"
            return f"it contains {shown}, {_REFUSED[ch]}"
    if name[0].isspace() or name[-1].isspace() or folded.isspace():
        return "it starts or ends with a space (names that differ by invisible spaces)"
    if name[0] == "_" or folded[0] == "_":
        return "names starting with '_' are reserved for lakesql"
    if name[0].isdigit() or folded[0].isdigit():
        return "it starts with a digit"
    return None


def is_valid_name(name: str) -> bool:
    return name_problem(name) is None


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` with its ASCII letters lower-cased (as DuckDB compares names), or raise.

    Raises:
        ProgrammingError: saying why (see :func:`name_problem`).
    """
    problem = name_problem(name)
    if problem is not None:
        raise ProgrammingError(
            f"invalid {what} {name!r}: {problem}",
            hint="any name DuckDB accepts works, except empty names, control characters, "
            "/ \\ . % ~ * ? [ ], a space first or last, a leading '_' or digit, and more than "
            "128 characters",
        )
    return _ascii_lower(name)


def _committed(folder: Path) -> bool:
    """True when `folder` holds a Delta table with at least one commit.

    A writer killed before its first commit leaves a folder (data files, maybe an empty
    `_delta_log`) that is not a table: it is not listed, and CREATE TABLE can reuse the name.
    Checked with two stats in the common case (version 0 or a checkpoint is there).
    """
    log = folder / "_delta_log"
    if (log / "00000000000000000000.json").exists() or (log / "_last_checkpoint").exists():
        return True
    return log.is_dir() and any(True for _ in log.glob("*.json"))


@dataclass(frozen=True)
class TableRef:
    """A warehouse table: its schema, name and folder."""

    schema: str
    name: str
    path: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class Warehouse:
    """Catalog operations on a warehouse folder."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        (self.root / DEFAULT_SCHEMA).mkdir(parents=True, exist_ok=True)

    # -- schemas -------------------------------------------------------------------------------
    def schemas(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_valid_name(p.name))

    def schema_path(self, schema: str) -> Path:
        return self.root / validate_name(schema, "schema name")

    def require_schema(self, schema: str) -> str:
        schema = validate_name(schema, "schema name")
        if not (self.root / schema).is_dir():
            raise UnknownObjectError(
                f"schema {schema!r} does not exist",
                hint=suggest(schema, self.schemas()) or "create it with CREATE SCHEMA",
            )
        return schema

    def create_schema(self, schema: str, *, if_not_exists: bool = False) -> bool:
        schema = validate_name(schema, "schema name")
        if schema in RESERVED_SCHEMAS:
            raise ProgrammingError(f"schema name {schema!r} is reserved")
        path = self.root / schema
        if path.exists():
            if if_not_exists:
                return False
            raise ObjectExistsError(f"schema {schema!r} already exists", hint="use IF NOT EXISTS")
        path.mkdir()
        return True

    def drop_schema(self, schema: str, *, cascade: bool, if_exists: bool = False) -> bool:
        schema = validate_name(schema, "schema name")
        path = self.root / schema
        if not path.is_dir():
            if if_exists:
                return False
            raise UnknownObjectError(f"schema {schema!r} does not exist")
        if schema == DEFAULT_SCHEMA:
            raise ProgrammingError("the default schema 'main' cannot be dropped")
        tables = self.tables(schema)
        if tables and not cascade:
            raise CatalogError(
                f"schema {schema!r} holds {len(tables)} table(s): {', '.join(tables[:5])}",
                hint="drop them first, or use DROP SCHEMA ... CASCADE",
            )
        shutil.rmtree(path)
        return True

    # -- tables --------------------------------------------------------------------------------
    def tables(self, schema: str) -> list[str]:
        path = self.root / schema
        if not path.is_dir():
            return []
        return sorted(p.name for p in path.iterdir() if is_valid_name(p.name) and _committed(p))

    def all_tables(self) -> list[TableRef]:
        return [self.ref(s, t) for s in self.schemas() for t in self.tables(s)]

    def ref(self, schema: str | None, name: str) -> TableRef:
        schema = validate_name(schema or DEFAULT_SCHEMA, "schema name")
        name = validate_name(name, "table name")
        return TableRef(schema, name, str(self.root / schema / name))

    def exists(self, ref: TableRef) -> bool:
        log = Path(ref.path) / "_delta_log"
        return log.is_dir() and any(True for _ in log.glob("*.json"))

    def require(self, ref: TableRef) -> TableRef:
        """Return `ref` when the table exists, else raise with close names."""
        if self.exists(ref):
            return ref
        names = [t.qualified for t in self.all_tables()] + [t.name for t in self.all_tables()]
        hint = suggest(ref.name, names) or suggest(ref.qualified, names)
        raise UnknownObjectError(f"table {ref.qualified!r} does not exist", hint=hint)

    def log_stamp(self, ref: TableRef) -> int | None:
        """A cheap change marker of the table's log (the folder's mtime), None when absent."""
        try:
            return os.stat(os.path.join(ref.path, "_delta_log")).st_mtime_ns
        except FileNotFoundError:
            return None

    # -- other catalog objects (JSON documents) ------------------------------------------------
    def _doc_dir(self, kind: str) -> Path:
        path = self.root / "_lakesql" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def put_doc(self, kind: str, name: str, doc: dict[str, Any]) -> None:
        """Write a catalog document atomically (readers see the old or the new one)."""
        folder = self._doc_dir(kind)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True, default=str)
        os.replace(tmp, folder / f"{validate_name(name)}.json")

    def is_feature_table(self, ref: TableRef) -> bool:
        """True when `ref` is a feature table (its rows are written by REFRESH only)."""
        return self.get_doc(FEATURE_TABLES, feature_doc_name(ref.schema, ref.name)) is not None

    def get_doc(self, kind: str, name: str) -> dict[str, Any] | None:
        path = self._doc_dir(kind) / f"{validate_name(name)}.json"
        try:
            with open(path) as f:
                doc: dict[str, Any] = json.load(f)
                return doc
        except FileNotFoundError:
            return None

    def docs(self, kind: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(self._doc_dir(kind).glob("*.json")):
            if not path.name.startswith("."):
                with open(path) as f:
                    out[path.stem] = json.load(f)
        return out

    def delete_doc(self, kind: str, name: str) -> bool:
        path = self._doc_dir(kind) / f"{validate_name(name)}.json"
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False
