"""Concurrency under stress: processes appending, merging and updating one table at once.

No commit may be lost: every append that returned is in the table, and the counters that MERGE
and UPDATE increment equal the number of those statements that returned. A statement that loses
a race fails with lakesql.ConflictError saying another writer committed first, and changes
nothing; the worker then runs it again. Nothing else may go wrong.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import deltalake
import pytest
from helpers import run_workers

import lakesql

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import lakesql

    warehouse, role, worker, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    con = lakesql.connect(warehouse, threads=1)
    cur = con.cursor()
    cur.execute("SELECT count(*) FROM t").fetchall()
    open(go + f".ready{worker}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    done = conflicts = 0
    messages = []
    other = []
    while done < count:
        try:
            if role == "append":
                cur.execute("INSERT INTO t VALUES ('row', ?, ?, 0)", [worker, done])
            elif role == "merge":
                cur.execute(
                    "MERGE INTO t USING (SELECT 'merge' AS kind) s ON t.kind = s.kind "
                    "WHEN MATCHED THEN UPDATE SET n = n + 1"
                )
                assert cur.rowcount == 1, cur.rowcount
            else:
                cur.execute("UPDATE t SET n = n + 1 WHERE kind = 'update'")
                assert cur.rowcount == 1, cur.rowcount
            done += 1
        except lakesql.ConflictError as e:
            conflicts += 1
            messages.append(role + ": " + str(e).splitlines()[0])
        except Exception as e:
            other.append(f"{type(e).__name__}: {e}")
            break
    con.close()
    print(json.dumps({"role": role, "done": done, "conflicts": conflicts,
                      "messages": messages[:3], "other": other}))
    """
)


def test_appends_merges_and_updates_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        cur.execute("CREATE TABLE t (kind VARCHAR, worker INT, i INT, n BIGINT)")
        cur.execute("INSERT INTO t VALUES ('merge', -1, -1, 0), ('update', -1, -1, 0)")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    roles = [("append", 40), ("append", 40), ("merge", 15), ("update", 15)]
    reports = run_workers(
        [
            [sys.executable, str(script), str(root), role, str(w), str(n), str(go)]
            for w, (role, n) in enumerate(roles)
        ],
        go,
        range(len(roles)),
        start_timeout=120,
        run_timeout=600,
    )
    for r in reports:
        assert not r["other"], r  # only ConflictError may interrupt a writer
        for m in r["messages"]:
            assert "another writer committed" in m, m
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        for w, (role, n) in enumerate(roles):
            if role == "append":
                got = cur.execute("SELECT count(*) FROM t WHERE worker = ?", [w]).fetchall()
                assert got == [(n,)], f"appends of worker {w} lost: {got}"
        for role, n in roles[2:]:
            got = cur.execute("SELECT n FROM t WHERE kind = ?", [role]).fetchall()
            assert got == [(n,)], f"{role}: counter {got}, {n} statements returned"
        commits = deltalake.DeltaTable(str(root / "main" / "t")).version()
    assert commits == 1 + sum(n for _, n in roles)  # one version per statement that returned
    by_role: dict[str, int] = {}
    for r in reports:
        by_role[r["role"]] = by_role.get(r["role"], 0) + r["conflicts"]
    assert by_role["append"] == 0, "a blind append is retried, never reported as a conflict"
    print(f"concurrency: {sum(n for _, n in roles)} statements; conflicts retried: {by_role}")
