"""TPC-H over Delta tables: lakesql vs raw Parquet in DuckDB vs deltalake's QueryBuilder.

Usage::

    python benchmarks/delta_scan.py [--sf 1] [--repeat 3]

Steps (all offline):

1. Generate TPC-H at scale factor SF with the tpch extension shipped in the
   ``duckdb-extension-tpch`` wheel (loaded from its file, never installed from the network) and
   cache it as one Parquet file per table under ``benchmarks/data/sf<SF>/parquet``.
2. Write the 8 tables as Delta tables through lakesql (``CREATE TABLE t AS SELECT * FROM
   read_parquet(...)``) into the cached warehouse ``benchmarks/data/sf<SF>/warehouse``, and time
   the write path: ``CREATE TABLE lineitem AS`` through lakesql against a direct
   ``deltalake.write_deltalake`` of the same rows read with ``pyarrow.parquet``.
3. Run the 22 TPC-H queries three ways in this process: (a) lakesql, (b) plain DuckDB over views
   on ``read_parquet([<the Delta table's current file list>])`` (the raw-Parquet reference),
   (c) ``deltalake.QueryBuilder`` (DataFusion). Each query gets one warm-up per engine, then
   ``--repeat`` rounds that run the engines in turn; the median of each is kept.
4. Print a table and write ``benchmarks/results/delta_scan.json``.

deltalake's ``to_pyarrow_dataset()`` / ``to_pyarrow_table()`` are never called: they abort the
process at exit on this platform.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import glob
import json
import math
import os
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from machine import machine_info, versions  # benchmarks/machine.py (run as scripts)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
TARGET = 1.15  # lakesql / raw Parquet, geometric mean

# lakesql's cursor wraps DuckDB's fetch_arrow_table(), deprecated in DuckDB 1.5.
warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*fetch_arrow_table")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sf_tag(sf: float) -> str:
    return f"sf{sf:g}".replace(".", "_")


def tpch_extension() -> str:
    """Path of the tpch extension file inside the installed duckdb-extension-tpch wheel."""
    try:
        import duckdb_extension_tpch
    except ImportError:
        sys.exit("duckdb-extension-tpch is not installed (pip install -e '.[dev]')")
    base = os.path.dirname(duckdb_extension_tpch.__file__)
    found = sorted(glob.glob(os.path.join(base, "**", "tpch.duckdb_extension"), recursive=True))
    exact = [p for p in found if f"v{duckdb.__version__}" in p]
    if not (exact or found):
        sys.exit(f"no tpch.duckdb_extension under {base}")
    return (exact or found)[0]


def tpch_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute(f"LOAD '{tpch_extension()}'")
    return con


def tpch_queries() -> list[tuple[int, str]]:
    con = tpch_connection()
    rows = con.execute("SELECT query_nr, query FROM tpch_queries() ORDER BY query_nr").fetchall()
    con.close()
    return [(int(n), q.strip().rstrip(";").strip()) for n, q in rows]


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def count(con: Any, sql: str | None) -> int:
    """The single integer of a one-row result (`sql` run first when given)."""
    row = (con.execute(sql) if sql else con).fetchone()
    return int(row[0]) if row else 0


# -- 1. data ------------------------------------------------------------------------------------


def generate_parquet(folder: Path, sf: float) -> dict[str, Any]:
    """TPC-H as one Parquet file per table, cached in `folder`."""
    marker = folder / "_done.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("sf") == sf and all((folder / f"{t}.parquet").exists() for t in TABLES):
            log(f"[data] cached TPC-H SF{sf:g} Parquet in {folder}")
            return {**info, "cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"[data] generating TPC-H SF{sf:g} with dbgen ...")
    t0 = time.perf_counter()
    con = tpch_connection()
    con.execute(f"CALL dbgen(sf = {sf})")
    gen_s = time.perf_counter() - t0
    rows = {}
    for t in TABLES:
        con.execute(f"COPY {t} TO {sql_str(str(tmp / f'{t}.parquet'))} (FORMAT parquet)")
        rows[t] = count(con, f"SELECT count(*) FROM {t}")
    con.close()
    info = {
        "sf": sf,
        "rows": rows,
        "dbgen_s": round(gen_s, 3),
        "total_s": round(time.perf_counter() - t0, 3),
        "duckdb": duckdb.__version__,
    }
    (tmp / "_done.json").write_text(json.dumps(info, indent=2))
    tmp.rename(folder)
    log(f"[data] generated in {info['total_s']:.1f} s: {rows}")
    return {**info, "cached": False}


def load_warehouse(warehouse: Path, parquet: Path, sf: float) -> dict[str, Any]:
    """The 8 tables written as Delta through lakesql (CREATE TABLE AS), cached."""
    import lakesql

    marker = warehouse / "_bench_done.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("sf") == sf:
            log(f"[load] cached lakesql warehouse in {warehouse}")
            return {**info, "cached": True}
    shutil.rmtree(warehouse, ignore_errors=True)
    con = lakesql.connect(str(warehouse))
    cur = con.cursor()
    seconds = {}
    for t in TABLES:
        t0 = time.perf_counter()
        cur.execute(
            f"CREATE TABLE {t} AS SELECT * FROM read_parquet({sql_str(str(parquet / f'{t}.parquet'))})"
        )
        seconds[t] = round(time.perf_counter() - t0, 3)
        log(f"[load] CREATE TABLE {t} AS ...: {seconds[t]:.2f} s")
    con.close()
    info = {"sf": sf, "create_table_as_s": seconds, "total_s": round(sum(seconds.values()), 3)}
    marker.write_text(json.dumps(info, indent=2))
    return {**info, "cached": False}


def table_paths(warehouse: Path) -> dict[str, str]:
    return {t: str(warehouse / "main" / t) for t in TABLES}


def folder_stats(path: Path) -> dict[str, int]:
    files = [p for p in path.rglob("*.parquet") if "_delta_log" not in p.parts]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


# -- 2. write path ------------------------------------------------------------------------------


def write_path(folder: Path, parquet_file: Path, repeat: int) -> dict[str, Any]:
    """CREATE TABLE lineitem AS through lakesql vs pyarrow read + write_deltalake, alternating."""
    from deltalake import write_deltalake

    import lakesql

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    source = sql_str(str(parquet_file))
    lake_s, read_s, write_s = [], [], []
    lake_stats: dict[str, int] = {}
    direct_stats: dict[str, int] = {}
    rows = 0
    for i in range(repeat):
        wh = folder / f"lakesql_{i}"
        con = lakesql.connect(str(wh))
        cur = con.cursor()
        t0 = time.perf_counter()
        cur.execute(f"CREATE TABLE lineitem AS SELECT * FROM read_parquet({source})")
        lake_s.append(time.perf_counter() - t0)
        cur.execute("SELECT count(*) FROM lineitem")
        rows = count(cur, None)
        con.close()
        lake_stats = folder_stats(wh / "main" / "lineitem")
        shutil.rmtree(wh)

        target = folder / f"direct_{i}"
        t0 = time.perf_counter()
        table = pq.read_table(parquet_file)
        t1 = time.perf_counter()
        write_deltalake(str(target), table, mode="error")
        t2 = time.perf_counter()
        read_s.append(t1 - t0)
        write_s.append(t2 - t1)
        del table
        gc.collect()
        direct_stats = folder_stats(target)
        shutil.rmtree(target)
        log(
            f"[write] round {i + 1}/{repeat}: lakesql CTAS {lake_s[-1]:.2f} s | "
            f"pyarrow read {read_s[-1]:.2f} s + write_deltalake {write_s[-1]:.2f} s"
        )
    shutil.rmtree(folder, ignore_errors=True)
    lake = statistics.median(lake_s)
    read = statistics.median(read_s)
    write = statistics.median(write_s)
    direct = statistics.median([r + w for r, w in zip(read_s, write_s, strict=True)])
    return {
        "table": "lineitem",
        "rows": rows,
        "repeat": repeat,
        "lakesql_ctas_s": round(lake, 3),
        "direct_read_s": round(read, 3),
        "direct_write_s": round(write, 3),
        "direct_total_s": round(direct, 3),
        "ratio_vs_direct_total": round(lake / direct, 3),
        "ratio_vs_direct_write": round(lake / write, 3),
        "lakesql_runs_s": [round(x, 3) for x in lake_s],
        "direct_total_runs_s": [round(r + w, 3) for r, w in zip(read_s, write_s, strict=True)],
        "lakesql_files": lake_stats,
        "direct_files": direct_stats,
    }


# -- 3. queries ---------------------------------------------------------------------------------


def lakesql_runner(warehouse: Path) -> tuple[Callable[[str], pa.Table], Callable[[], None]]:
    import lakesql

    con = lakesql.connect(str(warehouse))
    cur = con.cursor()

    def run(q: str) -> pa.Table:
        cur.execute(q)
        return cur.fetch_arrow_table()

    return run, con.close


def parquet_runner(paths: dict[str, str]) -> tuple[Callable[[str], pa.Table], Callable[[], None]]:
    from deltalake import DeltaTable

    con = duckdb.connect()
    for t, path in paths.items():
        files = ", ".join(sql_str(f) for f in DeltaTable(path).file_uris())
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet([{files}])")

    def run(q: str) -> pa.Table:
        return con.execute(q).to_arrow_table()

    return run, con.close


def querybuilder_runner(
    paths: dict[str, str],
) -> tuple[Callable[[str], pa.Table], Callable[[], None]]:
    from deltalake import DeltaTable, QueryBuilder

    qb = QueryBuilder()
    for t, path in paths.items():
        qb.register(t, DeltaTable(path))

    def run(q: str) -> pa.Table:
        return qb.execute(q).read_all()

    return run, lambda: None


def timed(fn: Callable[[str], pa.Table], q: str) -> tuple[float, float, int]:
    """Wall-clock seconds, process CPU seconds (all threads) and row count of one run."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    result = fn(q)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    rows = result.num_rows
    del result
    return elapsed, cpu, rows


