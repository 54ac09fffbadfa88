"""Start-up time of the `lakesql` command against `python -c "import duckdb"`.

Usage::

    python benchmarks/startup.py [--repeat 10] [--out benchmarks/results/startup.json]

Measured, in rounds that run every case once (so load drifts hit all alike), median kept:

* **prompt**: from spawning `lakesql shell` in a pseudo-terminal (pexpect) to the prompt on the
  screen: what a person waits for. The target is under 0.5 s.
* **first result**: from the same spawn, typing `SELECT 1;` right at the prompt, to its result:
  the connection opens in the background while the prompt waits for input.
* **-c SELECT 1**: wall time of `lakesql -c "SELECT 1"` (a full connect, one statement, exit).
* **import duckdb**: wall time of `python -c "import duckdb"`, the reference.
* **python**: wall time of `python -c pass`, the floor.

Prints a table with ratios to `import duckdb` and writes the JSON result file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_PROMPT_S = 0.5


def lakesql_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m lakesql.cli`."""
    script = Path(sys.executable).parent / "lakesql"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lakesql.cli"]


def wall(cmd: list[str], env: dict[str, str], cwd: str) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - began


def shell_times(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(seconds to the prompt, seconds to the result of `SELECT 1;` typed at once)."""
    import pexpect

    began = time.perf_counter()
    child = pexpect.spawn(
        cmd[0], [*cmd[1:], "shell"], env=env, cwd=cwd, dimensions=(40, 120), encoding="utf-8"
    )
    child.delaybeforesend = None
    try:
        child.expect_exact("lakesql> ", timeout=60)
        prompt = time.perf_counter() - began
        child.send("SELECT 1 AS x;\r")
        child.expect_exact("(1 row)", timeout=60)
        result = time.perf_counter() - began
        child.expect_exact("lakesql> ", timeout=60)  # raw mode again: Ctrl-D is read as a key
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    return prompt, result


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="rounds (median kept)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="lakesql-startup-")
    env = {
        **os.environ,
        "HOME": work,
        "LAKESQL_WAREHOUSE": os.path.join(work, "wh"),
        "LAKESQL_HISTORY": os.path.join(work, "history"),
        "TERM": "xterm",
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    cmd = lakesql_command()
    cases: dict[str, Callable[[], Any]] = {
        "shell": lambda: shell_times(cmd, env, work),
        "command_s": lambda: wall([*cmd, "-c", "SELECT 1"], env, work),
        "import_duckdb_s": lambda: wall([sys.executable, "-c", "import duckdb"], env, work),
        "python_s": lambda: wall([sys.executable, "-c", "pass"], env, work),
    }
    load_start = load_average()
    try:
        for fn in cases.values():  # warm-up: byte code, page cache, the warehouse folder
            fn()
        runs: dict[str, list[float]] = {"prompt_s": [], "first_result_s": []}
        runs.update({k: [] for k in cases if k != "shell"})
        for i in range(args.repeat):
            for name, fn in cases.items():
                if name == "shell":
                    prompt, result = fn()
                    runs["prompt_s"].append(prompt)
                    runs["first_result_s"].append(result)
                else:
                    runs[name].append(fn())
            print(f"round {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_end = load_average()

    med = {k: statistics.median(v) for k, v in runs.items()}
    ref = med["import_duckdb_s"]
    summary = {
        **{k: round(v, 4) for k, v in med.items()},
        "prompt_vs_import_duckdb": round(med["prompt_s"] / ref, 3),
        "first_result_vs_import_duckdb": round(med["first_result_s"] / ref, 3),
        "command_vs_import_duckdb": round(med["command_s"] / ref, 3),
        "target_prompt_s": TARGET_PROMPT_S,
        "meets_target": med["prompt_s"] < TARGET_PROMPT_S,
    }
    from importlib.metadata import version

    result = {
        "benchmark": "startup",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "load_average": {"start": load_start, "end": load_end},
        "versions": {p: version(p) for p in ("lakesql", "duckdb", "prompt_toolkit", "click")},
        "command": "lakesql (console script)" if len(cmd) == 1 else "python -m lakesql.cli",
        "repeat": args.repeat,
        "summary": summary,
        "runs": {k: [round(x, 4) for x in v] for k, v in runs.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("time to the shell prompt", "prompt_s", True),
        ("SELECT 1; typed at the prompt, to its result", "first_result_s", True),
        ('lakesql -c "SELECT 1"', "command_s", True),
        ('python -c "import duckdb" (reference)', "import_duckdb_s", False),
        ('python -c "pass"', "python_s", True),
    ]
    print(f"| median of {args.repeat} | seconds | / import duckdb |")
    print("|---|---:|---:|")
    for label, key, ratio in rows:
        print(
            f"| {label} | {med[key]:.3f} | {med[key] / ref:.2f}x |"
            if ratio
            else f"| {label} | {med[key]:.3f} | 1.00x |"
        )
    verdict = "met" if summary["meets_target"] else "missed"
    print(
        f"\nprompt target < {TARGET_PROMPT_S} s: {verdict}; load average {load_start} → {load_end}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
