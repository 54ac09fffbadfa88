"""A real warehouse for behaviour tests: one connection and what the tests read of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pytest

import lakesql


class Wh:
    """A warehouse folder with one connection (`settings`: connect() options) and helpers."""

    def __init__(self, root: Path, **settings: Any):
        self.root = root
        self.con = lakesql.connect(str(root), **settings)
        self.cur = self.con.cursor()

    def run(self, sql: str, params: Any = None) -> Any:
        return self.cur.execute(sql, params)

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.cur.execute(sql, params).fetchall()

    def types(self, sql: str) -> list[str]:
        """The DuckDB types of `sql`'s result columns."""
        return [str(d[1]) for d in self.cur.execute(sql).description]

    def path(self, name: str, schema: str = "main") -> str:
        return str(self.root / schema / name)

    def version(self, name: str, schema: str = "main") -> int:
        return deltalake.DeltaTable(self.path(name, schema)).version()

    def delta_schema(self, name: str) -> pa.Schema:
        """The table's schema as Delta stores it (field metadata included)."""
        return pa.schema(deltalake.DeltaTable(self.path(name)).schema().to_arrow())

    def history(self, name: str) -> list[dict[str, Any]]:
        """DESCRIBE HISTORY as dicts, newest first."""
        cur = self.run(f"DESCRIBE HISTORY {name}")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def fails(self, sql: str, error: type[Exception], match: str, table: str) -> None:
        """`sql` fails with `error` matching `match` and commits nothing to `table`."""
        version = self.version(table)
        with pytest.raises(error, match=match):
            self.run(sql)
        assert self.version(table) == version
