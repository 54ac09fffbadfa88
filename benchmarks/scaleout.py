"""TRAIN AUTOML sequentially against TRAIN AUTOML with its trials on Ray, in the same budget.

Usage::

    pip install -e '.[ray]'
    python benchmarks/scaleout.py                       # budgets 20 and 60 s, 2 rounds (~12 min)
    python benchmarks/scaleout.py --budgets 20 --repeat 1
    python benchmarks/scaleout.py --predict-only        # redo only the PREDICT INTO comparison

For each dataset and budget, in one process, the same statement twice:

- **sequential**: ``TRAIN AUTOML m PREDICT y FROM t OPTIONS (time_budget = B, seed = 0)``, FLAML's
  sequential search, each trial with all cores (``n_jobs = -1``);
- **ray**: the same with ``cluster => 'local'``: an embedded Ray with 2 CPUs (started once, before
  the first run; its start-up is reported on its own), FLAML's parallel search with 2 concurrent
  trials of 1 CPU each.

Recorded per run: wall time of the statement, FLAML trials completed (the registered trials less
the default HistGradientBoosting candidate), learners tried, the best validation metric among
FLAML's trials (as FLAML measured it), the validation and test metric of the registered model
(the best configuration refit), the time of the first trial's result (search start-up), and the
trials' summed training time over the search's wall time (how much trials overlapped). The two
modes alternate which runs first, round after round.

Also timed: ``PREDICT m FROM t INTO t2`` locally and on Ray Data (2 actors of 0.5 CPU), on
``--predict-rows`` rows, with the two results compared.

Datasets (offline): scikit-learn's bundled ``breast_cancer`` (569 rows: trials take milliseconds,
the search is dominated by per-trial overhead) and a ``make_classification`` set of 20,000 rows x 30
features (trials take around a second: the search is compute-bound).

What 2 cores can and cannot show: the cluster is this machine, so Ray can only trade one trial with
2 threads for 2 trials with 1 thread each, while paying for Tune's actors, the object store and
its own processes on the same 2 cores. This measures that overhead and whether concurrency already
helps at 2; it cannot show scaling with workers, which is the point of a real cluster (and which
depends on its size, network and the data's size). Output: ``benchmarks/results/scaleout.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ray_environment(tmp: Path) -> None:
    """An embedded Ray on 127.0.0.1, its files under `tmp`, token auth from the environment (no
    ~/.ray/auth_token written). Must run before Ray is imported."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ["RAY_TMPDIR"] = str(tmp)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.pop("RAY_ADDRESS", None)


def datasets() -> dict[str, Any]:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer, make_classification

    cancer = load_breast_cancer(as_frame=True).frame
    cancer.columns = [c.replace(" ", "_") for c in cancer.columns]
    cancer = cancer.rename(columns={"target": "y"})
    X, y = make_classification(
        n_samples=20_000, n_features=30, n_informative=12, flip_y=0.05, random_state=0
    )
    synthetic = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    synthetic["y"] = y
    return {"breast_cancer": cancer, "synthetic_20k": synthetic}


def load(cur: Any, table: str, frame: Any) -> None:
    import pyarrow as pa

    cur._duck.register("__src", pa.Table.from_pandas(frame, preserve_index=False))
    cur.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM __src")
    cur._duck.unregister("__src")


def train(
    cur: Any, wh: Path, model: str, table: str, budget: float, cluster: bool
) -> dict[str, Any]:
    options = f"time_budget = {budget}, seed = 0" + (", cluster => 'local'" if cluster else "")
    started = time.perf_counter()
    cur.execute(f"TRAIN OR REPLACE AUTOML {model} PREDICT y FROM {table} OPTIONS ({options})")
    seconds = time.perf_counter() - started
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    version = summary["version"]
    trials = [
        r
        for r in cur.execute(
            f"SELECT estimator, valid_metric, train_seconds, wall_clock_seconds FROM lakesql.trials "
            f"WHERE model = '{model}' AND version = {version} AND estimator != 'histgb_default'"
        ).fetchall()
    ]
    doc = json.loads((wh / "_models" / model / f"v{version}" / "version.json").read_text())
    clocks = [r[3] for r in trials if r[3] is not None]
    search = max(clocks) if clocks else None
    return {
        "mode": "ray" if cluster else "sequential",
        "seconds": round(seconds, 2),
        "trials": len(trials),
        "learners": sorted({r[0] for r in trials}),
        "best_trial_valid_roc_auc": max((r[1] for r in trials if r[1] is not None), default=None),
        "model_valid_roc_auc": summary["valid_metric"],
        "model_test_roc_auc": summary["test_metric"],
        "best_estimator": summary["best_estimator"],
        "first_result_s": round(min(clocks), 2) if clocks else None,
        "trial_seconds_over_search_seconds": round(sum(r[2] or 0 for r in trials) / search, 2)
        if search
        else None,
        "n_jobs_per_trial": 1 if cluster else os.cpu_count(),
        "best_trial": doc["best_trial"]["learner"],
    }


