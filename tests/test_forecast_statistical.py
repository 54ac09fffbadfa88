"""Forecast candidates from statsforecast, backtest selection, intervals, ML.EVALUATE, reproduce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import load_frame

import lakesql
from lakesql.ml import statistical as S

N, H = 84, 12  # monthly periods trained, held out


def monthly(n: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (100 + 1.5 * t) * (1 + 0.25 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 2, n)


def row(cur: Any) -> dict[str, Any]:
    return dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    y = monthly(N + H)
    months = pd.date_range("2015-01-01", periods=N + H, freq="MS").date
    full = pd.DataFrame({"month": months, "sales": y})
    wh = tmp_path_factory.mktemp("wh")
    con = lakesql.connect(str(wh))
    cur = con.cursor()
    load_frame(cur, "sales", full.iloc[:N])
    load_frame(cur, "actuals", full.iloc[N:])
    cur.execute(
        "TRAIN AUTOML m PREDICT sales FROM sales OPTIONS (task = 'forecast', time_column = 'month',"
        f" horizon = {H}, estimators = ['seasonal_naive', 'theta', 'ets', 'combination'],"
        " cv_windows = 2, time_budget = 20, n_jobs = 1)"
    )
    return {"wh": wh, "cur": cur, "summary": row(cur), "full": full, "y": y}


def version(wh: Path, model: str, v: int) -> tuple[Path, dict[str, Any]]:
    folder = wh / "_models" / model / f"v{v}"
    return folder, json.loads((folder / "version.json").read_text())


def test_fitted_state_is_stored_as_exact_json() -> None:
    import statsforecast.models as sm

    y = monthly(48, seed=1)
    for name, cls in (("ets", sm.AutoETS), ("theta", sm.AutoTheta), ("arima", sm.AutoARIMA)):
        stored = json.loads(json.dumps(S.fit_state(name, {"season_length": 12}, y)))
        ours = S.predict(stored, 6, [80, 95])
        theirs = cls(season_length=12).fit(y).predict(h=6, level=[80, 95])
        for k in theirs:
            assert np.array_equal(ours[k], np.asarray(theirs[k], dtype="float64")), (name, k)


def test_statistical_candidates_chosen_by_backtest(trained: dict[str, Any]) -> None:
    cur, wh, summary = trained["cur"], trained["wh"], trained["summary"]
    assert summary["metric"] == "mase"
    folder, doc = version(wh, "m", 1)
    names = [r[0] for r in cur.execute("SELECT estimator FROM lakesql.trials").fetchall()]
    assert {"seasonal_naive", "theta", "ets", "combination"} <= set(names)
    best = cur.execute(
        "SELECT estimator, valid_metric FROM lakesql.trials WHERE is_best"
    ).fetchall()
    losses = cur.execute("SELECT min(valid_metric) FROM lakesql.trials").fetchone()
    assert len(best) == 1 and best[0][1] == losses[0]
    assert summary["best_estimator"] == best[0][0] != "seasonal_naive"
    assert doc["forecast"]["cv_windows"] == 2 and doc["forecast"]["season"] == 12
    layout = json.loads((folder / "prep.json").read_text())["forecast"]
    assert layout["series"][0]["last_time"] == str(trained["full"]["month"].iloc[N - 1])
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in folder.iterdir())


def test_intervals_and_levels(trained: dict[str, Any]) -> None:
    cur, y = trained["cur"], trained["y"]
    out = cur.execute(
        "SELECT * FROM ML.FORECAST(MODEL m, level => [80, 95]) ORDER BY month"
    ).fetchdf()
    assert list(out.columns) == [
        "month",
        "sales_forecast",
        "sales_lower_80",
        "sales_upper_80",
        "sales_lower_95",
        "sales_upper_95",
    ]
    assert len(out) == H
    assert (out.sales_lower_95 <= out.sales_lower_80).all()
    assert (out.sales_lower_80 <= out.sales_forecast).all()
    assert (out.sales_forecast <= out.sales_upper_80).all()
    assert (out.sales_upper_80 <= out.sales_upper_95).all()
    inside = (y[N:] >= out.sales_lower_95) & (y[N:] <= out.sales_upper_95)
    assert inside.mean() >= 0.75
    one = cur.execute("SELECT * FROM ML.FORECAST(MODEL m, level => 90, horizon => 3)").fetchdf()
    assert list(one.columns)[-2:] == ["sales_lower_90", "sales_upper_90"] and len(one) == 3
    with pytest.raises(lakesql.OptionError, match="between 0 and 100"):
        cur.execute("SELECT * FROM ML.FORECAST(MODEL m, level => [80, 120])")


def test_forecast_model_saw_every_period(trained: dict[str, Any]) -> None:
    """The model behind ML.FORECAST was refitted on all periods, test window included."""
    folder, _ = version(trained["wh"], "m", 1)
    layout = json.loads((folder / "prep.json").read_text())["forecast"]
    assert layout["statistical"]
    for member in layout["members"]:
        state = S.decode(layout["statistical"][member][0]["state"])
        assert len(state["fitted"]) == N


def test_evaluate_forecast_against_actuals(trained: dict[str, Any]) -> None:
    cur = trained["cur"]
    got = dict(
        cur.execute(
            "SELECT metric, value FROM ML.EVALUATE(MODEL m, TABLE actuals) WHERE periods = 12"
        ).fetchall()
    )
    assert {"mase", "smape", "wape", "rmse", "mae", "mape"} <= set(got)
    pred = cur.execute("SELECT sales_forecast FROM ML.FORECAST(MODEL m) ORDER BY month").fetchall()
    truth = trained["y"][N:]
    assert got["mae"] == pytest.approx(np.mean(np.abs(truth - np.array(pred)[:, 0])))
    stored = cur.execute("SELECT data, metric FROM ML.EVALUATE(MODEL m)").fetchall()
    assert ("test window", "mase") in stored and ("backtest windows", "mase") in stored


def test_retrain_reproduce_is_exact(trained: dict[str, Any]) -> None:
    cur, wh = trained["cur"], trained["wh"]
    before = cur.execute("SELECT * FROM ML.FORECAST(MODEL m, level => [80])").fetchall()
    cur.execute("RETRAIN MODEL m REPRODUCE VERSION 1")
    _, v1 = version(wh, "m", 1)
    _, v2 = version(wh, "m", 2)
    assert v2["metrics"] == v1["metrics"]
    after = cur.execute("SELECT * FROM ML.FORECAST(MODEL m VERSION 2, level => [80])").fetchall()
    assert after == before


def test_ml_candidate_names_and_conformal_intervals(tmp_path: Path) -> None:
    """'enet' (the name results give the linear model) is accepted; an ML model's intervals are
    conformal, from its backtest errors."""
    y = monthly(60, seed=2)
    frame = pd.DataFrame({"t": np.arange(60), "y": y})
    con = lakesql.connect(str(tmp_path))
    cur = con.cursor()
    load_frame(cur, "s", frame)
    cur.execute(
        "TRAIN AUTOML lin PREDICT y FROM s OPTIONS (task = 'forecast', time_column = 't',"
        " horizon = 6, season = 12, estimators = ['enet'], metric = 'smape', max_trials = 2,"
        " time_budget = 3, n_jobs = 1)"
    )
    summary = row(cur)
    assert summary["best_estimator"] == "enet" and summary["metric"] == "smape"
    out = cur.execute("SELECT * FROM ML.FORECAST(MODEL lin, level => [50, 95])").fetchdf()
    w50 = out.y_upper_50 - out.y_lower_50
    w95 = out.y_upper_95 - out.y_lower_95
    assert (w95 > w50).all() and (w50 > 0).all()
    assert np.allclose(out.y_upper_95 - out.y_forecast, out.y_forecast - out.y_lower_95)
    con.close()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ("estimators = ['arma']", lakesql.OptionError, "arima"),
        ("metric = 'mse'", lakesql.OptionError, "mase"),
        ("cv_windows = 0", lakesql.OptionError, "cv_windows"),
        ("frequency = 'nonsense'", lakesql.OptionError, "not a pandas frequency"),
        ("frequency = 'W-SUN'", lakesql.DataError, "not on frequency"),
    ],
)
def test_bad_options(trained: dict[str, Any], options: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        trained["cur"].execute(
            "TRAIN AUTOML bad PREDICT sales FROM sales OPTIONS (task = 'forecast',"
            f" time_column = 'month', horizon = 3, {options})"
        )


def test_null_label_and_text_period_messages(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "month": pd.date_range("2000-01-01", periods=40, freq="MS").date,
            "ym": pd.date_range("2000-01-01", periods=40, freq="MS").strftime("%Y-%m"),
            "y": monthly(40),
        }
    )
    frame.loc[17, "y"] = None
    con = lakesql.connect(str(tmp_path))
    cur = con.cursor()
    load_frame(cur, "s", frame)
    with pytest.raises(lakesql.DataError, match=r"'y' is NULL for month = 2001-06-01"):
        cur.execute(
            "TRAIN AUTOML a PREDICT y FROM (SELECT month, y FROM s) OPTIONS (task = 'forecast',"
            " time_column = 'month', horizon = 3)"
        )
    with pytest.raises(lakesql.ProgrammingError, match="DATE") as info:
        cur.execute(
            "TRAIN AUTOML a PREDICT y FROM (SELECT ym, y FROM s WHERE y IS NOT NULL) OPTIONS"
            " (task = 'forecast', time_column = 'ym', horizon = 3)"
        )
    hint = info.value.hint or ""
    assert "strptime(ym, '%Y-%m')::DATE" in hint
    # the hint works in DuckDB
    got = cur.execute("SELECT strptime(ym, '%Y-%m')::DATE FROM s LIMIT 1").fetchone()
    assert str(got[0]) == "2000-01-01"
    con.close()


def test_covariates_step_regressor(tmp_path: Path) -> None:
    """A series whose level a law moves is forecast better with the law as a covariate; the
    future rows give its future values, and a missing period is named."""
    n, h = 96, 12
    rng = np.random.default_rng(5)
    t = np.arange(n + h)
    law = ((t >= 50) & (t < 100)).astype(float)
    y = 200 + 10 * np.sin(2 * np.pi * t / 12) + 60 * law + rng.normal(0, 2, n + h)
    months = pd.date_range("2010-01-01", periods=n + h, freq="MS").date
    frame = pd.DataFrame({"month": months, "law": law, "y": y})
    con = lakesql.connect(str(tmp_path))
    cur = con.cursor()
    load_frame(cur, "hist", frame.iloc[:n])
    load_frame(cur, "future", frame.iloc[n:])
    common = (
        "task = 'forecast', time_column = 'month', horizon = 12, estimators = ['arima', 'enet'],"
        " cv_windows = 2, max_trials = 3, time_budget = 8, n_jobs = 1"
    )
    cur.execute(
        f"TRAIN AUTOML with_law PREDICT y FROM hist OPTIONS ({common}, covariates = ['law'])"
    )
    with pytest.warns(UserWarning, match="'law' not used"):
        cur.execute(f"TRAIN AUTOML without PREDICT y FROM hist OPTIONS ({common})")
    mae = {}
    for m in ("with_law", "without"):
        mae[m] = cur.execute(
            f"SELECT value FROM ML.EVALUATE(MODEL {m}, TABLE future) WHERE metric = 'mae'"
        ).fetchone()[0]
    assert mae["with_law"] < 0.5 * mae["without"], mae
    out = cur.execute("SELECT * FROM ML.FORECAST(MODEL with_law, TABLE future)").fetchdf()
    assert len(out) == h
    with pytest.raises(lakesql.ProgrammingError, match="future values"):
        cur.execute("SELECT * FROM ML.FORECAST(MODEL with_law)")
    with pytest.raises(lakesql.DataError, match="no row for month = 2018-06-01"):
        cur.execute(
            "SELECT * FROM ML.FORECAST(MODEL with_law, (SELECT * FROM future"
            " WHERE month <> DATE '2018-06-01'))"
        )
    con.close()


@pytest.mark.slow
def test_benchmark_script_runs(tmp_path: Path) -> None:
    """benchmarks/forecast.py on two series, without the panel: its JSON has every method."""
    import subprocess
    import sys

    out = tmp_path / "forecast.json"
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [
            sys.executable,
            str(root / "benchmarks" / "forecast.py"),
            "--series",
            "ldeaths,Nile",
            "--no-panel",
            "--budget",
            "4",
            "--out",
            str(out),
        ],
        check=True,
        timeout=600,
    )
    result = json.loads(out.read_text())
    assert len(result["single"]["rows"]) == 2
    assert set(result["single"]["summary"]) == {
        "lakesql",
        "AutoETS",
        "AutoARIMA",
        "AutoTheta",
        "SeasonalNaive",
    }
