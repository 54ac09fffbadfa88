"""TRAIN AUTOML ... OPTIONS (task = 'forecast'): one global model over lag and calendar features.

The training rows are periods of one or more series (``series_id`` columns), one row per period at
a regular frequency. The model predicts the change to the next period in units of the series'
scale, ``(y[t] - y[t-1]) / scale``, from the previous ``lags`` values (each relative to ``y[t-1]``,
in the same units), calendar parts of ``t`` and the series' code; a forecast applies it recursively.
Predicting scaled changes lets trees extrapolate a trend (on levels they cannot leave the range of
the training values) and lets one model learn from series of different sizes.

FLAML 2.7's own ``ts_forecast`` learners were measured on trend plus weekly season and lost to the
last-value forecast (tree learners on levels); they take one series only (``ts_forecast_panel``
needs pytorch-forecasting), fit one model per horizon step, and their naive baselines need
statsmodels. So FLAML searches regression learners here, and every trial is scored by a custom
metric that forecasts the validation window recursively, exactly as the test window and
:func:`forecast` are predicted.

Split by time, per series: the last ``horizon`` periods are the test window, the ``horizon``
before them the validation window, everything earlier trains. Besides FLAML's trials, the
last-value (naive) and seasonal-naive forecasts and a default HistGradientBoosting are scored on the
validation window, so the chosen model is never a worse validation pick than those. The naive
forecasts are exact linear functions of the features and are stored as such.

What a forecast needs besides the model (time column and type, frequency, series, each series' last
time, last ``lags`` values and scale, feature names) is JSON, in ``prep.json`` under ``forecast``.
"""

from __future__ import annotations

import json
import time
import warnings as _warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakesql import errors as E
from lakesql.ml import backends, metrics
from lakesql.ml.prep import Prep
from lakesql.ml.series import (
    MIN_LAGS,
    MIN_TRAIN_TARGETS,
    SeriesData,
    prepare,
    split_data,
)

if TYPE_CHECKING:
    from lakesql.ml.automl import Outcome

FORMAT = 1
MAX_LAGS = 60
NAIVE = "naive"  # y[t] = y[t-1]
SEASONAL_NAIVE = "seasonal_naive"  # y[t] = y[t-season]
BASELINES = (NAIVE, SEASONAL_NAIVE)
_DAY = 86400.0
_PARTS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # feature -> pandas attribute


class ForecastPrep(Prep):
    """The preparation of a forecast model: the `forecast` layout is saved with it in prep.json."""

    def __init__(self, label: str, layout: dict[str, Any] | None = None) -> None:
        super().__init__(label=label, task="forecast")
        self.layout: dict[str, Any] = layout or {}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "forecast": self.layout}

    def transform(self, df: Any) -> Any:
        raise E.ProgrammingError(
            "a forecast model predicts future periods, not rows",
            hint="use ML.FORECAST(MODEL m [, horizon => n])",
        )


# -- features -----------------------------------------------------------------------------------------


def _season_and_calendar(data: SeriesData) -> tuple[int, list[str]]:
    """The natural season (in periods) and the calendar parts that vary at this frequency."""
    import pandas as pd

    if data.frequency is None:
        return 1, []
    offset = pd.tseries.frequencies.to_offset(data.frequency)
    start = data.series[0].times[0]
    seconds = ((start + offset) - start).total_seconds()
    days = seconds / _DAY
    if seconds < _DAY:
        season = 1
        for cycle in (_DAY, 3600.0):  # a day, else an hour, of periods
            periods = cycle / seconds
            if periods == round(periods) and 2 <= periods <= 168:
                season = round(periods)
                break
        return season, ["hour", "dayofweek"] + (["minute"] if seconds < 3600 else [])
    if isinstance(offset, pd.offsets.BusinessDay) and offset.n == 1:
        return 5, ["dayofweek", "day", "month", "dayofyear"]
    if days == 1:
        return 7, ["dayofweek", "day", "month", "dayofyear"]
    if days == 7:
        return 52, ["weekofyear", "month"]
    if 28 <= days <= 31:
        return 12, ["month"]
    if 89 <= days <= 92:
        return 4, ["quarter"]
    return 1, []


