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
import re
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

_NAME = re.compile(r"^[^\W\d]\w*$", re.UNICODE)
DEFAULT_SCHEMA = "main"
RESERVED_SCHEMAS = {"lakesql", "information_schema", "pg_catalog", "temp", "system"}
FEATURE_TABLES = "feature_tables"  # document kind of feature-table definitions (lakesql.features)


def feature_doc_name(schema: str, name: str) -> str:
    """The document name of feature table schema.name."""
    return f"{schema}__{name}"


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` lower-cased, or raise when it is not a plain identifier.

    Raises:
        ProgrammingError: for empty names, path separators, dots, NUL bytes, leading digits or `_`.
    """
    if (
        not isinstance(name, str)
        or not _NAME.match(name)
        or name.startswith("_")
        or len(name) > 128
    ):
        raise ProgrammingError(
            f"invalid {what} {name!r}",
            hint="use letters, digits and underscores, starting with a letter (at most 128)",
        )
    return name.lower()


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
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _NAME.match(p.name) and not p.name.startswith("_")
        )

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
        return sorted(p.name for p in path.iterdir() if _NAME.match(p.name) and _committed(p))

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
