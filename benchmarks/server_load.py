"""`lakesql serve` under load and attack: memory and answers while one client streams 50M rows.

Usage::

    python benchmarks/server_load.py [--rows 50000000] [--clients 20] [--think 0.5]
        [--out benchmarks/results/server_load.json]

Starts `lakesql serve` as a subprocess on a fresh warehouse (so its RSS is the server's alone,
read from /proc/<pid>/status every 0.1 s) and runs, at the same time:

* **streamer**: a psycopg server-side cursor (DECLARE / FETCH FORWARD 50000) over
  ``SELECT range AS i FROM range(ROWS)``, summing every row, then disconnecting;
* **aborter**: a second stream of the same query through the extended protocol (a plain
  cursor, rows read as they arrive) that closes its socket after a tenth of the rows;
* **attackers**: 200 raw connections that send half a startup packet and wait (closed by the
  authentication timeout, set to 5 s here) and 8 that announce a 1 GiB message (refused at once);
* **clients**: CLIENTS psycopg connections querying ``SELECT sum(n), count(*) FROM numbers
  WHERE n < k`` in a loop (THINK seconds apart) until the streamer is done, each answer checked.

Prints RSS before (after a warm-up client: imports, catalog, the Delta extension) / peak / after
(every client gone, 3 s later), the streaming rate, the clients' query count and latency, and
writes the JSON result file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def startup_packet() -> bytes:
    body = struct.pack("!i", 196608) + b"user\x00x\x00database\x00d\x00\x00"
    return struct.pack("!i", len(body) + 4) + body


def stream(dsn: str, rows: int) -> dict[str, Any]:
    """Read every row through a server-side cursor, check the sum, disconnect."""
    started = time.monotonic()
    total = count = 0
    with psycopg.connect(dsn, connect_timeout=30) as con, con.cursor(name="big") as cur:
        cur.itersize = 50_000
        cur.execute("SELECT range AS i FROM range(%s)", [rows])
        for (i,) in cur:
            total += i
            count += 1
    seconds = time.monotonic() - started
    failures = []
    if count != rows or total != rows * (rows - 1) // 2:
        failures.append(f"streamer: {count} rows, sum {total}")
    return {
        "stream_seconds": round(seconds, 1),
        "stream_rows_per_s": round(count / seconds),
        "failures": failures,
    }


def abort(dsn: str, rows: int) -> dict[str, Any]:
    """Stream the same rows through the extended protocol; close the socket after a tenth."""
    con = psycopg.connect(dsn, connect_timeout=30)
    seen = 0
    for _ in con.cursor().stream("SELECT range AS i FROM range(%s)", [rows]):
        seen += 1
        if seen >= rows // 10:
            break
    con.pgconn.finish()  # the socket closes mid-stream
    return {"aborted_after_rows": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--think", type=float, default=0.5, help="seconds between queries")
    parser.add_argument("--out", default="benchmarks/results/server_load.json")
    parser.add_argument("--role", choices=["streamer", "aborter"], help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        fn = stream if args.role == "streamer" else abort
        print(json.dumps(fn(args.dsn, args.rows)))
        return

    warehouse = Path(tempfile.mkdtemp(prefix="lakesql-load-"))
    import lakesql

    with lakesql.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(100000)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakesql.cli",
            "-w",
            str(warehouse),
            "serve",
            "--port",
            str(port),
            "--auth-timeout",
            "5",
        ],
        stderr=subprocess.DEVNULL,
    )
    dsn = f"host=127.0.0.1 port={port} user=bench dbname=lake"
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

    samples: list[float] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.is_set():
            samples.append(rss_mib(server.pid))
            time.sleep(0.1)

    with psycopg.connect(dsn, connect_timeout=30) as con:  # warm up: imports, catalog, delta
        for _ in con.cursor().stream("SELECT range AS i FROM range(100000)"):
            pass
        con.execute("SELECT sum(n), count(*) FROM numbers WHERE n < %s", [10]).fetchone()
    time.sleep(3)
    before = rss_mib(server.pid)
    threading.Thread(target=sample, daemon=True).start()
    streaming_done = threading.Event()
    result: dict[str, Any] = {}
    failures: list[str] = []

    def run_role(role: str) -> None:  # in its own process: the GIL is not the clients'
        proc = subprocess.run(
            [sys.executable, __file__, "--role", role, "--dsn", dsn, "--rows", str(args.rows)],
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            failures.append(f"{role}: {proc.stderr[-500:]}")
            return
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        failures.extend(got.pop("failures", []))
        result.update(got)

    def streamer() -> None:
        run_role("streamer")
        streaming_done.set()

    def aborter() -> None:
        run_role("aborter")

    latencies: list[float] = []

    def client(k: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=30) as con:
                i = 0
                while not streaming_done.is_set():
                    n = (k * 7919 + i * 104729) % 100000
                    started = time.monotonic()
                    row = con.execute(
                        "SELECT sum(n), count(*) FROM numbers WHERE n < %s", [n]
                    ).fetchone()
                    latencies.append(time.monotonic() - started)
                    if row != (n * (n - 1) // 2 if n else None, n):
                        failures.append(f"client {k}: {row} for n < {n}")
                    i += 1
                    time.sleep(args.think)
        except Exception as e:
            failures.append(f"client {k}: {type(e).__name__}: {e}")

    attack: list[socket.socket] = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(startup_packet()[:10])
        attack.append(s)
    refused_at_once = 0
    for _ in range(8):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            started = time.monotonic()
            s.sendall(struct.pack("!ii", 1 << 30, 196608))
            s.settimeout(5)
            data = s.recv(1000)
            refused_at_once += data[:1] == b"E" and time.monotonic() - started < 1

    started = time.monotonic()
    threads = [threading.Thread(target=streamer), threading.Thread(target=aborter)]
    threads += [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    half_open_closed = 0
    for s in attack:
        s.settimeout(10)
        try:
            while s.recv(65536):
                pass
            half_open_closed += 1
        except OSError:
            half_open_closed += 1
        s.close()
    time.sleep(3)
    stop_sampling.set()
    after = rss_mib(server.pid)
    server.terminate()
    server.wait(timeout=30)

    result.update(
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        rows=args.rows,
        clients=args.clients,
        think_seconds=args.think,
        cpus=os.cpu_count(),
        rss_before_mib=round(before, 1),
        rss_peak_mib=round(max(samples, default=before), 1),
        rss_after_mib=round(after, 1),
        wall_seconds=round(wall, 1),
        client_queries=len(latencies),
        client_latency_median_ms=round(statistics.median(latencies) * 1000, 1)
        if latencies
        else None,
        client_latency_p99_ms=round(sorted(latencies)[int(len(latencies) * 0.99)] * 1000, 1)
        if latencies
        else None,
        half_open_closed=half_open_closed,
        huge_prefix_refused_at_once=refused_at_once,
        failures=failures[:10],
    )
    for key, value in result.items():
        print(f"{key:28} {value}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