def _calendar(times: Any, parts: list[str]) -> dict[str, Any]:
    import pandas as pd

    idx = pd.DatetimeIndex(times)
    out: dict[str, Any] = {}
    for p in parts:
        if p == "weekofyear":
            out[p] = idx.isocalendar().week.to_numpy().astype("float64")
        else:
            out[p] = getattr(idx, _PARTS.get(p, p)).to_numpy().astype("float64")
    return out


def _features(windows: Any, scales: Any, times: Any, codes: Any, layout: dict[str, Any]) -> Any:
    """The feature frame of targets whose previous `lags` values are the rows of `windows`."""
    import numpy as np
    import pandas as pd

    last = windows[:, -1:]
    rel = ((windows[:, :-1] - last) / scales[:, None])[:, ::-1]  # column j: lag j + 2
    cols: dict[str, Any] = {f"lag{j + 2}": rel[:, j] for j in range(rel.shape[1])}
    if layout["calendar"]:
        cols.update(_calendar(times, layout["calendar"]))
    if layout["series_id"]:
        cols["series"] = np.asarray(codes, dtype="float64")
    return pd.DataFrame({f: cols[f] for f in layout["features"]})


@dataclass
class _Problem:
    """The forecast problem of a training run: layout, design matrices, windows."""

    data: SeriesData
    layout: dict[str, Any]
    scales: Any
    codes: Any
    X_train: Any = None
    y_train: Any = None
    X_valid: Any = None
    y_valid: Any = None

    def rows(self, s: int, start: int, stop: int) -> tuple[Any, Any, Any]:
        """Windows, times and scaled targets of series `s` for the targets start..stop-1."""
        import numpy as np
        from numpy.lib.stride_tricks import sliding_window_view

        lags = self.layout["lags"]
        ser = self.data.series[s]
        windows = sliding_window_view(ser.y[start - lags : stop - 1], lags)
        target = (ser.y[start:stop] - ser.y[start - 1 : stop - 1]) / self.scales[s]
        return windows, ser.times[start:stop], np.asarray(target)

    def design(self, which: str) -> tuple[Any, Any]:
        import numpy as np
        import pandas as pd

        h, lags = self.data.horizon, self.layout["lags"]
        frames, targets = [], []
        for i, ser in enumerate(self.data.series):
            n = len(ser.y)
            start, stop = (lags, n - 2 * h) if which == "train" else (n - 2 * h, n - h)
            windows, times, target = self.rows(i, start, stop)
            k = len(target)
            frames.append(
                _features(
                    windows,
                    np.full(k, self.scales[i]),
                    times,
                    np.full(k, self.codes[i]),
                    self.layout,
                )
            )
            targets.append(target)
        return pd.concat(frames, ignore_index=True), np.concatenate(targets)

    def window(self, which: str) -> tuple[list[Any], list[Any], Any]:
        """(histories, future times, true values) of the validation or test window."""
        import numpy as np

        h = self.data.horizon
        back = 2 if which == "valid" else 1
        hist, times, truth = [], [], []
        for ser in self.data.series:
            origin = len(ser.y) - back * h
            hist.append(ser.y[:origin])
            times.append(ser.times[origin : origin + h])
            truth.append(ser.y[origin : origin + h])
        return hist, times, np.concatenate(truth)

    def predict(self, predict: Any, which: str) -> tuple[Any, Any]:
        hist, times, truth = self.window(which)
        pred = recursive(predict, self.layout, hist, times, self.scales, self.codes)
        return truth, pred.reshape(-1)

    def scores(self, predict: Any, which: str) -> dict[str, float]:
        truth, pred = self.predict(predict, which)
        return metrics.regression_metrics(truth, pred)


