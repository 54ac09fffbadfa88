"""TRAIN AUTOML options, declared once: name, type, default, help. Validated before any work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakesql.config import MAX_TIME_BUDGET, Spec
from lakesql.errors import OptionError, suggest

TASKS = ("classification", "regression", "forecast")
METRICS = {
    "classification": ("roc_auc", "log_loss", "f1", "accuracy"),
    "regression": ("r2", "rmse", "mae", "mape"),
    "forecast": ("mase", "smape", "wape", "rmse", "mae", "mape", "r2"),
}
# our estimator names -> FLAML learner names, per task
ESTIMATORS: dict[str, dict[str, str]] = {
    "xgboost": {"classification": "xgboost", "regression": "xgboost", "forecast": "xgboost"},
    "lgbm": {"classification": "lgbm", "regression": "lgbm", "forecast": "lgbm"},
    "rf": {"classification": "rf", "regression": "rf", "forecast": "rf"},
    "extra_tree": {
        "classification": "extra_tree",
        "regression": "extra_tree",
        "forecast": "extra_tree",
    },
    "histgb": {"classification": "histgb", "regression": "histgb", "forecast": "histgb"},
    "lr": {"classification": "lrl1", "regression": "enet", "forecast": "enet"},
    # the name FLAML (and so the results) give the linear regression
    "enet": {"regression": "enet", "forecast": "enet"},
    # statistical forecast models, one per series (lakesql.ml.statistical)
    "naive": {"forecast": "naive"},
    "seasonal_naive": {"forecast": "seasonal_naive"},
    "ets": {"forecast": "ets"},
    "arima": {"forecast": "arima"},
    "theta": {"forecast": "theta"},
    # the mean of the best candidates' forecasts (lakesql.ml.forecast)
    "combination": {"forecast": "combination"},
}
FORECAST_ONLY = ("season", "frequency", "cv_windows", "covariates")
SPLITS = ("random", "time", "column")


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, got {v!r}")
    return int(v)


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"expected a list of strings, e.g. ['a', 'b'], got {v!r}")
    return list(v)


def _any_scalar(v: Any) -> Any:
    if isinstance(v, (list, dict)):
        raise ValueError(f"expected a single value, got {v!r}")
    return v


OptionSpec = Spec  # a TRAIN option is a Spec

OPTIONS: dict[str, OptionSpec] = {
    o.name: o
    for o in [
        OptionSpec(
            "task",
            _str,
            None,
            "classification, regression or forecast (inferred from the label)",
            "text",
            choices=TASKS,
        ),
        OptionSpec(
            "metric", _str, None, "metric to optimise (default roc_auc / r2 / mase)", "text"
        ),
        OptionSpec(
            "time_budget",
            _num,
            None,
            "seconds for the search and the default candidate (default: setting time_budget, 60)",
            "number",
            low=0,
            open_low=True,
            high=MAX_TIME_BUDGET,
        ),
        OptionSpec("max_trials", _int, None, "stop after this many trials", "integer", low=1),
        OptionSpec(
            "estimators", _str_list, None, "estimators to try: " + ", ".join(ESTIMATORS), "list"
        ),
        OptionSpec(
            "split",
            _str,
            None,
            "random, time or column (default: time when time_column is set)",
            "text",
            choices=SPLITS,
        ),
        OptionSpec(
            "split_column",
            _str,
            None,
            "column holding 'train'/'valid'/'test' for split = 'column'",
            "text",
        ),
        OptionSpec(
            "time_column", _str, None, "time column: time split, forecast time index", "text"
        ),
        OptionSpec(
            "test_fraction",
            _num,
            0.2,
            "share of rows held out for the final test",
            "number",
            low=0,
            high=1,
            open_low=True,
            open_high=True,
        ),
        OptionSpec(
            "valid_fraction",
            _num,
            0.2,
            "share of the remaining rows used to validate trials",
            "number",
            low=0,
            high=1,
            open_low=True,
            open_high=True,
        ),
        OptionSpec("exclude", _str_list, [], "columns not to use as features", "list"),
        OptionSpec("seed", _int, 0, "random seed", "integer"),
        OptionSpec("pos_label", _any_scalar, None, "positive class of a binary label", "value"),
        OptionSpec("horizon", _int, None, "forecast: number of future periods", "integer", low=1),
        OptionSpec("series_id", _str_list, [], "forecast: columns identifying each series", "list"),
        OptionSpec(
            "covariates",
            _str_list,
            [],
            "forecast: columns whose future values are known (prices, holidays, a law);"
            " ML.FORECAST(MODEL m, TABLE future_rows) takes those values",
            "list",
        ),
        OptionSpec(
            "cv_windows",
            _int,
            3,
            "forecast: rolling-origin backtest windows of horizon periods that choose the model",
            "integer",
            low=1,
            high=50,
        ),
        OptionSpec(
            "season",
            _int,
            None,
            "forecast: periods in a season (default: from the frequency, e.g. 12 for monthly)",
            "integer",
            low=1,
        ),
        OptionSpec(
            "frequency",
            _str,
            None,
            "forecast: pandas frequency of the periods, e.g. 'MS', 'W-SUN' (default: inferred)",
            "text",
        ),
        OptionSpec(
            "cluster",
            _str,
            None,
            "Ray cluster for the trials: ray://host:10001, auto, local (embedded) or none",
            "text",
        ),
        OptionSpec("n_jobs", _int, -1, "threads per trial (-1: all cores)", "integer"),
    ]
}


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert TRAIN options; return every option with defaults filled in.

    Raises:
        OptionError: unknown option (with the valid ones), wrong type, or a value outside its choices.
    """
    out = {name: spec.default for name, spec in OPTIONS.items()}
    for key, value in raw.items():
        name = key.lower()
        spec = OPTIONS.get(name)
        if spec is None:
            hint = suggest(name, OPTIONS) or ""
            raise OptionError(
                f"unknown option {key!r}",
                hint=(hint + " " if hint else "") + "valid options: " + ", ".join(OPTIONS),
            )
        converted = spec.check(value, "option")
        out[name] = converted
    if out["estimators"] is not None:
        for est in out["estimators"]:
            if est not in ESTIMATORS:
                close = suggest(est, ESTIMATORS)
                raise OptionError(
                    f"unknown estimator {est!r}",
                    hint=(close + " " if close else "")
                    + "valid estimators: "
                    + ", ".join(ESTIMATORS),
                )
    if out["split"] == "column" and not out["split_column"]:
        raise OptionError("split = 'column' needs split_column = '<column>'")
    if out["split"] == "time" and not out["time_column"]:
        raise OptionError("split = 'time' needs time_column = '<column>'")
    if out["task"] == "forecast" and (not out["time_column"] or out["horizon"] is None):
        raise OptionError("task = 'forecast' needs time_column and horizon")
    given = {k.lower() for k in raw}
    if out["task"] == "forecast":
        if out["split"] not in (None, "time"):
            raise OptionError(
                "task = 'forecast' splits by time only",
                hint="the last horizon periods of each series are the test window, the horizon before them the validation window",
            )
        for name in ("test_fraction", "valid_fraction", "split_column", "pos_label"):
            if name in given:
                raise OptionError(
                    f"option {name!r} does not apply to task = 'forecast'",
                    hint="the last horizon periods of each series are the test window, the horizon before them the validation window",
                )
    else:
        for name in ("horizon", "series_id", *FORECAST_ONLY):
            if name in given:
                raise OptionError(
                    f"option {name!r} applies to task = 'forecast' only",
                    hint="add task = 'forecast'",
                )
    return out


def check_metric(task: str, metric: str | None) -> str:
    valid = METRICS[task]
    if metric is None:
        return valid[0]
    if metric not in valid:
        raise OptionError(
            f"metric {metric!r} does not fit a {task} task",
            hint="valid metrics: " + ", ".join(valid),
        )
    return metric


def learners(task: str, estimators: list[str] | None) -> list[str]:
    """FLAML learner names for our estimator names."""
    names = estimators or [e for e in ESTIMATORS if task in ESTIMATORS[e]]
    out = []
    for e in names:
        learner = ESTIMATORS[e].get(task)
        if learner is None:
            raise OptionError(f"estimator {e!r} does not support {task}")
        if learner not in out:  # 'lr' and 'enet' name one learner
            out.append(learner)
    return out
