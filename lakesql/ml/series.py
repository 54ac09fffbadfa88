"""Forecast data: the series of a training frame, their time index and frequency, and the time
split into training, validation and test windows (lakesql.ml.forecast builds the model on it)."""

from __future__ import annotations

import datetime as dt
import warnings as _warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakesql import errors as E

if TYPE_CHECKING:
    from lakesql.ml.automl import Split

MIN_TRAIN_TARGETS = 8  # training periods per series, after the first `lags` ones
MIN_LAGS = 2


# -- the data: series, times, frequency -------------------------------------------------------------


@dataclass
class Series:
    key: list[Any]  # values of the series_id columns (JSON-able)
    rows: Any  # positions in the frame, in time order
    times: Any  # pandas DatetimeIndex (naive; UTC when the column had a time zone) or int64 array
    y: Any  # float64 values
    X: Any = None  # (periods, covariates) float64 values of the covariates, or None


@dataclass
class SeriesData:
    label: str
    time_column: str
    time_type: str  # date, timestamp or integer
    timezone: str | None
    frequency: str | None  # pandas offset alias; None for an integer time column
    step: int | None  # integer time column: periods are `step` apart
    series_id: list[str]
    horizon: int
    series: list[Series]
    unused: list[str] = field(default_factory=list)
    covariates: list[str] = field(default_factory=list)


def _jsonable(v: Any) -> Any:
    import pandas as pd

    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def _time_values(df: Any, col: str) -> tuple[str, str | None, Any]:
    """(time type, time zone, values as naive datetime64 or int64) of the time column."""
    import pandas as pd

    s = df[col]
    nulls = int(s.isna().sum())
    if nulls:
        raise E.DataError(
            f"time_column {col!r} is NULL in {nulls} row(s)",
            hint=f"filter them out: WHERE {col} IS NOT NULL",
        )
    if pd.api.types.is_datetime64_any_dtype(s):
        tz = getattr(s.dt, "tz", None)
        if tz is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return "timestamp", str(tz) if tz is not None else None, pd.to_datetime(s)
    if pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return "integer", None, s.astype("int64")
    first = s.head(20).tolist()
    if first and all(isinstance(v, dt.date) for v in first):
        kind = "timestamp" if any(isinstance(v, dt.datetime) for v in first) else "date"
        return kind, None, pd.to_datetime(s)
    hint = f"convert it in the query, e.g. CAST({col} AS DATE)"
    if first and all(isinstance(v, str) for v in first):
        import re

        patterns = [
            (r"\d{4}-\d{2}", "%Y-%m"),
            (r"\d{4}/\d{2}", "%Y/%m"),
            (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"),
            (r"\d{2}/\d{2}/\d{4}", "%d/%m/%Y"),
        ]
        fmt = next((f for p, f in patterns if all(re.fullmatch(p, v) for v in first)), None)
        hint = (
            f"convert it in the query: strptime({col}, '{fmt}')::DATE AS {col}"
            if fmt
            else f"convert it in the query with strptime({col}, '<format>')::DATE"
        )
    raise E.ProgrammingError(
        f"time_column {col!r} must be a DATE, TIMESTAMP or integer column, not {s.dtype}",
        hint=hint,
    )


def _describe_key(series_id: list[str], key: list[Any]) -> str:
    if not series_id:
        return "the series"
    return "series " + ", ".join(f"{c} = {v!r}" for c, v in zip(series_id, key, strict=True))


def _show_time(value: Any) -> str:
    import pandas as pd

    stamp = pd.Timestamp(value)
    return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)


def _show_gap(gap: Any) -> str:
    import pandas as pd

    gap = pd.Timedelta(gap)
    if gap == pd.Timedelta(days=gap.days):
        return f"{gap.days} day" + ("" if gap.days == 1 else "s")
    return str(gap)


def _frequency_of(times: Any) -> str | None:
    import pandas as pd

    if len(times) < 3:
        return None
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")  # pandas 3 announces offsets instead of strings
        inferred = pd.infer_freq(pd.DatetimeIndex(times))
    return None if inferred is None else str(pd.tseries.frequencies.to_offset(inferred).freqstr)