def recursive(
    predict: Any,
    layout: dict[str, Any],
    histories: list[Any],
    times: list[Any],
    scales: Any,
    codes: Any,
) -> Any:
    """Forecast every series over its future `times`, feeding predictions back as lags.

    Returns an array (series, steps).
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    lags = layout["lags"]
    steps = len(times[0])
    window = np.stack([np.asarray(h[-lags:], dtype="float64") for h in histories])
    scales = np.asarray(scales, dtype="float64")
    out = np.empty((len(histories), steps))
    # One row per series and step: threads only add start-up and hand-over costs (OpenMP
    # pools of several libraries spinning against each other took seconds a step on 2 cores).
    with threadpool_limits(limits=1):
        for j in range(steps):
            step_times = [t[j] for t in times] if layout["calendar"] else None
            X = _features(window, scales, step_times, codes, layout)
            change = np.asarray(predict(X), dtype="float64").reshape(-1)
            out[:, j] = window[:, -1] + change * scales
            window = np.column_stack([window[:, 1:], out[:, j]])
    return out


def _problem(data: SeriesData) -> _Problem:
    import numpy as np

    season, calendar = _season_and_calendar(data)
    h = data.horizon
    shortest = min(len(s.y) for s in data.series) - 2 * h
    lags = max(MIN_LAGS, min(MAX_LAGS, max(2 * season, 7), shortest - MIN_TRAIN_TARGETS))
    scales = []
    for s in data.series:
        train = s.y[: len(s.y) - 2 * h]
        scale = float(np.mean(np.abs(np.diff(train))))
        if not scale > 0:
            scale = float(np.mean(np.abs(train))) or 1.0
        scales.append(scale)
    codes = np.arange(len(data.series), dtype="float64")
    candidates = [f"lag{k}" for k in range(2, lags + 1)] + calendar
    if data.series_id and len(data.series) > 1:
        candidates.append("series")
    layout = {
        "format": FORMAT,
        "label": data.label,
        "time_column": data.time_column,
        "time_type": data.time_type,
        "timezone": data.timezone,
        "frequency": data.frequency,
        "step": data.step,
        "series_id": data.series_id,
        "horizon": h,
        "season": season,
        "lags": lags,
        "calendar": calendar,
        "features": candidates,
    }
    problem = _Problem(data, layout, np.asarray(scales), codes)
    X, _ = problem.design("train")
    keep = [c for c in candidates if X[c].nunique(dropna=False) > 1]
    if not any(c.startswith("lag") for c in keep):
        raise E.DataError(
            f"{data.label!r} does not change over the training periods: there is nothing to learn",
            hint="a constant series forecasts itself",
        )
    layout["calendar"] = [c for c in calendar if c in keep]
    layout["features"] = keep
    problem.X_train, problem.y_train = problem.design("train")
    problem.X_valid, problem.y_valid = problem.design("valid")
    return problem


def _finish_layout(problem: _Problem) -> dict[str, Any]:
    """The layout with each series' state at the end of the data (where a forecast starts)."""
    layout = dict(problem.layout)
    lags = layout["lags"]
    layout["series"] = [
        {
            "key": s.key,
            "code": int(problem.codes[i]),
            "scale": float(problem.scales[i]),
            "periods": len(s.y),
            "last_time": _time_out(s.times[-1], layout),
            "history": [float(v) for v in s.y[-lags:]],
        }
        for i, s in enumerate(problem.data.series)
    ]
    return layout


def summary(layout: dict[str, Any]) -> dict[str, Any]:
    """What the version document should record for ML.FORECAST (no history values)."""
    keys = ("time_column", "time_type", "timezone", "frequency", "step", "series_id", "horizon")
    return {
        **{k: layout[k] for k in keys},
        "last_time": [{"key": s["key"], "time": s["last_time"]} for s in layout.get("series", [])],
    }


def _time_out(value: Any, layout: dict[str, Any]) -> Any:
    import pandas as pd

    if layout["time_type"] == "integer":
        return int(value)
    stamp = pd.Timestamp(value)
    return stamp.date().isoformat() if layout["time_type"] == "date" else stamp.isoformat()


