"""The `lakesql` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import snapshot

FIXTURES = Path(__file__).parent / "fixtures" / "cli"
LAKESQL = [sys.executable, "-m", "lakesql.cli"]


def lakesql(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKESQL_WAREHOUSE": str(cwd / "wh")}
    return subprocess.run(
        [*LAKESQL, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


QUERY = "SELECT * FROM (VALUES (1, 'ada', 2.5, NULL), (22, 'grace hopper', -1.0, DATE '2024-01-02')) v(id, name, score, day) ORDER BY id"


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown", "line"])
def test_output_formats_match_snapshots(tmp_path: Path, fmt: str) -> None:
    out = lakesql("-c", QUERY, "--format", fmt, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    snapshot(FIXTURES / f"format_{fmt}.txt", out.stdout)


def test_json_is_valid(tmp_path: Path) -> None:
    out = lakesql("-c", QUERY, "-f", "json", cwd=tmp_path)
    assert json.loads(out.stdout) == [
        {"id": 1, "name": "ada", "score": 2.5, "day": None},
        {"id": 22, "name": "grace hopper", "score": -1.0, "day": "2024-01-02"},
    ]


def test_script_error_in_the_middle(tmp_path: Path) -> None:
    script = tmp_path / "job.sql"
    script.write_text(
        "CREATE TABLE t AS SELECT 1 AS a;\n"
        "INSERT INTO t VALUES (2);\n"
        "-- the next statement is wrong\n"
        "INSERT INTO t VALUES (3) oops;\n"
        "INSERT INTO t VALUES (4);\n"
    )
    out = lakesql("run", str(script), cwd=tmp_path)
    assert out.returncode == 1
    assert f"{script}:4" in out.stderr
    assert "^" in out.stderr and out.stdout == ""
    check = lakesql("-c", "SELECT list(a ORDER BY a) FROM t", "-f", "csv", cwd=tmp_path)
    assert check.stdout.splitlines()[1] == '"[1, 2]"'


def test_variables(tmp_path: Path) -> None:
    script = tmp_path / "vars.sql"
    script.write_text("SELECT ${n} * 2 AS doubled, getvariable('who') AS who;")
    out = lakesql(
        "run", str(script), "--var", "n=21", "--var", "who=ada", "-f", "csv", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["doubled,who", "42,ada"]
    # getvariable() of a variable not given is NULL, as in DuckDB
    unset = lakesql("run", str(script), "--var", "n=1", "-f", "csv", cwd=tmp_path)
    assert unset.returncode == 0 and unset.stdout.splitlines() == ["doubled,who", "2,"]


def test_missing_variable_is_a_usage_error(tmp_path: Path) -> None:
    script = tmp_path / "vars.sql"
    script.write_text("SELECT ${nope};")
    out = lakesql("run", str(script), cwd=tmp_path)
    assert out.returncode == 2
    assert "--var nope=value" in out.stderr


def test_piped_script_and_exit_codes(tmp_path: Path) -> None:
    ok = lakesql(cwd=tmp_path, stdin="CREATE TABLE p AS SELECT 7 AS x; SELECT x FROM p;")
    assert ok.returncode == 0 and " 7" in ok.stdout
    bad = lakesql(cwd=tmp_path, stdin="SELECT * FROM nope;")
    assert bad.returncode == 1 and "does not exist" in bad.stderr
    unreadable = lakesql("run", str(tmp_path / "missing.sql"), cwd=tmp_path)
    assert unreadable.returncode == 3 and "cannot read" in unreadable.stderr


def test_version_and_info(tmp_path: Path) -> None:
    assert lakesql("version", cwd=tmp_path).stdout.startswith("lakesql ")
    info = lakesql("info", cwd=tmp_path)
    assert info.returncode == 0
    assert "duckdb: 1.5.5" in info.stdout and "delta reads: delta extension" in info.stdout


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    import shutil

    repo = Path(__file__).resolve().parent.parent
    shutil.copytree(repo / "sql", tmp_path / "sql")
    out = lakesql("run", "sql/examples/quickstart.sql", "-f", "csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "cultivar_0,2024-01-03 00:00:00,13.827,5.689,7" in out.stdout
    assert "cultivar_2,2024-01-03 00:00:00,,," in out.stdout  # nothing known yet at that time
    # the refresh committed exactly one new version of the feature table
    hist = lakesql("-c", "DESCRIBE HISTORY lab.cultivar_profile", "-f", "json", cwd=tmp_path)
    assert [(h["version"], h["operation"]) for h in json.loads(hist.stdout)] == [
        (1, "REFRESH FEATURE TABLE"),
        (0, "CREATE FEATURE TABLE"),
    ]
