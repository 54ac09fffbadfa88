"""Print the sqllogictest counts at the end of the run (pytest captures the tests' output)."""

from __future__ import annotations

from typing import Any

import slt_runner


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if slt_runner.SUMMARIES:
        terminalreporter.section("sqllogictest: DuckDB vs lakesql")
        for text in slt_runner.SUMMARIES:
            terminalreporter.write_line(text)