# -- candidates ------------------------------------------------------------------------------------


def _linear(features: list[str], coefs: dict[str, float]) -> Any:
    """A linear model with fixed coefficients (the naive forecasts are linear in the features)."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    model = LinearRegression()
    model.coef_ = np.array([coefs.get(f, 0.0) for f in features], dtype="float64")
    model.intercept_ = 0.0
    model.n_features_in_ = len(features)
    model.feature_names_in_ = np.array(features, dtype=object)
    return model


def _baselines(problem: _Problem, wanted: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if wanted is None or NAIVE in wanted:
        out.append((NAIVE, {}))
    season = problem.layout["season"]
    if (wanted is None or SEASONAL_NAIVE in wanted) and f"lag{season}" in problem.layout[
        "features"
    ]:
        out.append((SEASONAL_NAIVE, {"season": season}))
    if wanted is None or "histgb" in wanted:
        out.append((backends.BASELINE, {}))
    return out


def _fit_candidate(
    learner: str, config: dict[str, Any], problem: _Problem, *, n_jobs: int, seed: int
) -> Any:
    from threadpoolctl import threadpool_limits

    features = problem.layout["features"]
    if learner == NAIVE:
        return _linear(features, {})
    if learner == SEASONAL_NAIVE:
        return _linear(features, {f"lag{config['season']}": 1.0})
    with threadpool_limits(limits=n_jobs):  # HistGradientBoosting has no n_jobs of its own
        return backends.fit_trial(
            learner, "forecast", config, problem.X_train, problem.y_train, n_jobs=n_jobs, seed=seed
        )


# -- training -------------------------------------------------------------------------------------


def _new_prep(
    data: SeriesData, problem: _Problem, exclude: list[str], notes: list[str]
) -> ForecastPrep:
    prep = ForecastPrep(data.label)
    for note in notes:
        prep.warn(note)
    features = problem.layout["features"]
    prep.columns = [
        {
            "name": data.label,
            "kind": "forecast_history",
            "outputs": [f for f in features if f.startswith("lag")],
        },
        {"name": data.time_column, "kind": "forecast_time", "outputs": problem.layout["calendar"]},
    ]
    for i, c in enumerate(data.series_id):
        outputs = ["series"] if i == 0 and "series" in features else []
        prep.columns.append({"name": c, "kind": "forecast_series", "outputs": outputs})
    for c in exclude:
        if c not in (data.label, data.time_column, *data.series_id):
            prep.dropped.append({"name": c, "reason": "excluded"})
    for c in data.unused:
        prep.dropped.append({"name": c, "reason": "not used by a forecast (no future values)"})
    if data.unused:
        prep.warn(
            "forecast uses the history of the label, the time and the series only: column(s) "
            + ", ".join(repr(c) for c in data.unused)
            + " not used"
        )
    return prep


def _metric_value(metric: str, loss: float) -> float:
    return 1.0 - loss if metric == "r2" else loss


def _loss(scores: dict[str, float], metric: str) -> float:
    value = scores[metric]
    loss = metrics.loss(metric, value)
    return loss if loss == loss else float("inf")


def fit(
    df: Any,
    *,
    label: str,
    opts: dict[str, Any],
    workdir: Path,
    progress: bool,
    time_budget: float,
    notes: list[str],
) -> Outcome:
    """The forecast branch of :func:`lakesql.ml.automl.fit`: search, choose, score."""
    from lakesql.ml import automl
    from lakesql.ml.automl import Outcome, Progress, add_trial
    from lakesql.ml.options import check_metric, learners

    metric = check_metric("forecast", opts["metric"])
    data = prepare(df, label, opts)
    split = split_data(data)
    problem = _problem(data)
    prep = _new_prep(data, problem, list(opts["exclude"]), notes)
    n_jobs = automl.n_jobs(opts)
    seed = opts["seed"]
    chosen = learners("forecast", opts["estimators"])
    flaml_learners = [lrn for lrn in chosen if lrn not in BASELINES]

    def validation_metric(*args: Any, **kwargs: Any) -> tuple[float, dict[str, float]]:
        estimator = args[2]
        try:
            scores = problem.scores(estimator.predict, "valid")
        except ValueError:  # non-finite forecasts
            return float("inf"), {}
        return _loss(scores, metric), {metric: scores[metric]}

    log = workdir / "flaml.log"
    if flaml_learners:
        from flaml import AutoML

        settings = automl.flaml_settings(
            "regression",
            validation_metric,
            time_budget,
            seed=seed,
            learners=flaml_learners,
            log=log,
            jobs=n_jobs,
        )
        if opts["max_trials"]:
            settings["max_iter"] = opts["max_trials"]
        from threadpoolctl import threadpool_limits

        with (
            Progress(log, time_budget, metric, progress),
            _warnings.catch_warnings(),
            threadpool_limits(limits=n_jobs),
        ):
            _warnings.simplefilter("ignore")
            AutoML().fit(
                problem.X_train,
                problem.y_train,
                X_val=problem.X_valid,
                y_val=problem.y_valid,
                **settings,
            )
    trials = automl.read_flaml_log(log, lambda loss: _metric_value(metric, loss))
    best: dict[str, Any] | None = None
    estimator: Any = None
    if trials:
        # The final model is a fresh fit of the best configuration (what RETRAIN ... REPRODUCE
        # rebuilds); FLAML may have cut that trial short when its budget ran out.
        best = min(trials, key=lambda t: t["valid_loss"])
        estimator = _fit_candidate(
            best["learner"], best["config"], problem, n_jobs=n_jobs, seed=seed
        )
        loss = _loss(problem.scores(estimator.predict, "valid"), metric)
        best["flaml_valid_loss"] = best["valid_loss"]
        best["valid_loss"], best["valid_metric"] = loss, _metric_value(metric, loss)
    wanted = None if opts["estimators"] is None else list(opts["estimators"])
    for learner, config in _baselines(problem, wanted):
        started = time.perf_counter()
        model = _fit_candidate(learner, config, problem, n_jobs=n_jobs, seed=seed)
        loss = _loss(problem.scores(model.predict, "valid"), metric)
        add_trial(
            trials,
            learner,
            {"random_state": seed} if learner == backends.BASELINE else config,
            loss,
            _metric_value(metric, loss),
            time.perf_counter() - started,
        )
        if best is None or loss < best["valid_loss"] - 1e-12:
            best, estimator = trials[-1], model
    if best is None:
        raise E.OperationalError("the search finished no trial", hint="raise time_budget")
    best["is_best"] = True
    valid_metrics = problem.scores(estimator.predict, "valid")
    test_metrics = problem.scores(estimator.predict, "test")
    layout = _finish_layout(problem)
    prep.layout = layout
    outcome = Outcome(
        "forecast",
        metric,
        prep,
        estimator,
        best,
        trials,
        test_metrics,
        valid_metrics,
        split,
        prep.warnings,
        0,
    )
    outcome.forecast = summary(layout)
    return outcome


def refit(df: Any, *, version_doc: dict[str, Any]) -> Outcome:
    """Train a forecast version's recorded best configuration again, on the same rows and split."""
    from lakesql.ml.automl import n_jobs, refit_outcome

    opts = version_doc["options"]
    label = version_doc["label"]
    metric = version_doc["metric"]
    df = df[df[label].notna()].reset_index(drop=True)
    data = prepare(df, label, opts)
    problem = _problem(data)
    prep = _new_prep(data, problem, list(opts["exclude"]), [])
    best = dict(version_doc["best_trial"])
    config = dict(best["config"])
    if best["learner"] == backends.BASELINE:
        config = {}
    jobs = n_jobs(opts)
    estimator = _fit_candidate(best["learner"], config, problem, n_jobs=jobs, seed=opts["seed"])
    valid_metrics = problem.scores(estimator.predict, "valid")
    scores = (valid_metrics, problem.scores(estimator.predict, "test"))
    layout = _finish_layout(problem)
    prep.layout = layout
    loss = _loss(valid_metrics, metric)
    outcome = refit_outcome(
        "forecast", metric, prep, estimator, best, scores, loss, split_data(data)
    )
    outcome.forecast = summary(layout)
    return outcome