def short_error(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip().splitlines()[0]
    return text[:300]


def run_queries(
    queries: list[tuple[int, str]],
    engines: dict[str, Callable[[str], pa.Table]],
    repeat: int,
    slow_limit: float,
) -> list[dict[str, Any]]:
    out = []
    for nr, q in queries:
        times: dict[str, list[float]] = {e: [] for e in engines}
        cpus: dict[str, list[float]] = {e: [] for e in engines}
        rows: dict[str, int | None] = {e: None for e in engines}
        errors: dict[str, str | None] = {e: None for e in engines}
        for name, fn in engines.items():  # warm-up
            try:
                elapsed, cpu, rows[name] = timed(fn, q)
                if elapsed > slow_limit:  # too slow to repeat: the warm-up is the measurement
                    times[name].append(elapsed)
                    cpus[name].append(cpu)
            except Exception as exc:
                errors[name] = short_error(exc)
        order = list(engines.items())
        for r in range(repeat):
            # Rotate the order every round: an engine running right after another one inherits
            # its warm (or polluted) caches and allocator state, so no engine keeps one slot.
            for name, fn in order[r % len(order) :] + order[: r % len(order)]:
                if errors[name] is not None or (times[name] and times[name][0] > slow_limit):
                    continue
                try:
                    elapsed, cpu, _rows = timed(fn, q)
                except Exception as exc:  # failed after a good warm-up: no timing is kept
                    errors[name], times[name], cpus[name] = short_error(exc), [], []
                    continue
                times[name].append(elapsed)
                cpus[name].append(cpu)
            gc.collect()
        med = {e: (statistics.median(times[e]) if times[e] else None) for e in engines}
        med_cpu = {e: (statistics.median(cpus[e]) if cpus[e] else None) for e in engines}
        ref = med["parquet"]
        ref_cpu = med_cpu["parquet"]
        entry: dict[str, Any] = {"query": nr, "rows": rows["parquet"]}
        for e in engines:
            m, mc = med[e], med_cpu[e]
            entry[f"{e}_s"] = None if m is None else round(m, 4)
            entry[f"{e}_runs_s"] = [round(x, 4) for x in times[e]]
            entry[f"{e}_cpu_s"] = None if mc is None else round(mc, 4)
            if e != "parquet":
                entry[f"{e}_ratio"] = None if m is None or not ref else round(m / ref, 3)
                entry[f"{e}_cpu_ratio"] = (
                    None if mc is None or not ref_cpu else round(mc / ref_cpu, 3)
                )
                entry[f"{e}_rows"] = rows[e]
                entry[f"{e}_rows_match"] = None if rows[e] is None else rows[e] == rows["parquet"]
            entry[f"{e}_error"] = errors[e]
        out.append(entry)
        log(format_row(entry))
    return out


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


# -- 4. report ----------------------------------------------------------------------------------


def fmt_s(x: float | None) -> str:
    return "   fail" if x is None else f"{x:7.3f}"


def fmt_r(x: float | None) -> str:
    return "    -" if x is None else f"{x:5.2f}x"


def format_row(e: dict[str, Any]) -> str:
    check = (
        "ok"
        if e.get("lakesql_rows_match")
        else "ROWS DIFFER"
        if e.get("lakesql_rows_match") is False
        else "lakesql failed"
    )
    return (
        f"Q{e['query']:02d}  {fmt_s(e['parquet_s'])}  {fmt_s(e['lakesql_s'])} {fmt_r(e['lakesql_ratio'])}"
        f"  {fmt_s(e['querybuilder_s'])} {fmt_r(e['querybuilder_ratio'])}  {e['rows'] if e['rows'] is not None else '-':>6}  {check}"
    )


def print_report(result: dict[str, Any]) -> None:
    s = result["summary"]
    print()
    print(f"TPC-H SF{result['sf']:g}, median of {result['repeat']} runs after 1 warm-up (seconds)")
    print("query  parquet  lakesql  ratio  querybuilder ratio    rows  check")
    for e in result["queries"]:
        print(format_row(e))
    print(
        f"total {s['total_parquet_s']:8.3f} {s['total_lakesql_s']:8.3f}"
        f"        {s['total_querybuilder_s']:8.3f} (querybuilder: successful queries only)"
    )
    print(
        f"geomean lakesql/parquet: {s['geomean_lakesql_vs_parquet']:.3f}x "
        f"(target <= {TARGET}x: {'met' if s['meets_target'] else 'MISSED'})"
    )
    print(
        f"geomean on process CPU time: lakesql/parquet {s['geomean_cpu_lakesql_vs_parquet']}x, "
        f"querybuilder/parquet {s['geomean_cpu_querybuilder_vs_parquet']}x"
    )
    la = result["load_average"]
    print(
        f"load average at start/end: {la['start']} / {la['end']} on {result['machine']['cores']} cores"
    )
    qb = s["geomean_querybuilder_vs_parquet"]
    print(
        f"geomean querybuilder/parquet: {qb:.3f}x over {s['querybuilder_ok']} queries; "
        f"failed: {s['querybuilder_failed'] or 'none'}"
        if qb is not None
        else "querybuilder: every query failed"
    )
    w = result.get("write_path")
    if w:
        print()
        print(f"write path, lineitem ({w['rows']} rows), median of {w['repeat']}:")
        print(
            f"  lakesql CREATE TABLE AS          {w['lakesql_ctas_s']:8.3f} s  files {w['lakesql_files']}"
        )
        print(
            f"  pyarrow read + write_deltalake   {w['direct_total_s']:8.3f} s  "
            f"(read {w['direct_read_s']:.3f} + write {w['direct_write_s']:.3f})  files {w['direct_files']}"
        )
        print(
            f"  ratio lakesql / direct: {w['ratio_vs_direct_total']:.3f}x "
            f"(vs write_deltalake alone: {w['ratio_vs_direct_write']:.3f}x)"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed runs per query after one warm-up (default 3)"
    )
    ap.add_argument(
        "--write-repeat",
        type=int,
        default=None,
        help="rounds of the write-path test (default --repeat)",
    )
    ap.add_argument("--queries", default="", help="comma-separated query numbers (default all 22)")
    ap.add_argument("--skip-write", action="store_true", help="skip the write-path comparison")
    ap.add_argument("--no-querybuilder", action="store_true", help="skip deltalake's QueryBuilder")
    ap.add_argument(
        "--slow-limit",
        type=float,
        default=120.0,
        help="a warm-up slower than this many seconds is the only run of that engine (default 120)",
    )
    ap.add_argument(
        "--data", type=Path, default=HERE / "data", help="cache folder (default benchmarks/data)"
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "delta_scan.json", help="result JSON")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    started = time.perf_counter()
    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1):
        log(
            f"warning: the machine is busy (load average {load_before[0]:.1f}): timings will be noisy"
        )
    base = args.data / sf_tag(args.sf)
    parquet = base / "parquet"
    warehouse = base / "warehouse"
    gen = generate_parquet(parquet, args.sf)
    load = load_warehouse(warehouse, parquet, args.sf)
    paths = table_paths(warehouse)
    tables = {t: {"rows": gen["rows"][t], **folder_stats(Path(p))} for t, p in paths.items()}

    write = None
    if not args.skip_write:
        write = write_path(
            base / "writebench", parquet / "lineitem.parquet", args.write_repeat or args.repeat
        )

    queries = tpch_queries()
    if args.queries:
        wanted = {int(x) for x in args.queries.split(",") if x.strip()}
        queries = [(n, q) for n, q in queries if n in wanted]

    engines: dict[str, Callable[[str], pa.Table]] = {}
    closers = []
    for name, make in [
        ("parquet", lambda: parquet_runner(paths)),
        ("lakesql", lambda: lakesql_runner(warehouse)),
        ("querybuilder", lambda: querybuilder_runner(paths)),
    ]:
        if name == "querybuilder" and args.no_querybuilder:
            continue
        fn, close = make()
        engines[name] = fn
        closers.append(close)
    if "querybuilder" not in engines:
        engines["querybuilder"] = _disabled
    log("query  parquet  lakesql  ratio  querybuilder ratio    rows  check")
    per_query = run_queries(queries, engines, args.repeat, args.slow_limit)
    for close in closers:
        close()

    both = [e for e in per_query if e["lakesql_s"] is not None and e["parquet_s"] is not None]
    qb_ok = [e for e in both if e["querybuilder_s"] is not None]
    g_lake = geomean([e["lakesql_ratio"] for e in both])
    g_qb = geomean([e["querybuilder_ratio"] for e in qb_ok])
    summary = {
        "queries": len(per_query),
        "geomean_lakesql_vs_parquet": None if g_lake is None else round(g_lake, 4),
        "geomean_querybuilder_vs_parquet": None if g_qb is None else round(g_qb, 4),
        # Same ratios on process CPU time (all threads): less sensitive to other processes
        # competing for the cores than wall-clock time.
        "geomean_cpu_lakesql_vs_parquet": _round(geomean([e["lakesql_cpu_ratio"] for e in both])),
        "geomean_cpu_querybuilder_vs_parquet": _round(
            geomean([e["querybuilder_cpu_ratio"] for e in qb_ok])
        ),
        "querybuilder_ok": len(qb_ok),
        "querybuilder_failed": [e["query"] for e in per_query if e["querybuilder_s"] is None],
        "lakesql_failed": [e["query"] for e in per_query if e["lakesql_s"] is None],
        "row_mismatches": [e["query"] for e in per_query if e["lakesql_rows_match"] is False],
        "querybuilder_row_mismatches": [
            e["query"] for e in per_query if e["querybuilder_rows_match"] is False
        ],
        "total_parquet_s": round(sum(e["parquet_s"] for e in both), 3),
        "total_lakesql_s": round(sum(e["lakesql_s"] for e in both), 3),
        "total_querybuilder_s": round(sum(e["querybuilder_s"] for e in qb_ok), 3),
        "target": TARGET,
        "meets_target": g_lake is not None and g_lake <= TARGET,
    }
    result = {
        "benchmark": "delta_scan",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sf": args.sf,
        "repeat": args.repeat,
        "machine": machine_info(),
        "versions": versions("duckdb", "deltalake", "lakesql", "pyarrow"),
        "data": {"generate": gen, "lakesql_load": load, "tables": tables},
        "write_path": write,
        "queries": per_query,
        "summary": summary,
        "elapsed_s": round(time.perf_counter() - started, 1),
        # 1-minute load average when the run started and ended: above the core count, other
        # processes competed for the CPU and the timings are noisy.
        "load_average": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"\nwrote {args.out}")
    return 0


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _disabled(q: str) -> pa.Table:
    raise RuntimeError("disabled (--no-querybuilder)")


if __name__ == "__main__":
    sys.exit(main())
