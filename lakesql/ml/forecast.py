"""TRAIN AUTOML ... OPTIONS (task = 'forecast'): statistical and ML candidates chosen by backtest.

The training rows are periods of one or more series (``series_id`` columns), one row per period at
a regular frequency. Two kinds of candidates compete:

* statistical models fitted to each series alone (lakesql.ml.statistical: statsforecast's naive,
  seasonal naive, AutoETS, AutoARIMA, AutoTheta);
* one global ML model over all series (FLAML's regression learners, and scikit-learn's default
  HistGradientBoosting), which predicts the change to the next period in units of the series'
  scale, ``(y[t] - y[t-1]) / scale``, from the previous ``lags`` values (each relative to
  ``y[t-1]``, in the same units), calendar parts of ``t`` and the series' code; a forecast applies
  it recursively. Predicting scaled changes lets trees extrapolate a trend and lets one model learn
  from series of different sizes. FLAML searches on one validation window (the ``horizon`` periods
  before the test window), scored by forecasting it recursively as a forecast is made.

Selection is by rolling-origin backtest: the last ``horizon`` periods of each series are the test
window (reported only); the ``cv_windows`` windows of ``horizon`` periods before it are forecast by
each candidate fitted on the periods before that window, and the candidate with the best mean
``metric`` over them wins (``mase`` by default; the MASE scale of a series is the in-sample MAE of
its seasonal naive forecast on the periods before the test window). The mean of the best three
candidates' forecasts (``combination``) is one more candidate. Fewer windows are used when the
shortest series is too short for them.

The chosen model is then fitted again on every period, and that is the model ML.FORECAST uses.
Intervals (``level => [80, 95]``) are the statistical model's own; for ML models and combinations
they are conformal: the backtest errors, divided by the series' scale and by sqrt(step), give a
quantile that is scaled back per series and step.

Nothing is pickled. What a forecast needs besides the ML model (time column and type, frequency,
series, each series' last time, last ``lags`` values and scale, feature names, each statistical
model's fitted state as JSON, the conformal residuals) is in ``prep.json`` under ``forecast``. The
model file backends.save writes is the ML model; when the choice is statistical alone it is the
naive forecast as a linear model (unused by ML.FORECAST, kept so every version has one).

Size: about 1,100 lines, over the house's 800: candidates, backtest, refit, intervals and
ML.FORECAST share one layout; the series data already lives in ml/series.py and statsforecast in
ml/statistical.py; the backtest and intervals are the next to move out.
"""

from __future__ import annotations

import json
import time
import warnings as _warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakesql import errors as E
from lakesql.ml import backends, metrics, statistical
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

FORMAT = 2
MAX_LAGS = 60
NAIVE = "naive"  # y[t] = y[t-1]
SEASONAL_NAIVE = "seasonal_naive"  # y[t] = y[t-season]
BASELINES = (NAIVE, SEASONAL_NAIVE)
STATISTICAL = tuple(statistical.MODELS)
COMBINATION = "combination"
COMBINE_TOP = 3  # the combination averages this many of the best candidates
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


def _features(
    windows: Any,
    scales: Any,
    times: Any,
    codes: Any,
    layout: dict[str, Any],
    cov: Any = None,
    cov_prev: Any = None,
) -> Any:
    """The feature frame of targets whose previous `lags` values are the rows of `windows`;
    `cov` and `cov_prev` are (rows, covariates) values at the target's period and the one before."""
    import numpy as np
    import pandas as pd

    last = windows[:, -1:]
    rel = ((windows[:, :-1] - last) / scales[:, None])[:, ::-1]  # column j: lag j + 2
    cols: dict[str, Any] = {f"lag{j + 2}": rel[:, j] for j in range(rel.shape[1])}
    if layout["calendar"]:
        cols.update(_calendar(times, layout["calendar"]))
    if layout["series_id"]:
        cols["series"] = np.asarray(codes, dtype="float64")
    for j, c in enumerate(layout.get("covariates") or []):
        cols[f"cov_{c}"] = np.asarray(cov[:, j], dtype="float64")
        cols[f"cov_{c}_change"] = np.asarray(cov[:, j] - cov_prev[:, j], dtype="float64")
    return pd.DataFrame({f: cols[f] for f in layout["features"]})


