"""Batch scoring: ML.PREDICT against the model called directly, pandas, and a row-by-row UDF.

Usage::

    python benchmarks/predict.py                       # 1M rows, 10 and 50 features, median of 3
    python benchmarks/predict.py --rows 200000 --features 10 --repeat 2

Steps (all offline):

1. Data. For each feature count F, a Delta table ``big_F`` of ``--rows`` rows written through
   lakesql: ``id`` (BIGINT), ``f0 .. f<F-1>`` (DOUBLE, standard normal, numpy seed fixed) and a
   binary ``label`` drawn from a noisy linear model of the features; ``sample_F`` holds its first
   ``--sample-rows`` rows. Cached in ``benchmarks/data/predict/r<rows>/warehouse``.
2. Models. ``TRAIN AUTOML xgb_F PREDICT label FROM sample_F OPTIONS (estimators = ['xgboost'],
   max_trials = 2, time_budget = 30, exclude = ['id'])`` and the same with ``['lgbm']``
   (cached too: a model already in the warehouse is reused). ``max_trials = 1`` fails: FLAML then
   skips its search and logs no trial, and TRAIN reports "the search finished no trial".
3. Scoring ``big_F`` in four kinds of way, in this process, one warm-up each then ``--repeat`` rounds in an
   order rotated every round; the median is kept:

   (a) ML.PREDICT over the table's rows already in memory as one Arrow table, registered with
       ``Connection.register`` (the direct call's input), keeping three outputs:
       ``ml_predict_mem_labels``: ``SELECT id, predicted_label FROM ML.PREDICT(MODEL m, TABLE
       mem)``, what a scoring job keeps and as much as the direct call returns: **the target
       is judged on this one**; ``ml_predict_mem_probs`` adds ``predicted_label_probs`` (a list
       of {label, prob} structs per row, built by DuckDB); ``ml_predict_mem``: ``SELECT *``,
       every input column handed through DuckDB as well. ``ml_predict_labels`` and
       ``ml_predict`` are the first and the last over the Delta table ``big_F`` (compare them
       with ``direct_scan``). All are fetched as Arrow;
   (b) ``direct``: the booster (the very object ML.PREDICT uses, ``XGBClassifier.get_booster()``
       / ``lightgbm.Booster`` loaded from ``model.ubj`` / ``model.txt``: two LightGBM boosters
       loaded from one file run at speeds up to 1.6x apart, run after run, which would decide the
       ratio) called with ``inplace_predict`` / ``predict`` on
       the matrix made by the model's stored preparation (``Prep.from_dict(prep.json).matrix``,
       the fastest way lakesql has, straight from Arrow) of that in-memory Arrow table;
       ``direct_scan`` is the same plus reading the table (``SELECT * FROM big_F`` as Arrow),
       i.e. the same work ML.PREDICT does minus assembling its output; ``model_only`` is the
       booster call alone on the prepared matrix (for reference);
   (c) ``pandas``: ``SELECT * FROM big_F`` with ``fetchdf()``, the stored preparation, then the
       scikit-learn API (``XGBClassifier.predict_proba``; lightgbm's ``Booster.predict`` on the
       frame);
   (d) ``udf_row``: a DuckDB Python UDF of type ``native`` (called once per row) applying the
       same standardisation and calling the booster on a 1-row matrix, run on the rows
       ``id < --udf-rows`` only and **extrapolated** to rows per second.

   ML.PREDICT's class-1 probabilities are checked against the direct call's (max abs difference).
4. A breakdown of one ML.PREDICT call into its steps, each run on its own, median of
   ``--repeat`` runs (scan to Arrow, Prep.matrix, the model, predict_reader in all without the
   scan, the scored rows through DuckDB's output query), and a table on stdout;
   ``benchmarks/results/predict.json``.

``--before FILE`` copies the medians of an earlier run's JSON into this one (before/after a fix).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from machine import machine_info, versions  # benchmarks/machine.py (run as scripts)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET = 0.8  # ML.PREDICT rows/s over the direct call's
FAMILIES = {"xgboost": "xgb", "lgbm": "lgbm"}

warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*fetch_arrow_table")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- data and models --------------------------------------------------------------------------


def make_table(rows: int, features: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed + features)
    X = rng.standard_normal((rows, features))
    w = rng.standard_normal(features)
    logit = X @ w / np.sqrt(features) * 2.0 + 0.5 * rng.standard_normal(rows)
    cols: dict[str, Any] = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    for i in range(features):
        cols[f"f{i}"] = pa.array(X[:, i])
    cols["label"] = pa.array((logit > 0).astype(np.int64))
    return pa.table(cols)


def tables(cur: Any) -> set[str]:
    return {
        r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def models(cur: Any) -> set[str]:
    return {r[0] for r in cur.execute("SELECT name FROM lakesql.models").fetchall()}


def prepare(cur: Any, args: argparse.Namespace, features: int) -> None:
    have = tables(cur)
    big, sample = f"big_{features}", f"sample_{features}"
    if big not in have:
        log(f"writing {big} ({args.rows:,} rows x {features} features)")
        src = f"__src_{big}"
        cur._duck.register(src, make_table(args.rows, features, args.seed))
        cur.execute(f"CREATE TABLE {big} AS SELECT * FROM {src}")
        cur._duck.unregister(src)
    if sample not in have:
        cur.execute(f"CREATE TABLE {sample} AS SELECT * FROM {big} WHERE id < {args.sample_rows}")
    have_models = models(cur)
    for fam in args.families:
        name = f"{FAMILIES[fam]}_{features}"
        if name in have_models:
            continue
        log(f"training {name}")
        cur.execute(
            f"TRAIN AUTOML {name} PREDICT label FROM {sample} OPTIONS (estimators = ['{fam}'], "
            f"max_trials = {args.max_trials}, time_budget = {args.time_budget}, exclude = ['id'])"
        )


# -- the ways of scoring ------------------------------------------------------------------------


class Native:
    """The saved model loaded with its own library, plus its stored preparation."""

    def __init__(self, folder: Path, loaded: Any):
        """`loaded`: the library's model object lakesql loaded from `folder`
        (``XGBClassifier`` / ``lightgbm.Booster``), so both sides call the same instance: two
        LightGBM boosters loaded from one file can differ 1.6x in speed (see the README)."""
        from lakesql.ml.prep import Prep

        self.meta = json.loads((folder / "model.json").read_text())
        self.prep = Prep.from_dict(json.loads((folder / "prep.json").read_text()))
        self.family = self.meta["family"]
        if self.family == "xgboost":
            self.sk: Any = loaded
            self.booster: Any = loaded.get_booster()
            self.trees = len(self.booster.get_dump())
        else:
            self.booster = loaded
            self.sk = self.booster
            self.trees = self.booster.num_trees()
        cols = self.prep.columns
        self.inputs = [c["name"] for c in cols]
        self.mean = np.array([c["mean"] for c in cols])
        self.std = np.array([c["std"] for c in cols])
        self.fill = np.array([c["fill"] for c in cols])

    def p1(self, X: Any) -> Any:
        """Class-1 probability from a prepared float matrix."""
        if self.family == "xgboost":
            return self.booster.inplace_predict(X)
        return self.booster.predict(X)

    def p1_sklearn(self, frame: Any) -> Any:
        if self.family == "xgboost":
            return self.sk.predict_proba(frame)[:, 1]
        return self.sk.predict(frame)

    def row(self, *values: float) -> float:
        """One row, as a row-by-row UDF computes it."""
        x = np.array(values, dtype=np.float64)
        x = np.where(np.isnan(x), self.fill, x)
        x = ((x - self.mean) / self.std).reshape(1, -1)
        return float(self.p1(x)[0])


# what each ML.PREDICT query keeps of the output
SELECTS = {
    "labels": "id, predicted_label",  # what a scoring job keeps; the direct call's output
    "probs": "id, predicted_label, predicted_label_probs",
    "all": "*",  # every input column, handed through DuckDB too
}


def ml_predict(cur: Any, model: str, table: str, keep: str = "all") -> pa.Table:
    return cur.execute(
        f"SELECT {SELECTS[keep]} FROM ML.PREDICT(MODEL {model}, TABLE {table})"
    ).fetch_arrow_table()


def direct(native: Native, arrow: pa.Table) -> Any:
    return native.p1(native.prep.matrix(arrow))


def direct_scan(cur: Any, native: Native, table: str) -> Any:
    return direct(native, cur.execute(f"SELECT * FROM {table}").fetch_arrow_table())


def with_pandas(cur: Any, native: Native, table: str) -> Any:
    frame = cur.execute(f"SELECT * FROM {table}").fetchdf()
    return native.p1_sklearn(native.prep.transform(frame))


def ml_probs(out: pa.Table, label: str = "label") -> Any:
    """Class-1 probabilities of ML.PREDICT's output, in id order."""
    probs = out.column(f"predicted_{label}_probs").combine_chunks()
    p = probs.flatten().field("prob").to_numpy().reshape(len(out), -1)[:, 1]
    order = np.argsort(out.column("id").to_numpy())
    return p[order]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall time, process CPU time (all threads) and result of fn()."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def breakdown(session: Any, mv: Any, table: str) -> dict[str, float]:
    """ML.PREDICT's steps, each timed on its own (one run; the caller keeps medians)."""
    from lakesql.ml import inference
    from lakesql.ml import predict as P

    steps: dict[str, float] = {}
    model_rows = int(session.settings["batch_rows"])
    rows = min(inference.SCORE_ROWS, model_rows)
    gc.collect()
    t0 = time.perf_counter()
    reader = inference.input_reader(session, mv, table, rows)
    batches = list(inference._batches(reader))
    steps["scan_to_arrow"] = time.perf_counter() - t0
    n = sum(b.num_rows for b in batches)
    t0 = time.perf_counter()
    X = np.empty((n, len(mv.prep.outputs)), order="F")
    start = 0
    for b in batches:
        mv.prep.matrix(b, out=X[start : start + b.num_rows])
        start += b.num_rows
    steps["prep_matrix"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mv.matrix_values(X)
    steps["model_predict_values"] = time.perf_counter() - t0
    del X
    t0 = time.perf_counter()
    scored = P.predict_reader(
        mv,
        pa.RecordBatchReader.from_batches(batches[0].schema, batches),
        score=P.score_batch,
        model_rows=model_rows,
    )
    steps["predict_reader_total"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    con = session.engine.cursor()
    con.register("__bench_scored", scored)
    con.execute(P.output_sql(mv, "__bench_scored")).to_arrow_table()
    con.unregister("__bench_scored")
    steps["output_through_duckdb"] = time.perf_counter() - t0
    return {k: round(v, 4) for k, v in steps.items()}


def bench_model(
    con: Any, cur: Any, wh: Path, model: str, features: int, args: argparse.Namespace
) -> dict[str, Any]:
    from lakesql.ml import predict as P

    table = f"big_{features}"
    folder = wh / "_models" / model / "v1"
    native = Native(folder, P.load(con._live().warehouse, model).model.model)
    arrow = cur.execute(f"SELECT * FROM {table}").fetch_arrow_table().combine_chunks()
    n = arrow.num_rows
    X_ready = native.prep.matrix(arrow)
    mem = f"mem_{features}"
    con.register(mem, arrow)  # the direct call's Arrow data, for ML.PREDICT

    # correctness: ML.PREDICT's probabilities against the direct call's
    out = ml_predict(cur, model, table)
    ref = direct(native, arrow)
    diff = float(
        np.max(np.abs(ml_probs(out) - np.asarray(ref)[np.argsort(arrow.column("id").to_numpy())]))
    )

    mem_out = ml_predict(cur, model, mem)
    assert mem_out.sort_by("id").equals(out.sort_by("id")), "ML.PREDICT differs in memory"
    del out, mem_out

    methods: dict[str, Callable[[], Any]] = {
        "ml_predict": lambda: ml_predict(cur, model, table),
        "ml_predict_labels": lambda: ml_predict(cur, model, table, "labels"),
        "ml_predict_mem": lambda: ml_predict(cur, model, mem),
        "ml_predict_mem_labels": lambda: ml_predict(cur, model, mem, "labels"),
        "ml_predict_mem_probs": lambda: ml_predict(cur, model, mem, "probs"),
        "direct": lambda: direct(native, arrow),
        "direct_scan": lambda: direct_scan(cur, native, table),
        "model_only": lambda: native.p1(X_ready),
        "pandas": lambda: with_pandas(cur, native, table),
    }
    runs: dict[str, list[float]] = {m: [] for m in methods}
    cpus: dict[str, list[float]] = {m: [] for m in methods}
    for fn in methods.values():  # warm-up
        timed(fn)
    names = list(methods)
    for r in range(args.repeat):
        order = names[r % len(names) :] + names[: r % len(names)]
        for m in order:
            t, c, res = timed_cpu(methods[m])
            del res
            runs[m].append(round(t, 4))
            cpus[m].append(round(c, 4))
        log(f"  {model} round {r + 1}: " + ", ".join(f"{m} {runs[m][-1]:.3f}s" for m in names))
    med = {m: statistics.median(v) for m, v in runs.items()}
    med_cpu = {m: statistics.median(v) for m, v in cpus.items()}
    rps = {m: n / med[m] for m in med}

    udf: dict[str, Any] | None = None
    if args.udf_rows:
        session = con._live()
        fname = f"__bench_row_{model}"
        params = ", ".join(f"x{i}" for i in range(len(native.inputs)))
        row_fn = eval(
            f"lambda {params}: row({params})", {"row": native.row}
        )  # DuckDB counts params
        session.engine.register_function(
            fname, row_fn, ["DOUBLE"] * len(native.inputs), "DOUBLE", vectorized=False
        )
        call = f"SELECT {fname}({', '.join(native.inputs)}) AS p FROM {table} WHERE id < {args.udf_rows}"
        cur.execute(call).fetchall()  # warm-up
        times = []
        for _ in range(args.udf_repeat):
            t, got = timed(lambda: cur.execute(call).fetchall())
            times.append(round(t, 4))
        k = len(got)
        udf_med = statistics.median(times)
        rps["udf_row"] = k / udf_med
        med["udf_row"] = n / rps["udf_row"]  # extrapolated to the whole table
        runs["udf_row"] = times
        udf = {"rows": k, "runs_s": times, "median_s": udf_med, "extrapolated": True}
        session.engine.unregister_function(fname)

    con.unregister(mem)
    mv = P.load(con._live().warehouse, model)
    runs_parts = [breakdown(con._live(), mv, table) for _ in range(args.repeat)]
    parts = {k: statistics.median(r[k] for r in runs_parts) for k in runs_parts[0]}
    return {
        "model": model,
        "family": native.family,
        "features": features,
        "rows": n,
        "trees": native.trees,
        "runs_s": runs,
        "runs_cpu_s": cpus,
        "median_s": {m: round(v, 4) for m, v in med.items()},
        "median_cpu_s": {m: round(v, 4) for m, v in med_cpu.items()},
        "cpu_ratio_vs_direct": {
            m: round(med_cpu["direct"] / med_cpu[m], 3) for m in med_cpu if med_cpu[m]
        },
        "cpu_ratio_vs_direct_scan": {
            m: round(med_cpu["direct_scan"] / med_cpu[m], 3) for m in med_cpu if med_cpu[m]
        },
        "rows_per_s": {m: round(v) for m, v in rps.items()},
        "ratio_vs_direct": {m: round(rps[m] / rps["direct"], 3) for m in rps},
        "ratio_vs_direct_scan": {m: round(rps[m] / rps["direct_scan"], 3) for m in rps},
        "max_abs_diff_vs_direct": diff,
        "udf": udf,
        "breakdown_s": parts,
    }


# -- report ------------------------------------------------------------------------------------


METHODS = [
    "ml_predict_mem_labels",
    "ml_predict_mem_probs",
    "ml_predict_mem",
    "ml_predict_labels",
    "ml_predict",
    "direct",
    "direct_scan",
    "model_only",
    "pandas",
    "udf_row",
]


HEADLINE = "ml_predict_mem_labels"  # the same Arrow data and the same output as the direct call
SQL_WAYS = [m for m in METHODS if m.startswith("ml_predict")]


def summarise(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The lowest ratio over the models of each ML.PREDICT query, to the direct call and (over
    the Delta table) to the direct call plus the scan; the target is judged on HEADLINE."""
    worst = {
        m: {
            "min_ratio_vs_direct": min(e["ratio_vs_direct"][m] for e in entries),
            "min_cpu_ratio_vs_direct": min(e["cpu_ratio_vs_direct"][m] for e in entries),
            "min_ratio_vs_direct_scan": min(e["ratio_vs_direct_scan"][m] for e in entries),
        }
        for m in SQL_WAYS
    }
    return {
        "target": TARGET,
        "headline": HEADLINE,
        "meets_target": worst[HEADLINE]["min_ratio_vs_direct"] >= TARGET,
        "ways": worst,
    }


def print_table(res: dict[str, Any]) -> None:
    print(
        f"\n{res['rows']:,} rows, median of {res['repeat']} after one warm-up; rows/s "
        f"(ratio to direct)\n"
    )
    head = f"{'model':<10} {'trees':>5} " + " ".join(f"{m:>22}" for m in METHODS)
    print(head)
    for e in res["models"]:
        cells = []
        for m in METHODS:
            if m in e["rows_per_s"]:
                cells.append(f"{e['rows_per_s'][m]:>12,} ({e['ratio_vs_direct'][m]:.2f}x)")
            else:
                cells.append("-")
        print(f"{e['model']:<10} {e['trees']:>5} " + " ".join(f"{c:>22}" for c in cells))
    s = res["summary"]
    head = s["ways"][s["headline"]]["min_ratio_vs_direct"]
    print(
        f"\n{s['headline']} / direct: min {head:.2f}x "
        f"(target >= {TARGET}x: {'met' if s['meets_target'] else 'missed'})"
    )
    for m, w in s["ways"].items():
        print(
            f"  {m:<24} vs direct min {w['min_ratio_vs_direct']:.2f}x "
            f"(CPU {w['min_cpu_ratio_vs_direct']:.2f}x), vs direct + scan "
            f"{w['min_ratio_vs_direct_scan']:.2f}x"
        )
    for e in res["models"]:
        print(f"  {e['model']} ML.PREDICT steps (s): {e['breakdown_s']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sample-rows", type=int, default=50_000, help="training rows (default 50k)")
    ap.add_argument("--features", default="10,50", help="comma-separated feature counts")
    ap.add_argument("--families", default="xgboost,lgbm", help="xgboost, lgbm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--udf-rows", type=int, default=20_000, help="rows for the row UDF (0: skip)")
    ap.add_argument("--udf-repeat", type=int, default=3)
    ap.add_argument(
        "--max-trials", type=int, default=2, help="2: max_trials = 1 fails (see README)"
    )
    ap.add_argument("--time-budget", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=None, help="cache folder")
    ap.add_argument("--out", type=Path, default=RESULTS / "predict.json")
    ap.add_argument("--before", type=Path, default=None, help="an earlier predict.json to compare")
    ap.add_argument("--note", default="", help="free text stored with the results")
    args = ap.parse_args(argv)
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    feats = [int(f) for f in args.features.split(",") if f.strip()]

    import lakesql

    data = args.data or HERE / "data" / "predict" / f"r{args.rows}"
    wh = data / "warehouse"
    wh.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    con = lakesql.connect(str(wh))
    cur = con.cursor()
    for f in feats:
        prepare(cur, args, f)
    entries = []
    for f in feats:
        for fam in args.families:
            model = f"{FAMILIES[fam]}_{f}"
            log(f"scoring with {model}")
            entries.append(bench_model(con, cur, wh, model, f, args))
    summary = summarise(entries)
    res: dict[str, Any] = {
        "benchmark": "predict",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(
            "lakesql", "duckdb", "pyarrow", "pandas", "numpy", "xgboost-cpu", "lightgbm"
        ),
        "rows": args.rows,
        "sample_rows": args.sample_rows,
        "repeat": args.repeat,
        "udf_rows": args.udf_rows,
        "breakdown_runs": args.repeat,
        "train_options": {"max_trials": args.max_trials, "time_budget": args.time_budget},
        "note": args.note,
        "load_average": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        "models": entries,
        "summary": summary,
    }
    if args.before and args.before.exists():
        old = json.loads(args.before.read_text())
        res["before"] = {
            "date": old.get("date"),
            "note": old.get("note", ""),
            "load_average": old.get("load_average"),
            "models": {
                e["model"]: {
                    "median_s": e["median_s"],
                    "rows_per_s": e["rows_per_s"],
                    "ratio_vs_direct": e["ratio_vs_direct"],
                    "breakdown_s": e.get("breakdown_s"),
                }
                for e in old["models"]
            },
        }
    con.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print_table(res)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
