"""Crash safety: a process killed with SIGKILL at a random moment while it writes.

A worker process loops over one kind of write (CREATE TABLE AS, INSERT, MERGE, REFRESH FEATURE
TABLE, TRAIN AUTOML) and logs each statement after it returned, i.e. after its Delta commit or
its model version's registration. The test kills it
at a random moment and then checks, from a fresh connection:

* every table reads, at one consistent version (all rows of a statement or none);
* nothing logged as committed before the kill is missing;
* the catalog has no dangling entries: every table SHOW TABLES lists reads, every feature table
  in the catalog has its Delta table, and the next writer carries on;
* every registered model version loads and predicts, none registered before the kill is lost, and
  what the killed TRAIN left (staging folder, unregistered version folder) is listed by
  ``VACUUM MODELS DRY RUN`` and removed by ``VACUUM MODELS``.

The default run kills each kind of write once; `-m slow` kills each kind at least 6 times.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import deltalake
import pytest

import lakesql

ROWS = 20_000

WORKER = textwrap.dedent(
    """
    import os, sys
    import lakesql

    warehouse, op, log_path, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    con = lakesql.connect(warehouse, threads=1)
    cur = con.cursor()
    log = open(log_path, "a")

    def done(text):
        log.write(text + "\\n")
        log.flush()
        os.fsync(log.fileno())

    done("ready")
    for i in range(start, start + 10_000):
        if op == "ctas":
            if i % 2:
                cur.execute(f"CREATE OR REPLACE TABLE c AS SELECT {i} AS gen, range AS x FROM range({ROWS})")
            else:
                cur.execute(f"CREATE TABLE n{i} AS SELECT {i} AS gen, range AS x FROM range({ROWS})")
        elif op == "insert":
            cur.execute(f"INSERT INTO ins SELECT {i} AS batch, range AS x FROM range({ROWS})")
        elif op == "merge":
            cur.execute(
                f"MERGE INTO m USING (SELECT range AS k, {i} AS v FROM range({ROWS})) s "
                "ON m.k = s.k WHEN MATCHED THEN UPDATE SET v = s.v "
                "WHEN NOT MATCHED THEN INSERT VALUES (s.k, s.v)"
            )
        elif op == "refresh":
            cur.execute(f"UPDATE src SET v = {i}")
            done(f"update {i}")
            cur.execute("REFRESH FEATURE TABLE fts")
        elif op == "train":
            cur.execute(
                "TRAIN AUTOML tm PREDICT y FROM tr "
                f"OPTIONS (time_budget = 1, estimators = ['lgbm', 'histgb'], seed = {i})"
            )
            i = cur.fetchone()[1]  # the version it registered
        done(f"{op} {i}")
    """
).replace("{ROWS}", str(ROWS))

OPS = ["ctas", "insert", "merge", "refresh", "train"]


def _setup(root: Path) -> None:
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        cur.execute("CREATE TABLE ins (batch BIGINT, x BIGINT)")
        cur.execute("CREATE TABLE m (k BIGINT, v BIGINT)")
        cur.execute(f"CREATE TABLE src AS SELECT range AS k, 0::BIGINT AS v FROM range({ROWS})")
        cur.execute("CREATE FEATURE TABLE fts PRIMARY KEY (k) AS SELECT k, v FROM src")
        cur.execute(
            "CREATE TABLE tr AS SELECT range AS id, (range * 7919) % 101 AS a, "
            "(range * 104729) % 53 AS b, ((range * 7919) % 101 > 50) AS y FROM range(400)"
        )


def _logged(log: Path, op: str) -> list[int]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        word, _, value = line.partition(" ")
        if word == op:
            out.append(int(value))
    return out


def _kill_once(root: Path, op: str, log: Path, start: int, rng: random.Random) -> None:
    script = root.parent / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), op, str(log), str(start)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 4.0 if op == "train" else 1.5))
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _check(root: Path, op: str, log: Path) -> dict[str, Any]:
    """The invariants after a kill; returns what was found."""
    logged = _logged(log, op)
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        tables = cur.execute("SHOW TABLES").fetchall()
        versions = {}
        for schema, name in tables:  # every listed table reads, at one version
            cur.execute(f"SELECT count(*) FROM {schema}.{name}").fetchall()
            versions[name] = deltalake.DeltaTable(str(root / schema / name)).version()
            history = [r[0] for r in cur.execute(f"DESCRIBE HISTORY {schema}.{name}").fetchall()]
            assert history == list(range(versions[name], -1, -1)), (name, history)
        for doc in cur.execute("SELECT schema, name FROM lakesql.feature_tables").fetchall():
            assert (doc[0], doc[1]) in tables, f"feature table {doc} has no Delta table"
        names = {n for _, n in tables}
        if op == "insert":
            rows = cur.execute("SELECT batch, count(*) FROM ins GROUP BY batch").fetchall()
            batches = dict(rows)
            assert all(n == ROWS for n in batches.values()), f"a partial batch: {rows}"
            assert set(logged) <= set(batches), f"lost: {set(logged) - set(batches)}"
            extra = set(batches) - set(logged)
            assert len(extra) <= 1, f"batches committed but never logged: {extra}"
        elif op == "merge":
            rows = cur.execute("SELECT v, count(*) FROM m GROUP BY v").fetchall()
            if logged or rows:
                assert len(rows) == 1 and rows[0][1] == ROWS, f"a partial MERGE: {rows}"
                last = max(logged, default=None)
                assert last is None or rows[0][0] in (last, last + 1), (rows, last)
        elif op == "ctas":
            for i in logged:
                if i % 2 == 0:
                    assert f"n{i}" in names, f"table n{i} was created, then lost"
            for name in [n for n in names if n.startswith("n") or n == "c"]:
                rows = cur.execute(f"SELECT gen, count(*) FROM {name} GROUP BY gen").fetchall()
                assert len(rows) == 1 and rows[0][1] == ROWS, (name, rows)
            odd = [i for i in logged if i % 2]
            if odd:
                gen = cur.execute("SELECT DISTINCT gen FROM c").fetchall()
                assert gen[0][0] >= max(odd), (gen, max(odd))
        elif op == "refresh":
            refreshed = logged
            updated = _logged(log, "update")
            rows = cur.execute("SELECT v, count(*) FROM fts GROUP BY v").fetchall()
            assert len(rows) == 1 and rows[0][1] == ROWS, f"a partial REFRESH: {rows}"
            if refreshed:
                assert rows[0][0] >= max(refreshed), (rows, max(refreshed))
            src = cur.execute("SELECT DISTINCT v FROM src").fetchall()
            assert len(src) == 1 and (not updated or src[0][0] >= max(updated)), src
        elif op == "train":
            _check_registry(root, cur, logged)
        return {"tables": len(tables), "logged": len(logged), "versions": versions}


def _check_registry(root: Path, cur: Any, logged: list[int]) -> None:
    """Every registered version predicts; none logged is lost; VACUUM MODELS clears the rest."""
    registered = [
        v
        for (v,) in cur.execute(
            "SELECT version FROM lakesql.model_versions WHERE model = 'tm' ORDER BY version"
        ).fetchall()
    ]
    assert set(logged) <= set(registered), f"lost versions: {set(logged) - set(registered)}"
    for v in registered:
        (n,) = cur.execute(
            f"SELECT count(predicted_y) FROM ML.PREDICT(MODEL tm VERSION {v}, TABLE tr)"
        ).fetchone()
        assert n == 400, (v, n)
    dry = cur.execute("VACUUM MODELS DRY RUN").fetchall()
    assert all(action == "would remove" for *_, action in dry), dry
    assert sorted(cur.execute("VACUUM MODELS").fetchall()) == sorted(
        (m, p, r, "removed") for m, p, r, _ in dry
    )
    folder = root / "_models" / "tm"
    if folder.exists():
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"v{v}" for v in registered)
    assert cur.execute("VACUUM MODELS").fetchall() == []


def _run(tmp_path: Path, kills_per_op: int, seed: int) -> int:
    rng = random.Random(seed)
    root = tmp_path / "warehouse"
    _setup(root)
    kills = 0
    start = 1
    for round_ in range(kills_per_op):
        for op in OPS:
            log = tmp_path / f"{op}.log"
            _kill_once(root, op, log, start, rng)
            kills += 1
            _check(root, op, log)
            start += 1000  # fresh numbers for the next round
        del round_
    # the warehouse is still fully usable after the kills
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        cur.execute("INSERT INTO ins VALUES (-1, -1)")
        cur.execute("REFRESH FEATURE TABLE fts")
        cur.execute("CREATE OR REPLACE TABLE c AS SELECT 1 AS gen")
        assert cur.execute("SELECT count(*) FROM ins WHERE batch = -1").fetchall() == [(1,)]
    return kills


def test_folder_of_a_create_killed_before_its_commit_is_not_a_table(tmp_path: Path) -> None:
    """What a CREATE TABLE killed before its first commit leaves: files, no committed log."""
    root = tmp_path / "warehouse"
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        leftover = root / "main" / "x"
        (leftover / "_delta_log").mkdir(parents=True)
        (leftover / "part-00000-dead.snappy.parquet").write_bytes(b"partial")
        assert cur.execute("SHOW TABLES").fetchall() == []
        with pytest.raises(lakesql.UnknownObjectError):
            cur.execute("SELECT * FROM x")
        cur.execute("CREATE TABLE x AS SELECT 1 AS a")  # the name is free
        assert cur.execute("SELECT * FROM x").fetchall() == [(1,)]
        assert cur.execute("SHOW TABLES").fetchall() == [("main", "x")]


def test_kill_during_writes_fast(tmp_path: Path) -> None:
    assert _run(tmp_path, kills_per_op=1, seed=1) == len(OPS)


@pytest.mark.slow
def test_kill_during_writes_many(tmp_path: Path) -> None:
    kills = _run(tmp_path, kills_per_op=6, seed=int(os.environ.get("LAKESQL_CRASH_SEED", "7")))
    assert kills >= 20
