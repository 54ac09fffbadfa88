"""TRAIN AUTOML: data, preparation, split, FLAML search, final choice, test score, files.

FLAML searches with an explicit validation set and logs every trial; scikit-learn's default
HistGradientBoosting is evaluated on the same validation set as one more candidate, so the chosen
model is never a worse validation pick than the plain default. The test split is scored once, at
the end, by the chosen model.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakesql import errors as E
from lakesql.ml import backends, metrics
from lakesql.ml.options import check_metric, learners
from lakesql.ml.prep import Prep, leakage

_FLAML_METRIC = {
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "f1": "f1",
    "accuracy": "accuracy",
    "r2": "r2",
    "rmse": "rmse",
    "mae": "mae",
    "mape": "mape",
}


SEEDED_LEARNERS = {
    "xgboost",
    "xgb_limitdepth",
    "lgbm",
    "rf",
    "extra_tree",
    "histgb",
    "lrl1",
    "lrl2",
}


@dataclass
class Split:
    method: str
    train: Any
    valid: Any
    test: Any

    def rows(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


@dataclass
class Outcome:
    """What a training run produced (before it is published)."""

    task: str
    metric: str
    prep: Prep
    estimator: Any
    best: dict[str, Any]
    trials: list[dict[str, Any]]
    test_metrics: dict[str, float]
    valid_metrics: dict[str, float]
    split: Split
    warnings: list[str] = field(default_factory=list)
    n_classes: int = 0
    test_frame: Any = None
    # task forecast: what ML.FORECAST needs besides the model (lakesql.ml.forecast.summary)
    forecast: dict[str, Any] | None = None


def n_jobs(opts: dict[str, Any]) -> int:
    """Threads a fit uses: the n_jobs option, -1 meaning every core."""
    return int(opts["n_jobs"]) if opts["n_jobs"] != -1 else (os.cpu_count() or 1)


def flaml_settings(
    task: str,
    metric: Any,
    time_budget: float,
    *,
    seed: int,
    learners: list[str],
    log: Path,
    jobs: int,
) -> dict[str, Any]:
    """FLAML AutoML.fit settings of a lakesql search: holdout validation on the given rows, every
    trial logged to `log`, no sampling and each randomised learner's seed pinned in its search
    space, so every logged trial can be refit exactly."""
    return dict(
        task=task,
        metric=metric,
        time_budget=time_budget,
        seed=seed,
        estimator_list=learners,
        log_file_name=str(log),
        log_type="all",
        eval_method="holdout",
        retrain_full=False,
        verbose=0,
        n_jobs=jobs,
        sample=False,
        custom_hp={
            learner: {"random_state": {"domain": seed}}
            for learner in learners
            if learner in SEEDED_LEARNERS
        },
    )


def read_flaml_log(
    log: Path,
    metric_value: Callable[[float], float | None],
    config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The trials FLAML logged to `log` (none when it wrote no log), numbered in order;
    `metric_value` turns a validation loss into the metric, `config` a logged configuration into
    the one stored."""
    trials: list[dict[str, Any]] = []
    if not log.exists():
        return trials
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if "validation_loss" not in rec:
            continue
        loss = float(rec["validation_loss"])
        add_trial(
            trials,
            rec["learner"],
            config(rec["config"]) if config is not None else rec["config"],
            loss,
            metric_value(loss),
            rec.get("trial_time"),
            rec.get("wall_clock_time"),
        )
    return trials


def add_trial(
    trials: list[dict[str, Any]],
    learner: str,
    config: dict[str, Any],
    loss: float,
    metric_value: float | None,
    train_seconds: float | None,
    wall_clock_seconds: float | None = None,
) -> dict[str, Any]:
    """Append one trial, numbered in order, to `trials` (as the registry stores it); returns it."""
    trials.append(
        {
            "trial": len(trials),
            "learner": learner,
            "config": config,
            "valid_loss": loss,
            "valid_metric": metric_value,
            "train_seconds": train_seconds,
            "wall_clock_seconds": wall_clock_seconds,
        }
    )
    return trials[-1]


def refit_outcome(
    task: str,
    metric: str,
    prep: Any,
    estimator: Any,
    best: dict[str, Any],
    scores: tuple[dict[str, float], dict[str, float]],
    loss: float,
    split: Split,
    n_classes: int = 0,
) -> Outcome:
    """What a refit of a version's best trial produced: that trial, rescored (`scores`: validation
    and test metrics, `loss` the validation loss), as its only trial."""
    valid_metrics, test_metrics = scores
    best.update(valid_loss=loss, valid_metric=valid_metrics[metric], is_best=True, trial=0)
    return Outcome(
        task,
        metric,
        prep,
        estimator,
        best,
        [best],
        test_metrics,
        valid_metrics,
        split,
        prep.warnings,
        n_classes,
    )