def _infer_frequency(times: Any, where: str) -> str:
    """The pandas frequency of a series' times; a DataError naming the first irregularity."""
    from collections import Counter

    import pandas as pd

    found = _frequency_of(times)
    if found is not None:
        return found
    # the frequency of most short runs is the intended one; say which periods break it
    every = max(1, (len(times) - 2) // 100)
    runs = Counter(_frequency_of(times[i : i + 3]) for i in range(0, len(times) - 2, every))
    runs.pop(None, None)
    hint = (
        "forecasting needs one row per period: fill the missing periods (e.g. generate_series"
        " and a LEFT JOIN) or aggregate to a coarser period (date_trunc)"
    )
    if runs:
        usual = runs.most_common(1)[0][0]
        assert usual is not None
        expected = pd.date_range(times[0], times[-1], freq=usual)
        missing = expected.difference(times)
        extra = pd.DatetimeIndex(times).difference(expected)
        if len(missing):
            more = f" and {len(missing) - 1} other period(s)" if len(missing) > 1 else ""
            detail = f"there is no row for {_show_time(missing[0])}{more}"
        else:
            detail = f"{_show_time(extra[0])} is off that grid"
        raise E.DataError(
            f"{where} is not regular enough to infer a frequency: its periods are {usual!r},"
            f" but {detail}",
            hint=hint,
        )
    gaps = pd.Series(times[1:] - times[:-1])
    odd = int((gaps != gaps.mode().iloc[0]).to_numpy().argmax())
    raise E.DataError(
        f"{where} is not regular enough to infer a frequency: {_show_time(times[odd])} and"
        f" {_show_time(times[odd + 1])} are {_show_gap(gaps.iloc[odd])} apart, most periods"
        f" {_show_gap(gaps.mode().iloc[0])}",
        hint=hint,
    )


def _check_frequency(times: Any, frequency: str, where: str) -> str:
    """The frequency option, checked against a series' times."""
    import pandas as pd

    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            offset = pd.tseries.frequencies.to_offset(frequency)
    except ValueError as e:
        raise E.OptionError(
            f"frequency {frequency!r} is not a pandas frequency",
            hint="e.g. 'D', 'W-SUN', 'MS' (month start), 'ME' (month end), 'QS', 'h'",
        ) from e
    expected = pd.date_range(times[0], periods=len(times), freq=offset)
    if len(expected) and expected[0] != times[0]:
        raise E.DataError(
            f"{where} starts at {_show_time(times[0])}, which is not on frequency {frequency!r}"
        )
    if not expected.equals(pd.DatetimeIndex(times)):
        odd = int((expected != pd.DatetimeIndex(times)).argmax())
        raise E.DataError(
            f"{where} does not follow frequency {frequency!r}: period {odd + 1} is"
            f" {_show_time(times[odd])}, expected {_show_time(expected[odd])}",
            hint="forecasting needs one row per period: fill the missing periods",
        )
    return str(offset.freqstr)


def _integer_step(values: Any, where: str) -> int:
    import numpy as np

    gaps = np.diff(values)
    steps, counts = np.unique(gaps, return_counts=True)
    step = int(steps[np.argmax(counts)])
    if not (gaps == step).all():
        odd = int(np.argmax(gaps != step))
        raise E.DataError(
            f"{where} is not regular: most periods are {step} apart, but {values[odd]} and"
            f" {values[odd + 1]} are {gaps[odd]} apart",
            hint="forecasting needs one row per period: fill the missing periods",
        )
    return step


def prepare(df: Any, label: str, opts: dict[str, Any]) -> SeriesData:
    """Check the forecast options against the rows and cut them into regular series."""
    import numpy as np
    import pandas as pd

    time_column = opts["time_column"]
    series_id = list(opts["series_id"] or [])
    horizon = int(opts["horizon"])
    for what, col in [("time_column", time_column)] + [("series_id", c) for c in series_id]:
        if col not in df.columns:
            raise E.ProgrammingError(
                f"{what} {col!r} is not a column of the training data",
                hint=E.suggest(col, df.columns) or "columns: " + ", ".join(map(str, df.columns)),
            )
        if col == label:
            raise E.ProgrammingError(f"{what} {col!r} is the label")
    if time_column in series_id:
        raise E.ProgrammingError(f"time_column {time_column!r} is also in series_id")
    if len(set(series_id)) != len(series_id):
        raise E.ProgrammingError("series_id names a column twice")
    y = df[label]
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        raise E.ProgrammingError(
            f"a forecast label must be numeric; {label!r} is {y.dtype}",
            hint="forecast a number, e.g. a count or an amount",
        )
    covariates = list(opts.get("covariates") or [])
    for c in covariates:
        if c not in df.columns:
            raise E.ProgrammingError(
                f"covariate {c!r} is not a column of the training data",
                hint=E.suggest(c, df.columns) or "columns: " + ", ".join(map(str, df.columns)),
            )
        if c in (label, time_column, *series_id):
            raise E.ProgrammingError(f"covariate {c!r} is the label, the time or a series column")
        col = df[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise E.ProgrammingError(
                f"covariate {c!r} must be numeric or boolean, not {col.dtype}",
                hint=f"encode it in the query, e.g. CASE WHEN ... END AS {c}",
            )
        if col.isna().any():
            raise E.DataError(
                f"covariate {c!r} is NULL in {int(col.isna().sum())} row(s)",
                hint=f"fill it in the query, e.g. COALESCE({c}, 0)",
            )
    cov_values = df[covariates].astype("float64").to_numpy() if covariates else None
    time_type, timezone, times = _time_values(df, time_column)
    values = y.astype("float64").to_numpy()
    frame = pd.DataFrame({"__t": times.to_numpy(), "__pos": np.arange(len(df))})
    for i, c in enumerate(series_id):
        frame[f"__k{i}"] = df[c].to_numpy()
    keys = [f"__k{i}" for i in range(len(series_id))]
    groups = list(frame.groupby(keys, sort=True, dropna=False)) if keys else [((), frame)]
    series: list[Series] = []
    for key, part in groups:
        key_values = [_jsonable(v) for v in (key if isinstance(key, tuple) else (key,))]
        where = _describe_key(series_id, key_values)
        part = part.sort_values(["__t", "__pos"], kind="stable")
        t = part["__t"].to_numpy()
        dup = np.flatnonzero(t[1:] == t[:-1])
        if len(dup):
            raise E.DataError(
                f"{where} has several rows for {time_column} = "
                + (str(t[dup[0]]) if time_type == "integer" else _show_time(t[dup[0]])),
                hint="aggregate to one row per period (GROUP BY)"
                + (
                    ""
                    if series_id
                    else ", or name the columns identifying each series in series_id"
                ),
            )
        pos = part["__pos"].to_numpy()
        y = values[pos]
        missing = np.isnan(y)
        if missing.any():
            present = np.flatnonzero(~missing)
            if len(present) == 0:
                raise E.DataError(f"{label!r} is NULL in every row of {where}")
            inner = np.flatnonzero(missing[present[0] : present[-1] + 1]) + present[0]
            if len(inner):
                more = f" and {len(inner) - 1} other period(s)" if len(inner) > 1 else ""
                shown = str(t[inner[0]]) if time_type == "integer" else _show_time(t[inner[0]])
                raise E.DataError(
                    f"{label!r} is NULL for {time_column} = {shown}{more} in {where}: a"
                    " forecast needs a value for every period",
                    hint=f"fill it in the query, e.g. COALESCE({label}, <value>), or"
                    " interpolate it",
                )
            keep = slice(present[0], present[-1] + 1)  # leading and trailing NULLs: not yet
            pos, t, y = pos[keep], t[keep], y[keep]
        series.append(
            Series(key_values, pos, t, y, None if cov_values is None else cov_values[pos])
        )
    if horizon < 1:
        raise E.OptionError(f"option 'horizon' must be at least 1, not {horizon}")
    shortest = min(series, key=lambda s: len(s.y))
    need = 2 * horizon + MIN_LAGS + MIN_TRAIN_TARGETS
    if len(shortest.y) < need:
        raise E.OptionError(
            f"option 'horizon' = {horizon} is too large for the data: "
            f"{_describe_key(series_id, shortest.key)} has {len(shortest.y)} periods, and a forecast"
            f" of {horizon} needs at least {need} (2 x horizon for the validation and test windows,"
            f" {MIN_LAGS + MIN_TRAIN_TARGETS} to train)",
            hint="use a smaller horizon, a longer history"
            + (", or leave the short series out" if series_id else ""),
        )
    if time_type == "integer":
        steps = {
            _integer_step(s.times, _describe_key(series_id, s.key))
            for s in series
            if len(s.times) > 1
        }
        if len(steps) > 1:
            raise E.DataError(f"the series have different steps: {sorted(steps)}")
        frequency, step = None, steps.pop() if steps else 1
    else:
        for s in series:
            s.times = pd.DatetimeIndex(s.times)
        given = opts.get("frequency")
        if given:
            freqs = {
                _check_frequency(s.times, given, _describe_key(series_id, s.key)) for s in series
            }
        else:
            freqs = {_infer_frequency(s.times, _describe_key(series_id, s.key)) for s in series}
        if len(freqs) > 1:
            raise E.DataError(
                f"the series have different frequencies: {', '.join(sorted(freqs))}",
                hint="aggregate every series to the same period",
            )
        frequency, step = freqs.pop(), None
    exclude = set(opts.get("exclude") or [])
    used = {label, time_column, *series_id, *covariates}
    unused = [c for c in df.columns if c not in used and c not in exclude]
    return SeriesData(
        label,
        time_column,
        time_type,
        timezone,
        frequency,
        step,
        series_id,
        horizon,
        series,
        unused,
        covariates,
    )


def make_split(df: Any, label: str, opts: dict[str, Any]) -> Split:
    """Row positions of the train, validation and test windows (the last horizon periods each)."""
    return split_data(prepare(df, label, opts))


def split_data(data: SeriesData) -> Split:
    import numpy as np

    from lakesql.ml.automl import Split

    h = data.horizon
    parts: dict[str, list[Any]] = {"train": [], "valid": [], "test": []}
    for s in data.series:
        n = len(s.rows)
        parts["train"].append(s.rows[: n - 2 * h])
        parts["valid"].append(s.rows[n - 2 * h : n - h])
        parts["test"].append(s.rows[n - h :])
    cat = {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
    return Split("time", cat["train"], cat["valid"], cat["test"])