@dataclass
class _Problem:
    """The forecast problem of a training run: layout, design matrices, windows."""

    data: SeriesData
    layout: dict[str, Any]
    scales: Any  # per series: the ML model's unit (mean absolute change)
    codes: Any
    mase_scales: Any  # per series: MASE's denominator
    windows: int  # backtest windows used (cv_windows, fewer for short series)
    X_train: Any = None
    y_train: Any = None
    X_valid: Any = None
    y_valid: Any = None

    def rows(self, s: int, start: int, stop: int) -> tuple[Any, Any, Any, Any, Any]:
        """Windows, times, scaled targets and covariates (at the target's period and the one
        before) of series `s` for the targets start..stop-1."""
        import numpy as np
        from numpy.lib.stride_tricks import sliding_window_view

        lags = self.layout["lags"]
        ser = self.data.series[s]
        windows = sliding_window_view(ser.y[start - lags : stop - 1], lags)
        target = (ser.y[start:stop] - ser.y[start - 1 : stop - 1]) / self.scales[s]
        cov = prev = None
        if ser.X is not None:
            cov, prev = ser.X[start:stop], ser.X[start - 1 : stop - 1]
        return windows, ser.times[start:stop], np.asarray(target), cov, prev

    def design_until(self, offset: int) -> tuple[Any, Any]:
        """Features and targets of every period but the last `offset` of each series."""
        return self.design_between(None, offset)

    def design_between(self, first_offset: int | None, offset: int) -> tuple[Any, Any]:
        import numpy as np
        import pandas as pd

        lags = self.layout["lags"]
        frames, targets = [], []
        for i, ser in enumerate(self.data.series):
            n = len(ser.y)
            start = lags if first_offset is None else n - first_offset
            windows, times, target, cov, prev = self.rows(i, start, n - offset)
            k = len(target)
            frames.append(
                _features(
                    windows,
                    np.full(k, self.scales[i]),
                    times,
                    np.full(k, self.codes[i]),
                    self.layout,
                    cov,
                    prev,
                )
            )
            targets.append(target)
        return pd.concat(frames, ignore_index=True), np.concatenate(targets)

    def design(self, which: str) -> tuple[Any, Any]:
        """FLAML's search: training targets before the validation window, and that window."""
        h = self.data.horizon
        if which == "train":
            return self.design_until(2 * h)
        return self.design_between(2 * h, h)

    def truth(self) -> Any:
        """(series, windows + 1, horizon) true values; window 0 is the test window."""
        import numpy as np

        h = self.data.horizon
        out = np.empty((len(self.data.series), self.windows + 1, h))
        for i, ser in enumerate(self.data.series):
            n = len(ser.y)
            for k in range(self.windows + 1):
                origin = n - (k + 1) * h
                out[i, k] = ser.y[origin : origin + h]
        return out

    def ml_forecast(self, predict: Any, offset: int) -> Any:
        """(series, horizon) recursive forecasts from all but the last `offset` periods."""
        import numpy as np

        h = self.data.horizon
        hist, times, covs = [], [], []
        for ser in self.data.series:
            origin = len(ser.y) - offset
            hist.append(ser.y[:origin])
            times.append(ser.times[origin : origin + h])
            if ser.X is not None:
                covs.append(ser.X[origin - 1 : origin + h])
        out = recursive(
            predict, self.layout, hist, times, self.scales, self.codes, covs if covs else None
        )
        return np.asarray(out, dtype="float64").reshape(len(hist), h)

    def scores(self, pred: Any, which: str) -> dict[str, float]:
        """Metrics of (series, windows + 1, horizon) forecasts: 'test' window 0, 'valid' the
        backtest windows, 'search' FLAML's validation window (1)."""
        truth = self.truth()
        if which == "test":
            t, p = truth[:, 0, :], pred[:, 0, :]
        elif which == "search":
            t, p = truth[:, 1, :], pred[:, 1, :]
        else:
            t, p = truth[:, 1:, :], pred[:, 1:, :]
        s = len(self.data.series)
        return metrics.forecast_metrics(t.reshape(s, -1), p.reshape(s, -1), self.mase_scales)


