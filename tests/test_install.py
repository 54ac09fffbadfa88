"""pyproject.toml's ranges hold at their low end: lakesql installs and works beside pandas 2.2 and
pyarrow 18 (slow: builds a venv from PyPI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMOKE = """
import pandas, pyarrow, lakesql
assert pandas.__version__.startswith("2.2"), pandas.__version__
assert pyarrow.__version__.startswith("18."), pyarrow.__version__
con = lakesql.connect("wh")
cur = con.cursor()
cur.execute("CREATE TABLE t AS SELECT range AS i, range * 1.5 AS x FROM range(10)")
cur.execute("UPDATE t SET x = 0 WHERE i = 3")
assert cur.execute("SELECT sum(x)::DOUBLE, count(*) FROM t").fetchall() == [(63.0, 10)]
assert cur.execute("SELECT x::DOUBLE FROM t VERSION AS OF 0 WHERE i = 3").fetchall() == [(4.5,)]
assert list(cur.execute("SELECT * FROM t").fetchdf().columns) == ["i", "x"]
print("ok")
"""


@pytest.mark.slow
def test_installs_beside_pandas_2_2_and_pyarrow_18(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, str(ROOT), "pandas==2.2.*", "pyarrow==18.*"], check=True, timeout=1200)
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SMOKE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