def trial_scores(
    df: Any,
    *,
    label: str,
    opts: dict[str, Any],
    learner: str,
    config: dict[str, Any],
    n_jobs: int = 1,
) -> dict[str, float]:
    """Validation-window scores of one trial's configuration, trained again on the same rows.

    What a forecast trial notebook runs (the regression/classification notebook template does not
    apply: it has no lag features).
    """
    df = df[df[label].notna()].reset_index(drop=True)
    problem = _problem(prepare(df, label, opts))
    if learner == backends.BASELINE:
        config = {}
    model = _fit_candidate(learner, config, problem, n_jobs=n_jobs, seed=opts["seed"])
    return problem.scores(model.predict, "valid")


# -- forecasting ----------------------------------------------------------------------------------


def future_times(layout: dict[str, Any], last: Any, steps: int) -> Any:
    """The `steps` periods after `last` (as stored in the layout)."""
    import numpy as np
    import pandas as pd

    if layout["time_type"] == "integer":
        return int(last) + layout["step"] * np.arange(1, steps + 1, dtype="int64")
    start = pd.Timestamp(last)
    return pd.date_range(start=start, periods=steps + 1, freq=layout["frequency"])[1:]


def _time_array(values: list[Any], layout: dict[str, Any]) -> Any:
    import pandas as pd
    import pyarrow as pa

    kind = layout["time_type"]
    if kind == "integer":
        return pa.array([int(v) for v in values], pa.int64())
    stamps = pd.DatetimeIndex(values)
    if kind == "date":
        return pa.array([t.date() for t in stamps], pa.date32())
    tz = layout.get("timezone")
    if tz:
        stamps = stamps.tz_localize("UTC").tz_convert(tz)
    return pa.array(stamps, pa.timestamp("us", tz=tz))


