"""Statistical forecast models, one series at a time: statsforecast behind one module.

statsforecast (2.0.x: 2.1 declares pandas<3) is imported inside functions only; its first use in
a process imports numba and fugue and compiles (seconds). A candidate is named as in the
``estimators`` option and in the results:

============== =======================================================
name           model
============== =======================================================
naive          ``Naive``: the last value
seasonal_naive ``SeasonalNaive``: the value one season earlier
ets            ``AutoETS``: exponential smoothing, error/trend/season chosen by AICc
arima          ``AutoARIMA``: (seasonal) ARIMA chosen stepwise by AICc
theta          ``AutoTheta``: standard/optimised/dynamic Theta, multiplicative decomposition
============== =======================================================

A fitted model is stored without pickle: its constructor arguments and its fitted state
(``model_``, a dict of numbers, strings, tuples and numpy arrays) encoded as JSON by
:func:`encode` (floats written with ``repr``, so they read back bit for bit). :func:`predict`
rebuilds the model object from them and calls its own ``predict``: the forecast and the intervals
are the library's, from exactly the fitted parameters.
"""

from __future__ import annotations

import math
from typing import Any

from lakesql import errors as E

MODELS = {
    "naive": "Naive",
    "seasonal_naive": "SeasonalNaive",
    "ets": "AutoETS",
    "arima": "AutoARIMA",
    "theta": "AutoTheta",
}
SEASONAL = ("seasonal_naive", "ets", "arima", "theta")
EXOGENOUS = ("arima",)  # the models that use covariates (regression with ARIMA errors)
# cheapest first: when the budget runs out the slow ones are the ones left out
ORDER = ("naive", "seasonal_naive", "theta", "ets", "arima")
_RESULTS = "statsforecast.utils.results"  # the one class (a namedtuple) inside a fitted state


def load() -> float:
    """Import statsforecast (numba, fugue: seconds the first time in a process); the seconds it
    took, so that a time budget can leave them out."""
    import time

    started = time.perf_counter()
    import statsforecast.models  # noqa: F401

    return time.perf_counter() - started


def kwargs_for(name: str, season: int) -> dict[str, Any]:
    """Constructor arguments of candidate `name` at this season length."""
    if name == "naive":
        return {}
    return {"season_length": int(max(1, season))}


def _model(name: str, kwargs: dict[str, Any]) -> Any:
    import statsforecast.models as sm

    try:
        cls = getattr(sm, MODELS[name])
    except KeyError as e:
        raise E.OperationalError(f"unknown statistical model {name!r}") from e
    return cls(**kwargs)


def _levels(levels: list[float] | None) -> list[Any] | None:
    if not levels:
        return None
    return [int(v) if float(v).is_integer() else float(v) for v in levels]


def forecast(
    name: str,
    kwargs: dict[str, Any],
    y: Any,
    h: int,
    levels: list[float] | None = None,
    X: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Fit on `y` and forecast `h` periods: {'mean': array, 'lo-80': ..., 'hi-80': ...}.

    `X`: the covariates' (training, future) values, used by the models in EXOGENOUS only.

    A model that cannot be fitted to this series (too short for its season, constant, ...) falls
    back to the naive forecast; the result then has ``'fallback': True``.
    """
    import warnings

    import numpy as np

    y = np.asarray(y, dtype="float64")
    lv = _levels(levels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if X is not None and name in EXOGENOUS:
                out = _model(name, kwargs).forecast(
                    y=y, h=h, X=np.asarray(X[0]), X_future=np.asarray(X[1]), level=lv
                )
            else:
                out = _model(name, kwargs).forecast(y=y, h=h, level=lv)
            if not np.all(np.isfinite(out["mean"])):
                raise ValueError("non-finite forecast")
            return {k: np.asarray(v, dtype="float64") for k, v in out.items()}
        except Exception:
            if name == "naive":
                raise
            out = _model("naive", {}).forecast(y=y, h=h, level=lv)
            res: dict[str, Any] = {k: np.asarray(v, dtype="float64") for k, v in out.items()}
            res["fallback"] = True
            return res


def fit_state(name: str, kwargs: dict[str, Any], y: Any, X: Any = None) -> dict[str, Any]:
    """Fit on all of `y` (and covariates `X`); the JSON-able state :func:`predict` forecasts
    from."""
    import warnings

    import numpy as np

    y = np.asarray(y, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exog = X is not None and name in EXOGENOUS
            model = _model(name, kwargs).fit(y=y, X=np.asarray(X) if exog else None)
            probe = model.predict(h=1, X=np.asarray(X)[-1:] if exog else None)["mean"]
            if not np.all(np.isfinite(probe)):
                raise ValueError("non-finite forecast")
        except Exception:
            if name == "naive":
                raise
            return {"name": "naive", "kwargs": {}, "fallback": True, **fit_state("naive", {}, y)}
    return {"name": name, "kwargs": kwargs, "state": encode(model.model_), "exogenous": exog}


def predict(
    stored: dict[str, Any], h: int, levels: list[float] | None = None, X: Any = None
) -> dict[str, Any]:
    """The forecast of a state written by :func:`fit_state`, `h` periods ahead (`X`: the
    covariates' future values, used when the state was fitted with them)."""
    import warnings

    import numpy as np

    model = _model(stored["name"], stored["kwargs"])
    model.model_ = decode(stored["state"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exog = np.asarray(X) if stored.get("exogenous") and X is not None else None
        out = model.predict(h=h, X=exog, level=_levels(levels))
    return {k: np.asarray(v, dtype="float64") for k, v in out.items()}


# -- the fitted state as JSON -----------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A fitted statsforecast state as JSON-able values, typed so that :func:`decode` is exact."""
    import numpy as np

    if isinstance(value, np.generic):  # before float: np.float64 is a float
        return {"__np__": value.dtype.str, "value": encode(value.item())}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, np.ndarray):
        flat = value.reshape(-1).tolist()
        if value.dtype.kind == "f":
            flat = [_float(v) for v in flat]
        elif value.dtype.kind == "c":
            raise E.InternalError("complex arrays are not stored")
        return {"__nd__": value.dtype.str, "shape": list(value.shape), "data": flat}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise E.InternalError("a fitted state has a non-text key")
        return {"__dict__": {k: encode(v) for k, v in value.items()}}
    if isinstance(value, tuple):
        cls = type(value)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if hasattr(value, "_fields"):
            if name != _RESULTS:
                raise E.InternalError(f"unexpected type {name} in a fitted state")
            return {"__results__": [encode(v) for v in value]}
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    raise E.InternalError(f"unexpected type {type(value).__name__} in a fitted state")


def _float(v: float) -> Any:
    if math.isfinite(v):
        return v  # json writes repr(v): exact
    return {"__float__": repr(v)}


def decode(value: Any) -> Any:
    import numpy as np

    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__nd__" in value:
        dtype = np.dtype(value["__nd__"])
        data = [decode(v) if isinstance(v, dict) else v for v in value["data"]]
        return np.array(data, dtype=dtype).reshape(value["shape"])
    if "__np__" in value:
        return np.dtype(value["__np__"]).type(decode(value["value"]))
    if "__dict__" in value:
        return {k: decode(v) for k, v in value["__dict__"].items()}
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__results__" in value:
        from statsforecast.utils import results

        return results(*[decode(v) for v in value["__results__"]])
    raise E.OperationalError("a stored statistical model state is not in a known form")
