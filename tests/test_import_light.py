"""`import lakesql` must stay light: no ML library, no DuckDB/deltalake, no prompt_toolkit."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "xgboost",
    "lightgbm",
    "sklearn",
    "flaml",
    "prompt_toolkit",
    "duckdb",
    "deltalake",
    "pandas",
]


def test_import_lakesql_loads_no_heavy_module() -> None:
    code = (
        f"import sys, json, lakesql; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_connect_loads_no_ml_library(tmp_path) -> None:
    code = (
        "import sys, json, lakesql\n"
        f"con = lakesql.connect({str(tmp_path / 'wh')!r})\n"
        "con.cursor().execute('CREATE TABLE t AS SELECT 1 AS a')\n"
        "print(json.dumps([m for m in ['xgboost', 'lightgbm', 'sklearn', 'flaml'] if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