def recursive(
    predict: Any,
    layout: dict[str, Any],
    histories: list[Any],
    times: list[Any],
    scales: Any,
    codes: Any,
    covs: list[Any] | None = None,
) -> Any:
    """Forecast every series over its future `times`, feeding predictions back as lags; `covs`
    per series the covariates' (steps + 1, covariates) values, the last known period first.

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
            cov = prev = None
            if covs is not None:
                cov = np.stack([c[j + 1] for c in covs])
                prev = np.stack([c[j] for c in covs])
            X = _features(window, scales, step_times, codes, layout, cov, prev)
            change = np.asarray(predict(X), dtype="float64").reshape(-1)
            out[:, j] = window[:, -1] + change * scales
            window = np.column_stack([window[:, 1:], out[:, j]])
    return out


def _problem(data: SeriesData, opts: dict[str, Any]) -> _Problem:
    import numpy as np

    season, calendar = _season_and_calendar(data)
    if opts.get("season"):
        season = int(opts["season"])
    h = data.horizon
    shortest = min(len(s.y) for s in data.series)
    min_train = max(MIN_LAGS + MIN_TRAIN_TARGETS, 2 * season + 2 if season > 1 else 0)
    windows = max(1, min(int(opts.get("cv_windows") or 3), (shortest - h - min_train) // h))
    deepest = shortest - (windows + 1) * h  # periods before the earliest backtest window
    lags = max(MIN_LAGS, min(MAX_LAGS, max(2 * season, 7), deepest - MIN_TRAIN_TARGETS))
    scales, mase_scales = [], []
    for s in data.series:
        before_test = s.y[: len(s.y) - h]
        scale = float(np.mean(np.abs(np.diff(before_test))))
        if not scale > 0:
            scale = float(np.mean(np.abs(before_test))) or 1.0
        scales.append(scale)
        mase_scales.append(metrics.mase_scale(before_test, season))
    codes = np.arange(len(data.series), dtype="float64")
    candidates = [f"lag{k}" for k in range(2, lags + 1)] + calendar
    if data.series_id and len(data.series) > 1:
        candidates.append("series")
    for c in data.covariates:
        candidates += [f"cov_{c}", f"cov_{c}_change"]
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
        "cv_windows": windows,
        "lags": lags,
        "calendar": calendar,
        "covariates": list(data.covariates),
        "features": candidates,
    }
    problem = _Problem(data, layout, np.asarray(scales), codes, np.asarray(mase_scales), windows)
    X, _ = problem.design_until(2 * h)
    keep = [c for c in candidates if X[c].nunique(dropna=False) > 1]
    if not any(c.startswith("lag") for c in keep):
        keep = [c for c in candidates if c.startswith("lag")]  # constant: the ML models learn 0
    layout["calendar"] = [c for c in calendar if c in keep]
    layout["features"] = keep
    return problem


def _search_data(problem: _Problem) -> None:
    problem.X_train, problem.y_train = problem.design("train")
    problem.X_valid, problem.y_valid = problem.design("valid")


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
            "mase_scale": metrics.mase_scale(s.y, layout["season"]),
            "last_covariates": None if s.X is None else [float(v) for v in s.X[-1]],
        }
        for i, s in enumerate(problem.data.series)
    ]
    return layout


def summary(layout: dict[str, Any]) -> dict[str, Any]:
    """What the version document should record for ML.FORECAST (no history values)."""
    keys = ("time_column", "time_type", "timezone", "frequency", "step", "series_id", "horizon")
    return {
        **{k: layout[k] for k in keys},
        "season": layout.get("season"),
        "cv_windows": layout.get("cv_windows"),
        "members": layout.get("members"),
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


def _fit_ml(learner: str, config: dict[str, Any], X: Any, y: Any, *, n_jobs: int, seed: int) -> Any:
    from threadpoolctl import threadpool_limits

    if learner == backends.BASELINE:
        config = {}
    with threadpool_limits(limits=n_jobs):  # HistGradientBoosting has no n_jobs of its own
        return backends.fit_trial(learner, "forecast", config, X, y, n_jobs=n_jobs, seed=seed)


def _ml_backtest(
    problem: _Problem, learner: str, config: dict[str, Any], *, n_jobs: int, seed: int
) -> Any:
    """(series, windows + 1, horizon) forecasts of an ML configuration, refitted per window."""
    import numpy as np

    h = problem.data.horizon
    out = np.empty((len(problem.data.series), problem.windows + 1, h))
    for k in range(problem.windows + 1):
        X, y = problem.design_until((k + 1) * h)
        model = _fit_ml(learner, config, X, y, n_jobs=n_jobs, seed=seed)
        out[:, k, :] = problem.ml_forecast(model.predict, (k + 1) * h)
    return out


def _stat_backtest(problem: _Problem, name: str, deadline: float | None) -> Any:
    """(series, windows + 1, horizon) forecasts of a statistical model, refitted per window; None
    when the deadline passes first."""
    import numpy as np

    h = problem.data.horizon
    kwargs = statistical.kwargs_for(name, problem.layout["season"])
    out = np.empty((len(problem.data.series), problem.windows + 1, h))
    for i, ser in enumerate(problem.data.series):
        n = len(ser.y)
        for k in range(problem.windows + 1):
            origin = n - (k + 1) * h
            X = None if ser.X is None else (ser.X[:origin], ser.X[origin : origin + h])
            out[i, k, :] = statistical.forecast(name, kwargs, ser.y[:origin], h, X=X)["mean"]
            if deadline is not None and time.perf_counter() > deadline:
                return None
    return out


def _stat_config(name: str, problem: _Problem) -> dict[str, Any]:
    return statistical.kwargs_for(name, problem.layout["season"])


def _members(learner: str, config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if learner == COMBINATION:
        return [(m["learner"], m["config"]) for m in config["members"]]
    return [(learner, config)]


def _backtest(
    problem: _Problem, learner: str, config: dict[str, Any], *, n_jobs: int, seed: int
) -> Any:
    import numpy as np

    if learner == COMBINATION:
        preds = [
            _backtest(problem, lrn, cfg, n_jobs=n_jobs, seed=seed)
            for lrn, cfg in _members(learner, config)
        ]
        return np.mean(preds, axis=0)
    if learner in STATISTICAL:
        return _stat_backtest(problem, learner, None)
    return _ml_backtest(problem, learner, config, n_jobs=n_jobs, seed=seed)


def _conformal(problem: _Problem, pred: Any) -> list[float]:
    """Absolute backtest errors divided by the series' scale and sqrt(step), sorted."""
    import numpy as np

    truth = problem.truth()[:, 1:, :]
    err = np.abs(truth - pred[:, 1:, :])
    steps = np.sqrt(np.arange(1, truth.shape[2] + 1, dtype="float64"))
    norm = err / problem.scales[:, None, None] / steps[None, None, :]
    return [float(v) for v in np.sort(norm.reshape(-1))]


