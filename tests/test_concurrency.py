"""Several processes share one warehouse: concurrent appends all land, and every connection
sees the commits of the others on its next statement."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import deltalake
import pytest
from helpers import run_workers

import lakesql

APPENDS = 100

APPENDER = textwrap.dedent(
    """
    import json, os, sys, time
    import lakesql

    warehouse, worker, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    con = lakesql.connect(warehouse, threads=1)
    cur = con.cursor()
    cur.execute("SELECT count(*) FROM t").fetchall()  # warm up before the start line
    open(go + f".ready{worker}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    start = time.time()
    for i in range(count):
        cur.execute(f"INSERT INTO t VALUES ({worker}, {i}, 'w{worker}-{i}')")
        assert cur.rowcount == 1
    end = time.time()
    con.close()
    print(json.dumps({"start": start, "end": end}))
    """
)

SERVER = textwrap.dedent(
    """
    import sys
    import lakesql

    con = lakesql.connect(sys.argv[1], threads=1)
    cur = con.cursor()
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            cur.execute(line)
            print("ok", flush=True)
        except lakesql.Error as e:
            print("error " + str(e).replace("\\n", " "), flush=True)
    con.close()
    """
)


def test_concurrent_appends_from_two_processes(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    with lakesql.connect(str(root)) as con:
        con.cursor().execute(
            "CREATE TABLE t (worker INTEGER NOT NULL, i INTEGER NOT NULL, label VARCHAR)"
        )
    path = str(root / "main" / "t")
    assert deltalake.DeltaTable(path).version() == 0

    go = tmp_path / "go"
    spans = run_workers(
        [
            [sys.executable, "-c", APPENDER, str(root), str(w), str(APPENDS), str(go)]
            for w in (1, 2)
        ],
        go,
        (1, 2),
        start_timeout=60,
        run_timeout=240,
    )
    # The two workers really ran at the same time.
    assert spans[0]["start"] < spans[1]["end"] and spans[1]["start"] < spans[0]["end"]

    table = deltalake.DeltaTable(path)
    assert table.version() == 2 * APPENDS
    history = table.history()
    assert len(history) == 2 * APPENDS + 1
    appends = [c for c in history if c["version"] > 0]
    assert all(c["lakesql.operation"] == "INSERT" for c in appends)
    assert sorted(c["version"] for c in appends) == list(range(1, 2 * APPENDS + 1))
    assert sorted(c["lakesql.sql"] for c in appends) == sorted(
        f"INSERT INTO t VALUES ({w}, {i}, 'w{w}-{i}')" for w in (1, 2) for i in range(APPENDS)
    )

    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        rows = cur.execute("SELECT worker, i, label FROM t ORDER BY worker, i").fetchall()
        assert rows == [(w, i, f"w{w}-{i}") for w in (1, 2) for i in range(APPENDS)]
    # Each worker's rows were committed in the order it sent them.
    by_version = sorted(appends, key=lambda c: c["version"])
    for w in (1, 2):
        mine = [
            c["lakesql.sql"]
            for c in by_version
            if c["lakesql.sql"].startswith(f"INSERT INTO t VALUES ({w}, ")
        ]
        assert mine == [f"INSERT INTO t VALUES ({w}, {i}, 'w{w}-{i}')" for i in range(APPENDS)]


class Other:
    """Another process holding its own connection, running the statements it is sent."""

    def __init__(self, root: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._reply() == "ready"

    def _reply(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(self.proc.communicate()[1])
        return line.strip()

    def run(self, sql: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(sql.split()) + "\n")
        self.proc.stdin.flush()
        reply = self._reply()
        assert reply == "ok", reply

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def other(tmp_path: Path):
    o = Other(tmp_path / "wh")
    yield o
    o.close()


def test_commit_of_another_process_visible_on_next_statement(tmp_path: Path, other: Other) -> None:
    root = tmp_path / "wh"
    con = lakesql.connect(str(root))
    cur = con.cursor()
    try:
        cur.execute("CREATE TABLE t (id INTEGER, v VARCHAR)")
        assert cur.execute("SELECT count(*) FROM t").fetchall() == [(0,)]

        # Appends by the other process, each read back at once by this open connection.
        for i in range(15):
            other.run(f"INSERT INTO t VALUES ({i}, 'v{i}')")
            assert cur.execute("SELECT count(*), max(id) FROM t").fetchall() == [(i + 1, i)]

        other.run("UPDATE t SET v = upper(v) WHERE id < 3")
        assert cur.execute("SELECT v FROM t WHERE id < 4 ORDER BY id").fetchall() == [
            ("V0",),
            ("V1",),
            ("V2",),
            ("v3",),
        ]
        other.run("DELETE FROM t WHERE id >= 10")
        assert cur.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
        other.run("ALTER TABLE t ADD COLUMN extra DOUBLE")
        other.run("INSERT INTO t VALUES (100, 'new', 1.5)")
        assert cur.execute("SELECT * FROM t WHERE id = 100").fetchall() == [(100, "new", 1.5)]
        assert [r[0] for r in cur.execute("DESCRIBE t").fetchall()] == ["id", "v", "extra"]
        history = cur.execute("DESCRIBE HISTORY t").fetchall()
        assert history[0][5] == "INSERT INTO t VALUES (100, 'new', 1.5)"
        assert history[0][0] == deltalake.DeltaTable(str(root / "main" / "t")).version()

        # Tables and schemas created and dropped elsewhere appear and disappear.
        other.run("CREATE SCHEMA s")
        other.run("CREATE TABLE s.made_elsewhere AS SELECT 42 AS answer")
        assert cur.execute("SELECT answer FROM s.made_elsewhere").fetchall() == [(42,)]
        assert ("s", "made_elsewhere") in cur.execute("SHOW TABLES").fetchall()
        other.run("CREATE OR REPLACE TABLE s.made_elsewhere AS SELECT 'x' AS letter")
        assert cur.execute("SELECT * FROM s.made_elsewhere").fetchall() == [("x",)]
        other.run("DROP TABLE s.made_elsewhere")
        with pytest.raises(lakesql.ProgrammingError):
            cur.execute("SELECT * FROM s.made_elsewhere")
        other.run("DROP SCHEMA s")
        assert ("s",) not in cur.execute("SHOW SCHEMAS").fetchall()

        # And the other way round: this connection's writes reach the other process.
        cur.execute("INSERT INTO t VALUES (200, 'mine', NULL)")
        other.run("INSERT INTO t SELECT id + 1, v, extra FROM t WHERE id = 200")
        assert cur.execute("SELECT id FROM t WHERE id >= 200 ORDER BY id").fetchall() == [
            (200,),
            (201,),
        ]
    finally:
        con.close()


def test_open_cursor_sees_restore_by_another_process(tmp_path: Path, other: Other) -> None:
    root = tmp_path / "wh"
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        cur.execute("CREATE TABLE r AS SELECT 1 AS x")
        cur.execute("INSERT INTO r VALUES (2)")
        assert cur.execute("SELECT count(*) FROM r").fetchall() == [(2,)]
        other.run("RESTORE TABLE r TO VERSION AS OF 0")
        assert cur.execute("SELECT * FROM r").fetchall() == [(1,)]
        other.run("INSERT OVERWRITE r VALUES (7)")
        assert cur.execute("SELECT * FROM r").fetchall() == [(7,)]
        assert cur.execute("SELECT * FROM r VERSION AS OF 1 ORDER BY x").fetchall() == [(1,), (2,)]


TRAINER = textwrap.dedent(
    """
    import json, os, sys, time
    import lakesql

    warehouse, worker, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    con = lakesql.connect(warehouse, threads=1)
    cur = con.cursor()
    cur.execute("SELECT count(*) FROM tr").fetchall()
    open(go + f".ready{worker}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    got = []
    for model in ("shared", f"own{worker}", "shared"):
        cur.execute(
            f"TRAIN AUTOML {model} PREDICT y FROM tr "
            f"OPTIONS (time_budget = 1, estimators = ['lgbm'], seed = {worker})"
        )
        got.append([model, cur.fetchone()[1], worker])
    con.close()
    print(json.dumps(got))
    """
)


def test_concurrent_trains_into_one_registry(tmp_path: Path) -> None:
    """Three processes train one shared model (and one each) at once: versions 1..6, none lost."""
    root = tmp_path / "wh"
    with lakesql.connect(str(root)) as con:
        con.cursor().execute(
            "CREATE TABLE tr AS SELECT range AS id, (range * 7919) % 101 AS a, "
            "(range * 104729) % 53 AS b, ((range * 7919) % 101 > 50) AS y FROM range(300)"
        )
    go = tmp_path / "go"
    workers = (1, 2, 3)
    reports = run_workers(
        [[sys.executable, "-c", TRAINER, str(root), str(w), str(go)] for w in workers],
        go,
        workers,
        start_timeout=120,
        run_timeout=300,
    )
    results = [row for report in reports for row in report]
    shared = sorted(v for m, v, _ in results if m == "shared")
    assert shared == [1, 2, 3, 4, 5, 6]  # each TRAIN got its own version, none lost
    assert sorted((m, v) for m, v, _ in results if m != "shared") == [
        ("own1", 1),
        ("own2", 1),
        ("own3", 1),
    ]
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        assert cur.execute(
            "SELECT name, latest_version, list_sort(aliases) FROM lakesql.models ORDER BY name"
        ).fetchall() == [
            ("own1", 1, ["default=1", "latest=1"]),
            ("own2", 1, ["default=1", "latest=1"]),
            ("own3", 1, ["default=1", "latest=1"]),
            ("shared", 6, ["default=6", "latest=6"]),
        ]
        for v in shared:
            (n,) = cur.execute(
                f"SELECT count(predicted_y) FROM ML.PREDICT(MODEL shared VERSION {v}, TABLE tr)"
            ).fetchone()
            assert n == 300
        for _, v, worker in (r for r in results if r[0] == "shared"):
            doc = json.loads((root / "_models" / "shared" / f"v{v}" / "version.json").read_text())
            assert doc["version"] == v and doc["options"]["seed"] == worker  # its own files
        assert cur.execute("VACUUM MODELS DRY RUN").fetchall() == []