def predict(cur: Any, rows: int, repeat: int = 3) -> dict[str, Any]:
    """PREDICT … INTO locally and on Ray Data, `repeat` times each (alternating), results compared."""
    copies = max(1, rows // 20_000)
    cur.execute(
        f"CREATE OR REPLACE TABLE to_score AS SELECT s.* FROM synthetic_20k s, range({copies})"
    )
    out: dict[str, Any] = {"rows": cur.execute("SELECT count(*) FROM to_score").fetchone()[0]}
    times: dict[str, list[float]] = {"local": [], "ray": []}
    for round_ in range(repeat):
        for mode in ("local", "ray") if round_ % 2 == 0 else ("ray", "local"):
            cur.execute(f"SET lakesql.cluster = '{'none' if mode == 'local' else 'local'}'")
            cur.execute(f"DROP TABLE IF EXISTS scores_{mode}")
            started = time.perf_counter()
            cur.execute(f"PREDICT m_synthetic_20k FROM to_score INTO scores_{mode}")
            times[mode].append(round(time.perf_counter() - started, 2))
    cur.execute("RESET lakesql.cluster")
    for mode, runs in times.items():
        out[f"{mode}_seconds"] = statistics.median(runs)
        out[f"{mode}_runs"] = runs
    a = cur.execute("SELECT * FROM scores_local").fetch_arrow_table()
    b = cur.execute("SELECT * FROM scores_ray").fetch_arrow_table()
    out["equal"] = a.equals(b)
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("sequential", "ray"):
        mine = [r for r in runs if r["mode"] == mode]
        if not mine:
            continue
        out[mode] = {
            key: statistics.median(r[key] for r in mine)
            for key in ("seconds", "trials", "best_trial_valid_roc_auc", "model_test_roc_auc")
        }
    if "sequential" in out and "ray" in out:
        out["trials_ratio_ray_over_sequential"] = round(
            out["ray"]["trials"] / max(1, out["sequential"]["trials"]), 2
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="20,60")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--datasets", default="breast_cancer,synthetic_20k")
    parser.add_argument("--predict-rows", type=int, default=400_000)
    parser.add_argument("--out", default=str(RESULTS / "scaleout.json"))
    parser.add_argument(
        "--predict-only",
        action="store_true",
        help="only the PREDICT INTO comparison; updates it in an existing --out file",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="lsbench", dir="/tmp"))
    ray_environment(tmp / "ray")
    warnings.filterwarnings("ignore")

    import lakesql
    from lakesql.ml import cluster

    try:
        con = lakesql.connect(str(tmp / "wh"))
        cur = con.cursor()
        frames = datasets()
        names = ["synthetic_20k"] if args.predict_only else args.datasets.split(",")
        for name in names:
            load(cur, name, frames[name])
        started = time.perf_counter()
        ray = cluster.connect("local")
        ray_start = round(time.perf_counter() - started, 2)
        ray_cpus = ray.cluster_resources().get("CPU")
        log(f"embedded Ray started in {ray_start} s: {ray_cpus} CPUs")
        results: dict[str, Any] = {}
        if args.predict_only:  # a model to score with
            train(cur, tmp / "wh", "m_synthetic_20k", "synthetic_20k", 20, False)
        for name in [] if args.predict_only else names:
            for budget in [float(b) for b in args.budgets.split(",")]:
                runs = []
                for round_ in range(args.repeat):
                    order = [False, True] if round_ % 2 == 0 else [True, False]
                    for on_ray in order:
                        run = train(cur, tmp / "wh", f"m_{name}", name, budget, on_ray)
                        run["round"] = round_
                        runs.append(run)
                        log(
                            f"{name} budget {budget:>4.0f}s {run['mode']:>10}: {run['trials']:>4} trials, "
                            f"best valid {run['best_trial_valid_roc_auc']:.4f}, test {run['model_test_roc_auc']:.4f}, "
                            f"{run['seconds']:.1f}s, first result {run['first_result_s']}s"
                        )
                results[f"{name}@{budget:g}"] = {"runs": runs, "summary": summarise(runs)}
        prediction = predict(cur, args.predict_rows) if "synthetic_20k" in names else None
        if prediction:
            log(f"PREDICT INTO: {prediction}")
        con.close()
    finally:
        cluster.disconnect()
        shutil.rmtree(tmp, ignore_errors=True)

    from importlib.metadata import version

    doc = {
        "benchmark": "scaleout",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {p: version(p) for p in ("lakesql", "ray", "flaml", "optuna", "lightgbm")},
        "ray_start_seconds": ray_start,
        "ray_cpus": ray_cpus,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": results,
        "predict_into": prediction,
        "note": (
            "One 2-core machine is both the driver and the 'cluster': Ray can only trade one trial "
            "with 2 threads for 2 trials of 1 thread, while its actors, object store and daemons use "
            "the same cores. Scaling with workers is not measured."
        ),
    }
    if args.predict_only and Path(args.out).exists():
        previous = json.loads(Path(args.out).read_text())
        previous["predict_into"] = prediction
        previous["predict_into_date"] = doc["date"]
        previous["predict_into_load_average"] = [load_before, doc["load_average_after"]]
        doc = previous
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