def _final(
    problem: _Problem, learner: str, config: dict[str, Any], pred: Any, *, n_jobs: int, seed: int
) -> tuple[Any, dict[str, Any]]:
    """The chosen candidate fitted on every period: (ML estimator, layout)."""
    layout = _finish_layout(problem)
    members = _members(learner, config)
    layout["members"] = [m for m, _ in members]
    layout["statistical"] = {}
    estimator = None
    for lrn, cfg in members:
        if lrn in STATISTICAL:
            layout["statistical"][lrn] = [
                statistical.fit_state(lrn, cfg, ser.y, ser.X) for ser in problem.data.series
            ]
        else:
            X, y = problem.design_until(0)
            estimator = _fit_ml(lrn, cfg, X, y, n_jobs=n_jobs, seed=seed)
    if estimator is None:
        estimator = _linear(layout["features"], {})
    layout["conformal"] = _conformal(problem, pred)
    return estimator, layout


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
    for c in data.covariates:
        outputs = [f for f in (f"cov_{c}", f"cov_{c}_change") if f in features]
        prep.columns.append({"name": c, "kind": "forecast_covariate", "outputs": outputs})
    for c in exclude:
        if c not in (data.label, data.time_column, *data.series_id):
            prep.dropped.append({"name": c, "reason": "excluded"})
    for c in data.unused:
        prep.dropped.append({"name": c, "reason": "not used by a forecast (no future values)"})
    if data.unused:
        prep.warn(
            "forecast uses the history of the label, the time, the series and the covariates"
            " only: column(s) "
            + ", ".join(repr(c) for c in data.unused)
            + " not used (name the ones whose future values are known in covariates)"
        )
    return prep


def _metric_value(metric: str, loss: float) -> float:
    return 1.0 - loss if metric == "r2" else loss


def _loss(scores: dict[str, float], metric: str) -> float:
    value = scores[metric]
    loss = metrics.loss(metric, value)
    return loss if loss == loss else float("inf")


