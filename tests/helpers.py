"""A real warehouse for behaviour tests: one connection and what the tests read of it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
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


def run_workers(
    commands: list[list[str]],
    go: Path,
    ids: Sequence[int],
    *,
    start_timeout: float,
    run_timeout: float,
) -> list[Any]:
    """Run one process per command, released together: each touches `go`.ready<id> when set up
    and starts when `go` exists. Returns the JSON each printed last, in order; a worker that
    fails, or does not start within `start_timeout` seconds, fails the test."""
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    try:
        deadline = time.monotonic() + start_timeout
        while not all(go.with_name(f"{go.name}.ready{w}").exists() for w in ids):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.01)
        go.touch()  # all start at the same moment
        outputs = [p.communicate(timeout=run_timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


# One switch for every snapshot and golden file the tests compare against: set
# LAKESQL_UPDATE_SNAPSHOTS=1 to write what the code produces, then read the diff.
UPDATE_SNAPSHOTS = os.environ.get("LAKESQL_UPDATE_SNAPSHOTS") == "1"


def snapshot(path: Path, text: str) -> None:
    """`text` must equal the file at `path` (written instead under LAKESQL_UPDATE_SNAPSHOTS=1)."""
    if UPDATE_SNAPSHOTS:
        path.write_text(text)
    assert text == path.read_text()


def load_frame(cur: Any, table: str, frame: Any) -> None:
    """CREATE OR REPLACE TABLE `table` holding the rows of pandas `frame`."""
    source = f"__src_{table}"
    cur._duck.register(source, pa.Table.from_pandas(frame, preserve_index=False))
    cur.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {source}")
    cur._duck.unregister(source)