def forecast(version_folder: Path, version_doc: dict[str, Any], horizon: int | None = None) -> Any:
    """Future values of every series of a forecast model version, as a pyarrow Table.

    One row per series and future period: the series_id columns, the time column and
    ``<label>_forecast``, ordered by series and time. `horizon` defaults to the trained one; a
    longer horizon continues the same recursion.
    """
    import numpy as np
    import pyarrow as pa

    if version_doc.get("task") != "forecast":
        raise E.ProgrammingError(
            f"model {version_doc.get('model')!r} is a {version_doc.get('task')} model, not a forecast"
        )
    folder = Path(version_folder)
    prep = json.loads((folder / "prep.json").read_text())
    layout = prep.get("forecast")
    if not layout or layout.get("format") != FORMAT:
        raise E.OperationalError(
            f"the forecast state in {folder / 'prep.json'} is missing or newer"
        )
    steps = int(layout["horizon"] if horizon is None else horizon)
    if isinstance(horizon, bool) or steps < 1:
        raise E.OptionError(f"horizon must be at least 1, not {horizon!r}")
    model = backends.load(folder)
    series = layout["series"]
    times = [future_times(layout, s["last_time"], steps) for s in series]
    values = recursive(
        model.predict_values,
        layout,
        [np.asarray(s["history"], dtype="float64") for s in series],
        times,
        np.asarray([s["scale"] for s in series]),
        np.asarray([s["code"] for s in series], dtype="float64"),
    )
    columns: dict[str, Any] = {}
    for i, c in enumerate(layout["series_id"]):
        columns[c] = pa.array([s["key"][i] for s in series for _ in range(steps)])
    columns[layout["time_column"]] = _time_array([t for ts in times for t in ts], layout)
    columns[f"{layout['label']}_forecast"] = pa.array(values.reshape(-1), pa.float64())
    return pa.table(columns)