def infer_task(y: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= max(2, min(20, len(y) // 10)):
        return "classification"
    return "regression"


def make_split(df: Any, task: str, label: str, opts: dict[str, Any]) -> Split:
    """Row positions of the train, validation and test splits (deterministic for a seed)."""
    import numpy as np

    if task == "forecast":
        from lakesql.ml import series

        return series.make_split(df, label, opts)
    n = len(df)
    method = opts["split"] or ("time" if opts["time_column"] else "random")
    if method == "column":
        col = opts["split_column"]
        if col not in df.columns:
            raise E.ProgrammingError(
                f"split_column {col!r} is not a column", hint=E.suggest(col, df.columns)
            )
        values = df[col].astype("string").str.lower()
        parts = {k: np.flatnonzero((values == k).to_numpy()) for k in ("train", "valid", "test")}
        parts["valid"] = np.union1d(
            parts["valid"], np.flatnonzero((values == "validation").to_numpy())
        )
        if min(len(p) for p in parts.values()) == 0:
            raise E.DataError(
                f"split_column {col!r} must hold 'train', 'valid' and 'test' rows",
                hint=f"found: {sorted(set(values.dropna()))[:10]}",
            )
        return Split(method, parts["train"], parts["valid"], parts["test"])
    if method == "time":
        col = opts["time_column"]
        if col not in df.columns:
            raise E.ProgrammingError(
                f"time_column {col!r} is not a column", hint=E.suggest(col, df.columns)
            )
        order = np.argsort(df[col].to_numpy(), kind="stable")
        n_test = max(1, round(n * opts["test_fraction"]))
        n_valid = max(1, round((n - n_test) * opts["valid_fraction"]))
        return Split(
            method,
            order[: n - n_test - n_valid],
            order[n - n_test - n_valid : n - n_test],
            order[n - n_test :],
        )
    rng = np.random.default_rng(opts["seed"])
    if task == "classification":
        test: list[int] = []
        valid: list[int] = []
        train: list[int] = []
        y = df[label].astype("string").to_numpy()
        for cls in sorted(set(y)):
            idx = rng.permutation(np.flatnonzero(y == cls))
            k_test = round(len(idx) * opts["test_fraction"])
            k_valid = round((len(idx) - k_test) * opts["valid_fraction"])
            test.extend(idx[:k_test])
            valid.extend(idx[k_test : k_test + k_valid])
            train.extend(idx[k_test + k_valid :])
        return Split(method, np.sort(train), np.sort(valid), np.sort(test))
    idx = rng.permutation(n)
    n_test = round(n * opts["test_fraction"])
    n_valid = round((n - n_test) * opts["valid_fraction"])
    return Split(
        method,
        np.sort(idx[n_test + n_valid :]),
        np.sort(idx[n_test : n_test + n_valid]),
        np.sort(idx[:n_test]),
    )


@dataclass
class Prepared:
    """The split and the prepared matrices of each part (train, valid, test)."""

    split: Split
    X: dict[str, Any]
    y: dict[str, Any]


def prepare(df: Any, prep: Prep, opts: dict[str, Any]) -> Prepared:
    """Encode the label, split, fit `prep` on the training rows and prepare every part.

    The one path from rows to matrices: TRAIN searches on it, RETRAIN ... REPRODUCE refits on it.
    A regression label is cast to float64 in `df`.
    """
    label, task = prep.label, prep.task
    if task == "classification":
        prep.fit_label(df[label], opts["pos_label"])
    else:
        df[label] = df[label].astype("float64")
    split = make_split(df, task, label, opts)
    exclude = list(opts["exclude"]) + [
        c
        for c in (opts["split_column"], opts["time_column"] if opts["split"] == "column" else None)
        if c
    ]
    prep.fit(df.iloc[split.train], exclude=exclude)
    parts = ("train", "valid", "test")
    return Prepared(
        split,
        {k: prep.transform(df.iloc[getattr(split, k)]) for k in parts},
        {k: prep.encode_label(df[label].iloc[getattr(split, k)]) for k in parts},
    )


def _scores(task: str, y: Any, values: Any, n_classes: int) -> dict[str, float]:
    if task == "classification":
        return metrics.classification_metrics(y, values, n_classes)
    return metrics.regression_metrics(y, values)


def _predict(estimator: Any, task: str, X: Any) -> Any:
    return estimator.predict_proba(X) if task == "classification" else estimator.predict(X)


class Progress:
    """Trials done, best metric so far and time left, on stderr, from FLAML's log."""

    def __init__(self, log: Path, budget: float, metric: str, enabled: bool):
        self.log, self.budget, self.metric, self.enabled = log, budget, metric, enabled
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        if self.enabled:
            self.start = time.monotonic()
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.stop.set()
            self.thread.join(timeout=2)
            self._render()  # the final count, however short the search
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _run(self) -> None:
        self._render()
        while not self.stop.wait(0.5):
            self._render()

    def _render(self) -> None:
        trials, best = 0, None
        try:
            for line in self.log.read_text().splitlines():
                rec = json.loads(line)
                if "validation_loss" in rec:
                    trials += 1
                    best = (
                        rec["validation_loss"]
                        if best is None
                        else min(best, rec["validation_loss"])
                    )
        except (OSError, ValueError):
            pass
        elapsed = time.monotonic() - self.start
        done = min(1.0, elapsed / self.budget) if self.budget else 0.0
        bar = "#" * int(done * 30)
        shown = "-" if best is None else f"{_metric_from_loss(self.metric, best):.4f}"
        sys.stderr.write(
            f"\rTRAIN [{bar:<30}] {trials} trials, best {self.metric} {shown}, {max(0.0, self.budget - elapsed):.0f}s left "
        )
        sys.stderr.flush()


@contextlib.contextmanager
def _quiet_logger(name: str) -> Any:
    """Only errors from logger `name` while the block runs (FLAML logs notes as warnings)."""
    import logging

    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _metric_from_loss(metric: str, value: float) -> float:
    return 1.0 - value if metric in ("roc_auc", "accuracy", "f1", "r2") else value


def fit(
    df: Any,
    *,
    label: str,
    opts: dict[str, Any],
    workdir: Path,
    progress: bool,
    time_budget: float,
    cluster: str | None = None,
) -> Outcome:
    """Prepare, split, search and score; returns the outcome (nothing is written outside `workdir`).

    With `cluster` (a Ray address, lakesql.ml.cluster) the search's trials run concurrently there;
    everything else runs here, as without it.
    """
    import numpy as np

    warn: list[str] = []
    if label not in df.columns:
        raise E.ProgrammingError(
            f"label column {label!r} is not in the training data",
            hint=E.suggest(label, df.columns) or "columns: " + ", ".join(map(str, df.columns)),
        )
    nulls = int(df[label].isna().sum())
    if nulls and opts["task"] != "forecast":  # a forecast's series keep their periods
        df = df[df[label].notna()].reset_index(drop=True)
        warn.append(f"{nulls} row(s) with a NULL label dropped")
    if len(df) < 10:
        raise E.DataError(f"only {len(df)} labelled row(s): too few to train and test a model")
    task = opts["task"] or infer_task(df[label])
    if task == "forecast":
        from lakesql.ml import forecast

        if cluster is not None:
            warn.append(f"cluster {cluster!r} not used: forecast models train locally")
        return forecast.fit(
            df,
            label=label,
            opts=opts,
            workdir=workdir,
            progress=progress,
            time_budget=time_budget,
            notes=warn,
        )
    metric = check_metric(task, opts["metric"])
    prep = Prep(label=label, task=task)
    for w in warn:
        prep.warn(w)
    prepared = prepare(df, prep, opts)
    split, X, y = prepared.split, prepared.X, prepared.y
    n_classes = len(prep.classes or [])
    if n_classes > 2 and metric == "roc_auc":
        flaml_metric = "roc_auc_ovr"
    elif n_classes > 2 and metric == "f1":
        flaml_metric = "macro_f1"
    else:
        flaml_metric = _FLAML_METRIC[metric]
    if task == "classification":
        for k in ("train", "valid"):
            if len(np.unique(y[k])) < 2:
                raise E.DataError(
                    f"the {k} split holds a single class", hint="use more rows or a different split"
                )
    for col in leakage(X["train"], y["train"], task):
        prep.warn(
            f"possible leakage: feature {col!r} predicts {label!r} perfectly on the training rows"
        )

    # The progress bar spans the default candidate and the search: the whole budget.
    bar = contextlib.ExitStack()
    bar.enter_context(Progress(workdir / "flaml.log", time_budget, metric, progress))
    try:
        # One more candidate: scikit-learn's default HistGradientBoosting on the same validation set,
        # fitted first so that its time comes out of the budget rather than on top of it.
        baseline: dict[str, Any] | None = None
        if opts["estimators"] is None or "histgb" in opts["estimators"]:
            started = time.perf_counter()
            base_est = backends.fit_trial(
                backends.BASELINE, task, {}, X["train"], y["train"], n_jobs=1, seed=opts["seed"]
            )
            valid_scores = _scores(
                task, y["valid"], _predict(base_est, task, X["valid"]), n_classes
            )
            baseline = {
                "estimator": base_est,
                "valid_loss": metrics.loss(metric, valid_scores[metric]),
                "valid_metric": valid_scores[metric],
                "train_seconds": time.perf_counter() - started,
            }
            # the search keeps at least half the budget
            time_budget = max(time_budget / 2, time_budget - baseline["train_seconds"])

        from flaml import AutoML

        log = workdir / "flaml.log"
        automl = AutoML()
        jobs = n_jobs(opts)
        settings = flaml_settings(
            task,
            flaml_metric,
            time_budget,
            seed=opts["seed"],
            learners=learners(task, opts["estimators"]),
            log=log,
            jobs=jobs,
        )
        if opts["max_trials"]:
            settings["max_iter"] = opts["max_trials"]
        search: Any = contextlib.nullcontext()
        if cluster is not None:
            from lakesql.ml import cluster as ray_cluster

            search = ray_cluster.search(cluster, settings, n_jobs=opts["n_jobs"])
    except BaseException:
        bar.close()
        raise
    with bar, search:
        import warnings as _w

        with _w.catch_warnings(), _quiet_logger("flaml.automl"):
            _w.simplefilter("ignore")
            automl.fit(X["train"], y["train"], X_val=X["valid"], y_val=y["valid"], **settings)
    same_metric = flaml_metric == _FLAML_METRIC.get(metric)
    trials = read_flaml_log(
        log,
        lambda loss: _metric_from_loss(metric, loss) if same_metric else None,
        # logged nested by FLAML's parallel search
        ray_cluster.trial_config if cluster is not None else None,
    )
    if not trials and opts["max_trials"] == 1 and automl.best_estimator:
        # With one iteration FLAML fits its starting configuration without evaluating it; that
        # is the one trial, scored below like any refit.
        add_trial(trials, automl.best_estimator, dict(automl.best_config), float("inf"), None, None)
    if not trials:
        raise E.OperationalError("the search finished no trial", hint="raise time_budget")
    flaml_best = min(trials, key=lambda t: t["valid_loss"])
    # The final model is a fresh fit of the best configuration (what RETRAIN ... REPRODUCE and the
    # trial notebook rebuild); FLAML may have cut that trial short when its budget ran out.
    estimator = backends.fit_trial(
        flaml_best["learner"],
        task,
        flaml_best["config"],
        X["train"],
        y["train"],
        n_jobs=jobs,
        seed=opts["seed"],
    )
    refit_scores = _scores(task, y["valid"], _predict(estimator, task, X["valid"]), n_classes)
    flaml_best["flaml_valid_loss"] = flaml_best["valid_loss"]
    flaml_best["valid_loss"] = metrics.loss(metric, refit_scores[metric])
    flaml_best["valid_metric"] = refit_scores[metric]

    if baseline is not None:
        add_trial(
            trials,
            backends.BASELINE,
            {"random_state": opts["seed"]},
            baseline["valid_loss"],
            baseline["valid_metric"],
            baseline["train_seconds"],
        )
        if baseline["valid_loss"] < flaml_best["valid_loss"] - 1e-12:
            flaml_best = trials[-1]
            estimator = baseline["estimator"]
    best = flaml_best
    best["is_best"] = True
    valid_metrics = _scores(task, y["valid"], _predict(estimator, task, X["valid"]), n_classes)
    if best.get("valid_metric") is None:
        best["valid_metric"] = valid_metrics[metric]
    test_metrics = _scores(task, y["test"], _predict(estimator, task, X["test"]), n_classes)
    return Outcome(
        task,
        metric,
        prep,
        estimator,
        best,
        trials,
        test_metrics,
        valid_metrics,
        split,
        prep.warnings,
        n_classes,
    )


def refit(df: Any, *, version_doc: dict[str, Any]) -> Outcome:
    """Train the recorded best configuration of a version again, on the same rows and split."""
    if version_doc["task"] == "forecast":
        from lakesql.ml import forecast

        return forecast.refit(df, version_doc=version_doc)
    opts = version_doc["options"]
    label = version_doc["label"]
    task = version_doc["task"]
    metric = version_doc["metric"]
    prep = Prep(label=label, task=task)
    nulls = int(df[label].isna().sum())
    if nulls:
        df = df[df[label].notna()].reset_index(drop=True)
    prepared = prepare(df, prep, opts)
    split, X, y = prepared.split, prepared.X, prepared.y
    best = dict(version_doc["best_trial"])
    estimator = backends.fit_trial(
        best["learner"],
        task,
        best["config"],
        X["train"],
        y["train"],
        n_jobs=n_jobs(opts),
        seed=opts["seed"],
    )
    n_classes = len(prep.classes or [])
    valid_metrics = _scores(task, y["valid"], _predict(estimator, task, X["valid"]), n_classes)
    test_metrics = _scores(task, y["test"], _predict(estimator, task, X["test"]), n_classes)
    loss = metrics.loss(metric, valid_metrics[metric])
    scores = (valid_metrics, test_metrics)
    return refit_outcome(task, metric, prep, estimator, best, scores, loss, split, n_classes)


ProgressFactory = Callable[[Path, float, str, bool], Any]