def _safe_scores(problem: _Problem, pred: Any, which: str) -> dict[str, float] | None:
    try:
        return problem.scores(pred, which)
    except ValueError:  # non-finite forecasts
        return None


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
    """The forecast branch of :func:`lakesql.ml.automl.fit`: backtest, choose, refit, score."""
    from lakesql.ml import automl
    from lakesql.ml.automl import Outcome, Progress, add_trial
    from lakesql.ml.options import check_metric, learners

    metric = check_metric("forecast", opts["metric"])
    data = prepare(df, label, opts)
    split = split_data(data)
    problem = _problem(data, opts)
    prep = _new_prep(data, problem, list(opts["exclude"]), notes)
    n_jobs = automl.n_jobs(opts)
    seed = opts["seed"]
    chosen = learners("forecast", opts["estimators"])
    if any(c in STATISTICAL for c in chosen):
        try:
            statistical.load()  # its first import is not the candidates' time
        except ImportError as e:
            if opts["estimators"]:  # asked for by name: say what is missing
                raise E.NotSupportedError(
                    f"statistical forecast models need statsforecast: {e}",
                    hint="pip install --no-deps 'statsforecast>=2.0.3,<2.1' (see pyproject's "
                    "forecast extra)",
                ) from e
            notes.append("statsforecast is not installed: statistical candidates left out")
            _warnings.warn(
                "lakesql: statsforecast is not installed; forecasting with the ML candidates only",
                stacklevel=2,
            )
            chosen = [c for c in chosen if c not in STATISTICAL]
    started_all = time.perf_counter()
    combine = COMBINATION in chosen
    stat_names = [n for n in statistical.ORDER if n in chosen]
    if stat_names and problem.layout["season"] <= 1 and SEASONAL_NAIVE in stat_names:
        stat_names.remove(SEASONAL_NAIVE)  # the naive forecast, under another name
    flaml_learners = [
        lrn for lrn in chosen if lrn not in STATISTICAL and lrn not in (COMBINATION, "histgb")
    ]
    use_default = opts["estimators"] is None or "histgb" in chosen
    trials: list[dict[str, Any]] = []
    preds: dict[int, Any] = {}  # trial number -> backtest forecasts

    def record(learner: str, config: dict[str, Any], pred: Any, seconds: float) -> None:
        scores = _safe_scores(problem, pred, "valid")
        loss = float("inf") if scores is None else _loss(scores, metric)
        trial = add_trial(trials, learner, config, loss, _metric_value(metric, loss), seconds)
        if scores is not None:
            preds[trial["trial"]] = pred

    # statistical candidates first, cheapest first; they may use half the budget
    ml_wanted = bool(flaml_learners) or use_default
    stat_deadline = started_all + (time_budget * 0.5 if ml_wanted else time_budget)
    for name in stat_names:
        cheap = name in BASELINES  # no fitting: never left out
        if time.perf_counter() > stat_deadline and trials and not cheap:
            prep.warn(f"estimator {name!r} left out: the time budget ran out (raise time_budget)")
            continue
        started = time.perf_counter()
        pred = _stat_backtest(problem, name, None if cheap or not trials else stat_deadline)
        if pred is None:
            prep.warn(f"estimator {name!r} left out: the time budget ran out (raise time_budget)")
            continue
        record(name, _stat_config(name, problem), pred, time.perf_counter() - started)

    if ml_wanted:
        _search_data(problem)
    log = workdir / "flaml.log"
    if flaml_learners:
        from flaml import AutoML

        def validation_metric(*args: Any, **kwargs: Any) -> tuple[float, dict[str, float]]:
            estimator = args[2]
            h = problem.data.horizon
            pred = problem.ml_forecast(estimator.predict, 2 * h)
            try:
                scores = metrics.forecast_metrics(
                    problem.truth()[:, 1, :], pred, problem.mase_scales
                )
            except ValueError:  # non-finite forecasts
                return float("inf"), {}
            return _loss(scores, metric), {metric: scores[metric]}

        budget = max(time_budget - (time.perf_counter() - started_all), time_budget * 0.25)
        if use_default:
            budget = max(budget * 0.7, budget - 2.0)  # room for the default candidate's backtest
        settings = automl.flaml_settings(
            "regression",
            validation_metric,
            budget,
            seed=seed,
            learners=flaml_learners,
            log=log,
            jobs=n_jobs,
        )
        if opts["max_trials"]:
            settings["max_iter"] = opts["max_trials"]
        from threadpoolctl import threadpool_limits

        with (
            Progress(log, budget, metric, progress),
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
        searched = automl.read_flaml_log(log, lambda loss: _metric_value(metric, loss))
        if searched:
            # FLAML's trials are scored on its one validation window; the best of them is
            # backtested over every window like the other candidates (a fresh fit per window:
            # what RETRAIN ... REPRODUCE rebuilds).
            top = min(searched, key=lambda t: t["valid_loss"])
            for t in searched:
                if t is not top:
                    add_trial(
                        trials,
                        t["learner"],
                        t["config"],
                        t["valid_loss"],
                        t["valid_metric"],
                        t["train_seconds"],
                        t.get("wall_clock_seconds"),
                    )
                    trials[-1]["search_only"] = True
            started = time.perf_counter()
            pred = _ml_backtest(problem, top["learner"], top["config"], n_jobs=n_jobs, seed=seed)
            record(top["learner"], top["config"], pred, time.perf_counter() - started)
            trials[-1]["flaml_valid_loss"] = top["valid_loss"]
    if use_default:
        started = time.perf_counter()
        pred = _ml_backtest(problem, backends.BASELINE, {}, n_jobs=n_jobs, seed=seed)
        record(backends.BASELINE, {"random_state": seed}, pred, time.perf_counter() - started)

    ranked = sorted(
        (t for t in trials if t["trial"] in preds), key=lambda t: (t["valid_loss"], t["trial"])
    )
    if combine or opts["estimators"] is None:
        top_k = ranked[:COMBINE_TOP]
        if len(top_k) >= 2:
            import numpy as np

            config = {
                "method": "mean",
                "members": [{"learner": t["learner"], "config": t["config"]} for t in top_k],
            }
            pred = np.mean([preds[t["trial"]] for t in top_k], axis=0)
            record(COMBINATION, config, pred, 0.0)
            ranked = sorted(
                (t for t in trials if t["trial"] in preds),
                key=lambda t: (t["valid_loss"], t["trial"]),
            )
    if not ranked:
        raise E.OperationalError("no candidate finished its backtest", hint="raise time_budget")
    best = ranked[0]
    best["is_best"] = True
    pred = preds[best["trial"]]
    valid_metrics = problem.scores(pred, "valid")
    test_metrics = problem.scores(pred, "test")
    estimator, layout = _final(
        problem, best["learner"], best["config"], pred, n_jobs=n_jobs, seed=seed
    )
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
    """Train a forecast version's recorded choice again, on the same rows and windows."""
    from lakesql.ml.automl import n_jobs, refit_outcome

    opts = version_doc["options"]
    label = version_doc["label"]
    metric = version_doc["metric"]
    data = prepare(df, label, opts)
    problem = _problem(data, opts)
    prep = _new_prep(data, problem, list(opts["exclude"]), [])
    best = dict(version_doc["best_trial"])
    config = dict(best["config"])
    jobs = n_jobs(opts)
    pred = _backtest(problem, best["learner"], config, n_jobs=jobs, seed=opts["seed"])
    valid_metrics = problem.scores(pred, "valid")
    scores = (valid_metrics, problem.scores(pred, "test"))
    estimator, layout = _final(
        problem, best["learner"], config, pred, n_jobs=jobs, seed=opts["seed"]
    )
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
    """Backtest scores of one trial's configuration, trained again on the same rows.

    What a forecast trial notebook runs. The candidates' logged loss is this backtest's; FLAML's
    other trials (``search_only``) logged their loss on the search's one validation window.
    """
    problem = _problem(prepare(df, label, opts), opts)
    pred = _backtest(problem, learner, config, n_jobs=n_jobs, seed=opts["seed"])
    return problem.scores(pred, "valid")


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


def check_levels(levels: Any) -> list[float]:
    """Interval levels in percent, each above 0 and below 100."""
    if levels is None:
        return []
    values = levels if isinstance(levels, (list, tuple)) else [levels]
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 100:
            raise E.OptionError(
                f"level => takes percentages between 0 and 100, e.g. [80, 95]; not {v!r}"
            )
        if float(v) not in out:
            out.append(float(v))
    return sorted(out)


def _level_name(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else str(level).replace(".", "_")


def _conformal_width(residuals: list[float], level: float) -> float:
    """The conformal quantile of the normalised backtest errors at `level` percent."""
    import math

    n = len(residuals)
    if n == 0:
        return float("nan")
    rank = math.ceil((n + 1) * level / 100.0)
    return float(residuals[min(n, max(1, rank)) - 1])


def _future_covariates(
    layout: dict[str, Any], future: Any, times: list[Any], steps: int
) -> list[Any] | None:
    """Per series the covariates' (steps + 1, k) values: the last trained period's, then those
    of `future` (a frame with the series, time and covariate columns) at each future period."""
    import numpy as np
    import pandas as pd

    names = layout.get("covariates") or []
    if not names:
        return None
    time_col, ids = layout["time_column"], list(layout["series_id"])
    if future is None:
        raise E.ProgrammingError(
            "this model uses covariates: give their future values",
            hint=f"ML.FORECAST(MODEL m, TABLE future_rows): rows with {', '.join([*ids, time_col, *names])}",
        )
    for c in [*ids, time_col, *names]:
        if c not in future.columns:
            raise E.ProgrammingError(
                f"the future rows need the column {c!r}",
                hint="columns: " + ", ".join([*ids, time_col, *names]),
            )
    frame = future.copy()
    if layout["time_type"] != "integer":
        frame[time_col] = pd.to_datetime(frame[time_col])
        if getattr(frame[time_col].dt, "tz", None) is not None:
            frame[time_col] = frame[time_col].dt.tz_convert("UTC").dt.tz_localize(None)
    lookup: dict[Any, Any] = {}
    for rec in frame[[*ids, time_col, *names]].itertuples(index=False):
        key = (
            *tuple(rec[: len(ids)]),
            pd.Timestamp(rec[len(ids)]) if layout["time_type"] != "integer" else int(rec[len(ids)]),
        )
        lookup[key] = [float(v) for v in rec[len(ids) + 1 :]]
    out = []
    for s, ts in zip(layout["series"], times, strict=True):
        rows = [s["last_covariates"]]
        for t in list(ts)[:steps]:
            tkey = pd.Timestamp(t) if layout["time_type"] != "integer" else int(t)
            got = lookup.get((*s["key"], tkey))
            if got is None:
                where = ", ".join(f"{c} = {v!r}" for c, v in zip(ids, s["key"], strict=True))
                raise E.DataError(
                    f"the future rows have no row for {time_col} = {_time_out(t, layout)}"
                    + (f" of series {where}" if where else ""),
                    hint=f"give the covariates of every forecast period ({steps} per series)",
                )
            if any(v != v for v in got):
                raise E.DataError(
                    f"a covariate is NULL in the future rows at {_time_out(t, layout)}"
                )
            rows.append(got)
        out.append(np.asarray(rows, dtype="float64"))
    return out


def forecast(
    version_folder: Path,
    version_doc: dict[str, Any],
    horizon: int | None = None,
    levels: list[float] | None = None,
    future: Any = None,
) -> Any:
    """Future values of every series of a forecast model version, as a pyarrow Table.

    One row per series and future period: the series_id columns, the time column,
    ``<label>_forecast`` and, per level, ``<label>_lower_<level>`` and ``<label>_upper_<level>``,
    ordered by series and time. `horizon` defaults to the trained one; a longer horizon continues
    the same models.
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
            f"the forecast state in {folder / 'prep.json'} is missing or in an older format",
            hint="train the model again (RETRAIN MODEL m)",
        )
    steps = int(layout["horizon"] if horizon is None else horizon)
    if isinstance(horizon, bool) or steps < 1:
        raise E.OptionError(f"horizon must be at least 1, not {horizon!r}")
    levels = check_levels(levels)
    series = layout["series"]
    times = [future_times(layout, s["last_time"], steps) for s in series]
    members = layout["members"]
    covs = _future_covariates(layout, future, times, steps)
    means, own = [], None
    for member in members:
        if member in STATISTICAL:
            outs = [
                statistical.predict(state, steps, levels, None if covs is None else covs[i][1:])
                for i, state in enumerate(layout["statistical"][member])
            ]
            means.append(np.stack([o["mean"] for o in outs]))
            own = outs
        else:
            model = backends.load(folder)
            means.append(
                recursive(
                    model.predict_values,
                    layout,
                    [np.asarray(s["history"], dtype="float64") for s in series],
                    times,
                    np.asarray([s["scale"] for s in series]),
                    np.asarray([s["code"] for s in series], dtype="float64"),
                    covs,
                )
            )
    values = np.mean(means, axis=0)
    columns: dict[str, Any] = {}
    for i, c in enumerate(layout["series_id"]):
        columns[c] = pa.array([s["key"][i] for s in series for _ in range(steps)])
    columns[layout["time_column"]] = _time_array([t for ts in times for t in ts], layout)
    label = layout["label"]
    columns[f"{label}_forecast"] = pa.array(values.reshape(-1), pa.float64())
    growth = np.sqrt(np.arange(1, steps + 1, dtype="float64"))
    scales = np.asarray([s["scale"] for s in series], dtype="float64")
    for level in levels:
        if len(members) == 1 and own is not None:  # a statistical model's own interval
            key = _level_name(level).replace("_", ".")
            lo = np.stack([o[f"lo-{key}"] for o in own])
            hi = np.stack([o[f"hi-{key}"] for o in own])
        else:
            width = _conformal_width(layout["conformal"], level) * scales[:, None] * growth
            lo, hi = values - width, values + width
        name = _level_name(level)
        columns[f"{label}_lower_{name}"] = pa.array(lo.reshape(-1), pa.float64())
        columns[f"{label}_upper_{name}"] = pa.array(hi.reshape(-1), pa.float64())
    return pa.table(columns)


def evaluate(version_folder: Path, version_doc: dict[str, Any], actuals: Any) -> Any:
    """ML.EVALUATE of a forecast model: its forecasts against `actuals` (a pandas frame with the
    time column, the label and the series_id columns), per series and overall.

    Rows at or before a series' last trained period, and rows of series the model does not know,
    are not scored. Without `actuals`: the backtest and test-window metrics recorded at training.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    schema = [("metric", pa.string()), ("value", pa.float64()), ("periods", pa.int64())]
    if actuals is None:
        rows = []
        for data, which in (("backtest windows", "valid"), ("test window", "test")):
            for m, v in (version_doc.get("metrics", {}).get(which) or {}).items():
                rows.append({"metric": m, "value": v, "periods": None, "data": data})
        return pa.Table.from_pylist(rows, schema=pa.schema([*schema, ("data", pa.string())]))
    layout = json.loads((Path(version_folder) / "prep.json").read_text())["forecast"]
    label, time_col, ids = layout["label"], layout["time_column"], list(layout["series_id"])
    for c in (time_col, label, *ids):
        if c not in actuals.columns:
            raise E.ProgrammingError(
                f"the actuals need the column {c!r}",
                hint="ML.EVALUATE(MODEL m, TABLE t): t holds " + ", ".join([*ids, time_col, label]),
            )
    frame = actuals[actuals[label].notna()].copy()
    if layout["time_type"] != "integer":
        frame[time_col] = pd.to_datetime(frame[time_col])
        if layout.get("timezone") and frame[time_col].dt.tz is not None:
            frame[time_col] = frame[time_col].dt.tz_convert("UTC").dt.tz_localize(None)
    last = max(
        (pd.Timestamp(s["last_time"]) if layout["time_type"] != "integer" else s["last_time"])
        for s in layout["series"]
    )
    future = frame[frame[time_col] > last]
    if len(future) == 0:
        raise E.DataError(
            f"no actuals after the last trained period ({_time_out(last, layout)})",
            hint="evaluate on periods the model did not see",
        )
    if layout["time_type"] == "integer":
        steps = int((future[time_col].max() - last) // layout["step"])
    else:
        steps = len(pd.date_range(last, future[time_col].max(), freq=layout["frequency"])) - 1
    needs = bool(layout.get("covariates"))
    fc = forecast(
        version_folder, version_doc, max(1, steps), future=future if needs else None
    ).to_pandas()
    if layout["time_type"] != "integer":
        fc[time_col] = pd.to_datetime(fc[time_col])
        if fc[time_col].dt.tz is not None:
            fc[time_col] = fc[time_col].dt.tz_convert("UTC").dt.tz_localize(None)
    for c in ids:
        fc[c] = fc[c].astype(object)
        future = future.assign(**{c: future[c].astype(object)})
    joined = future[[*ids, time_col, label]].merge(fc, on=[*ids, time_col], how="inner")
    if len(joined) == 0:
        raise E.DataError("none of the actuals falls on a forecast period of a known series")
    scales = {tuple(s["key"]): s["mase_scale"] for s in layout["series"]}
    out_rows: list[dict[str, Any]] = []
    groups: list[tuple[Any, Any]] = list(joined.groupby(ids, sort=True)) if ids else [((), joined)]
    per_series = []
    for group, part in groups:
        key = group if isinstance(group, tuple) else (group,)
        truth = part[label].to_numpy(dtype="float64")[None, :]
        pred = part[f"{label}_forecast"].to_numpy(dtype="float64")[None, :]
        scale = scales.get(tuple(key), float("nan"))
        per_series.append((truth, pred, scale))
        for m, v in metrics.forecast_metrics(truth, pred, [scale]).items():
            out_rows.append(
                {
                    **dict(zip(ids, key, strict=True)),
                    "metric": m,
                    "value": v,
                    "periods": truth.shape[1],
                }
            )
    if ids:
        truth = np.concatenate([t.reshape(-1) for t, _, _ in per_series])
        pred = np.concatenate([p.reshape(-1) for _, p, _ in per_series])
        overall = metrics.forecast_metrics(truth, pred, [1.0])
        # mase and smape overall: the mean over series of each series' value
        for name in ("mase", "smape"):
            overall[name] = float(
                np.mean([metrics.forecast_metrics(t, p, [sc])[name] for t, p, sc in per_series])
            )
        for m, v in overall.items():
            out_rows.append({**dict.fromkeys(ids), "metric": m, "value": v, "periods": len(truth)})
    table = pd.DataFrame(out_rows)
    return pa.Table.from_pandas(table, preserve_index=False)
