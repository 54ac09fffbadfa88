"""SQLAlchemy's dialect compliance suite against the lakesql dialect, in its own pytest process.

The suite lives in tests/test_sqlalchemy_suite/ (setup.cfg, conftest.py, test_suite.py, as
SQLAlchemy's README.dialects.rst lays out) and needs SQLAlchemy's pytest plugin, so it runs in a
subprocess: the main run's configuration stays untouched. What lakesql cannot do is declared in
lakesql/sqlalchemy/requirements.py; those tests are skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")

SUITE = Path(__file__).parent / "test_sqlalchemy_suite"

# Classes that must pass whole in the default run (a quick slice of the suite).
CORE = [
    "BooleanTest",
    "CompoundSelectTest",
    "CTETest",
    "DateTest",
    "DateTimeTest",
    "ExistsTest",
    "FetchLimitOffsetTest",
    "IntegerTest",
    "JoinTest",
    "LikeFunctionsTest",
    "OrderByLabelTest",
    "StringTest",
    "TextTest",
    "ValuesExpressionTest",
]


def run_suite(warehouse: Path, *args: str) -> tuple[dict[str, int], str]:
    """Run the suite; returns the counts of its summary line and its output."""
    env = {**os.environ, "LAKESQL_SQLA_SUITE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--dburi", f"lakesql:///{warehouse}", "-q", *args],
        cwd=SUITE,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = proc.stdout + proc.stderr
    lines = [ln for ln in output.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    counts = {
        word: int(n)
        for n, word in re.findall(
            r"(\d+) (passed|failed|skipped|errors?)", lines[-1] if lines else ""
        )
    }
    counts["errors"] = counts.pop("error", 0) + counts.pop("errors", 0)
    return counts, output


def test_compliance_suite_core_classes(tmp_path: Path) -> None:
    counts, output = run_suite(tmp_path / "wh", "-k", " or ".join(CORE))
    assert counts.get("passed", 0) >= 100, output[-3000:]
    assert counts.get("failed", 0) == 0 and counts["errors"] == 0, output[-5000:]


@pytest.mark.slow
def test_compliance_suite_whole(tmp_path: Path) -> None:
    counts, output = run_suite(tmp_path / "wh")
    print(f"SQLAlchemy compliance suite: {counts}")
    # Measured: 392 passed, 41 failed, 29 errors, 888 skipped (SQLAlchemy 2.0.58); the failures
    # are lakesql limits listed in docs/server.md. Guard against regressions.
    assert counts.get("passed", 0) >= 390, output[-5000:]
