"""TRAIN AUTOML ... task = 'forecast' and lakesql.ml.forecast.forecast, with real FLAML runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers import load_frame

import lakesql
from lakesql.ml import forecast as F

BUDGET = 3
DAYS, H = 200, 7
STORES = {"north": (100.0, 0.5, 10.0), "south": (40.0, -0.05, 4.0)}  # level, trend, weekly swing


def series(days: int, level: float, trend: float, swing: float, rng: Any) -> Any:
    t = np.arange(days)
    return level + trend * t + swing * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1.5, days)


def mape(truth: Any, pred: Any) -> float:
    truth, pred = np.asarray(truth, dtype=float), np.asarray(pred, dtype=float)
    return float(np.mean(np.abs(truth - pred) / np.abs(truth)))


def row(cur: Any) -> dict[str, Any]:
    return dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two daily store series (trend + weekly season + noise); the last H days are kept back."""
    rng = np.random.default_rng(3)
    frames = []
    for store, params in STORES.items():
        frames.append(
            pd.DataFrame(
                {
                    "store": store,
                    "day": pd.date_range("2024-01-01", periods=DAYS + H, freq="D").date,
                    "units": series(DAYS + H, *params, rng),
                    "promo": rng.integers(0, 2, DAYS + H),
                }
            )
        )
    full = pd.concat(frames, ignore_index=True)
    wh = tmp_path_factory.mktemp("wh")
    con = lakesql.connect(str(wh))
    cur = con.cursor()
    load_frame(cur, "sales", full.groupby("store").head(DAYS))
    with pytest.warns(UserWarning, match="'promo' not used"):
        cur.execute(
            "TRAIN AUTOML demand PREDICT units FROM sales OPTIONS (task = 'forecast', "
            f"time_column = 'day', horizon = {H}, series_id = ['store'], time_budget = {BUDGET}, seed = 1,"
            " n_jobs = 1)"
        )
    return {"wh": wh, "cur": cur, "summary": row(cur), "full": full}


def version(wh: Path, model: str, v: int) -> tuple[Path, dict[str, Any]]:
    folder = wh / "_models" / model / f"v{v}"
    return folder, json.loads((folder / "version.json").read_text())


def test_train_registers_a_forecast_version(trained: dict[str, Any]) -> None:
    cur, wh, summary = trained["cur"], trained["wh"], trained["summary"]
    assert summary["task"] == "forecast" and summary["metric"] == "mase"
    assert summary["version"] == 1 and summary["test_rows"] == 2 * H
    folder, doc = version(wh, "demand", 1)
    assert doc["split"]["rows"] == {"train": 2 * (DAYS - 2 * H), "valid": 2 * H, "test": 2 * H}
    assert doc["options"]["time_column"] == "day" and doc["options"]["series_id"] == ["store"]
    assert doc["prep"]["inputs"] == ["units", "day", "store"]
    assert {"name": "promo", "reason": "not used by a forecast (no future values)"} in doc["prep"][
        "dropped"
    ]
    layout = json.loads((folder / "prep.json").read_text())["forecast"]
    assert layout["frequency"] == "D" and layout["time_type"] == "date"
    assert [s["key"] for s in layout["series"]] == [["north"], ["south"]]
    assert {s["last_time"] for s in layout["series"]} == {"2024-07-18"}
    assert all(len(s["history"]) == layout["lags"] for s in layout["series"])
    files = {p.name for p in folder.iterdir()}
    assert {"model.json", "prep.json", "version.json", "profile.ipynb"} <= files
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in files)
    learners = {r[0] for r in cur.execute("SELECT estimator FROM lakesql.trials").fetchall()}
    assert {"naive", "seasonal_naive", "histgb_default"} <= learners and len(learners) >= 4
    assert cur.execute("SELECT count(*) FROM lakesql.trials WHERE is_best").fetchone() == (1,)


def test_test_metric_beats_the_last_value_forecast(trained: dict[str, Any]) -> None:
    from lakesql.ml import automl

    cur, summary = trained["cur"], trained["summary"]
    _, doc = version(trained["wh"], "demand", 1)
    df = cur.execute(doc["data_sql"]).fetchdf()
    split = automl.make_split(df, "forecast", "units", doc["options"])
    test = df.iloc[split.test]
    assert sorted(test.groupby("store").size().tolist()) == [H, H]
    assert (test.groupby("store")["day"].min() > df.iloc[split.valid]["day"].max()).all()
    truth, naive = [], []
    for _, part in df.sort_values("day").groupby("store"):
        truth.extend(part["units"].iloc[-H:])
        naive.extend([part["units"].iloc[-H - 1]] * H)
    naive_mape = mape(truth, naive)
    test_mape = doc["metrics"]["test"]["mape"]
    assert test_mape < 0.8 * naive_mape, (test_mape, naive_mape)
    assert test_mape < 0.05
    assert summary["test_metric"] == doc["metrics"]["test"]["mase"] < 1.5


def test_trial_scores_rebuild_a_logged_trial(trained: dict[str, Any]) -> None:
    cur = trained["cur"]
    _, doc = version(trained["wh"], "demand", 1)
    df = cur.execute(doc["data_sql"]).fetchdf()
    for learner, config, logged in cur.execute(
        "SELECT estimator, config, valid_metric FROM lakesql.trials WHERE version = 1"
        " AND (is_best OR estimator = 'seasonal_naive')"
    ).fetchall():
        scores = F.trial_scores(
            df, label="units", opts=doc["options"], learner=learner, config=json.loads(config)
        )
        assert scores[doc["metric"]] == pytest.approx(logged, abs=1e-12)


def test_forecast_returns_future_rows(trained: dict[str, Any]) -> None:
    folder, doc = version(trained["wh"], "demand", 1)
    out = F.forecast(folder, doc, None)
    assert out.column_names == ["store", "day", "units_forecast"]
    assert out.schema.field("day").type == pa.date32()
    assert out.schema.field("units_forecast").type == pa.float64()
    frame = out.to_pandas()
    assert frame.groupby("store").size().to_dict() == {"north": H, "south": H}
    for _, part in frame.groupby("store"):
        days = pd.to_datetime(part["day"])
        assert days.iloc[0] == pd.Timestamp("2024-07-19")
        assert (days.diff().dropna() == pd.Timedelta(days=1)).all()
    # the held-back days: better than repeating each store's last value
    future = trained["full"].groupby("store").tail(H)
    last = trained["full"].groupby("store").nth(DAYS - 1)
    assert mape(future["units"], frame["units_forecast"]) < 0.75 * mape(
        future["units"], np.repeat(last["units"].to_numpy(), H)
    )
    longer = F.forecast(folder, doc, 10).to_pandas()
    assert longer.groupby("store").size().to_dict() == {"north": 10, "south": 10}
    np.testing.assert_allclose(
        longer.groupby("store").head(H)["units_forecast"].to_numpy(),
        frame["units_forecast"].to_numpy(),
    )
    with pytest.raises(lakesql.OptionError, match="at least 1"):
        F.forecast(folder, doc, 0)


def test_retrain_reproduce_gives_the_same_test_metric(trained: dict[str, Any]) -> None:
    cur, wh = trained["cur"], trained["wh"]
    with pytest.warns(UserWarning, match="'promo' not used"):
        cur.execute("RETRAIN MODEL demand REPRODUCE VERSION 1")
    summary = row(cur)
    assert summary["version"] == 2 and summary["task"] == "forecast"
    assert summary["test_metric"] == pytest.approx(trained["summary"]["test_metric"], abs=1e-12)
    one = F.forecast(*version(wh, "demand", 1), None)
    two = F.forecast(*version(wh, "demand", 2), None)
    np.testing.assert_allclose(
        two.column("units_forecast").to_numpy(), one.column("units_forecast").to_numpy()
    )
    props = dict(cur.execute("DESCRIBE MODEL demand VERSION 2").fetchall())
    assert props["reproduces"] == "version 1" and props["features"] == "units, day, store"


def test_single_hourly_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    hours = 24 * 12
    t = np.arange(hours)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2024-03-01", periods=hours, freq="h"),
            "load": 50 + 0.02 * t + 8 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, hours),
        }
    )
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    load_frame(cur, "meter", frame)
    cur.execute(
        "TRAIN AUTOML grid PREDICT load FROM meter OPTIONS (task = 'forecast', time_column = 'ts',"
        " horizon = 6, estimators = ['lgbm', 'naive', 'seasonal_naive'], time_budget = 2, metric = 'rmse',"
        " n_jobs = 1)"
    )
    summary = row(cur)
    assert summary["metric"] == "rmse" and summary["test_rows"] == 6
    folder, doc = version(tmp_path / "wh", "grid", 1)
    layout = json.loads((folder / "prep.json").read_text())["forecast"]
    assert layout["frequency"] == "h" and layout["season"] == 24 and layout["series_id"] == []
    out = F.forecast(folder, doc, 3)
    assert out.column_names == ["ts", "load_forecast"]
    assert out.schema.field("ts").type == pa.timestamp("us")
    assert out.column("ts").to_pylist() == list(
        pd.date_range("2024-03-13", periods=3, freq="h").to_pydatetime()
    )
    con.close()


def test_integer_time_and_naive_baselines(tmp_path: Path) -> None:
    """Without FLAML learners only the baselines compete; an integer time column steps by 5."""
    from lakesql.ml import automl, backends

    t = np.arange(60)
    frame = pd.DataFrame({"period": 100 + 5 * t, "y": 10 + (t % 4) * 3.0})
    opts = lakesql.ml.options.validate(
        {
            "task": "forecast",
            "time_column": "period",
            "horizon": 4,
            "estimators": ["naive", "seasonal_naive"],
        }
    )
    outcome = automl.fit(
        frame, label="y", opts=opts, workdir=tmp_path, progress=False, time_budget=1
    )
    assert [t["learner"] for t in outcome.trials] == ["naive"]  # no season on integer times
    assert outcome.forecast is not None and outcome.forecast["step"] == 5
    assert outcome.forecast["last_time"] == [{"key": [], "time": 395}]
    backends.save(outcome.estimator, tmp_path, task="forecast", n_classes=0)
    (tmp_path / "prep.json").write_text(json.dumps(outcome.prep.to_dict()))
    out = F.forecast(tmp_path, {"task": "forecast"}, 3)
    assert out.column("period").to_pylist() == [400, 405, 410]
    assert out.column("y_forecast").to_pylist() == [frame["y"].iloc[-1]] * 3


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ("task = 'forecast', horizon = 7", lakesql.OptionError, "needs time_column and horizon"),
        ("task = 'forecast', time_column = 'day', horizon = 0", lakesql.OptionError, "at least 1"),
        (
            "task = 'forecast', time_column = 'day', horizon = 100, series_id = ['store']",
            lakesql.OptionError,
            "too large",
        ),
        ("task = 'forecast', time_column = 'dya', horizon = 7", lakesql.ProgrammingError, "'day'"),
        (
            "task = 'forecast', time_column = 'store', horizon = 7",
            lakesql.ProgrammingError,
            "DATE, TIMESTAMP or integer",
        ),
        (
            "task = 'forecast', time_column = 'day', horizon = 7, series_id = ['stor']",
            lakesql.ProgrammingError,
            "did you mean 'store'",
        ),
        (
            "task = 'forecast', time_column = 'day', horizon = 7",
            lakesql.DataError,
            "several rows for day = 2024-01-01",
        ),
        (
            "task = 'forecast', time_column = 'day', horizon = 7, metric = 'roc_auc'",
            lakesql.OptionError,
            "does not fit a forecast",
        ),
        (
            "task = 'forecast', time_column = 'day', horizon = 7, split = 'random'",
            lakesql.OptionError,
            "splits by time",
        ),
        (
            "task = 'forecast', time_column = 'day', horizon = 7, test_fraction = 0.1",
            lakesql.OptionError,
            "does not apply",
        ),
        ("time_column = 'day', horizon = 7", lakesql.OptionError, "add task = 'forecast'"),
        (
            "task = 'regression', estimators = ['naive']",
            lakesql.OptionError,
            "does not support regression",
        ),
    ],
)
def test_bad_forecast_options(
    trained: dict[str, Any], options: str, error: type, message: str
) -> None:
    cur, wh = trained["cur"], trained["wh"]
    with pytest.raises(error, match=message):
        cur.execute(f"TRAIN AUTOML m PREDICT units FROM sales OPTIONS ({options})")
    assert cur.execute("SELECT count(*) FROM lakesql.models WHERE name = 'm'").fetchone() == (0,)
    assert not (wh / "_models" / "m").exists() or not any((wh / "_models" / "m").glob("v*"))


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        (
            "(SELECT * FROM sales WHERE day <> DATE '2024-03-01')",
            lakesql.DataError,
            "store = 'north' is not regular enough.*periods are 'D', but there is no row for 2024-03-01",
        ),
        ("(SELECT store, day, store AS units FROM sales)", lakesql.ProgrammingError, "numeric"),
    ],
)
def test_bad_forecast_data(trained: dict[str, Any], query: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        trained["cur"].execute(
            f"TRAIN AUTOML m PREDICT units FROM {query} OPTIONS (task = 'forecast',"
            " time_column = 'day', horizon = 7, series_id = ['store'])"
        )


def test_ml_forecast_in_sql_and_trial_notebook(trained: dict[str, Any]) -> None:
    import nbformat
    from nbclient import NotebookClient

    cur, wh = trained["cur"], trained["wh"]
    folder, doc = version(wh, "demand", 1)
    direct = F.forecast(folder, doc, None).to_pylist()
    rows = cur.execute(
        "SELECT store, day, units_forecast FROM ML.FORECAST(MODEL demand) ORDER BY store, day"
    ).fetchall()
    assert [tuple(r.values()) for r in sorted(direct, key=lambda r: (r["store"], r["day"]))] == rows
    assert cur.execute(
        "SELECT count(*) FROM ML.FORECAST(MODEL demand, horizon => 3)"
    ).fetchone() == (6,)
    assert doc["forecast"] is not None
    with pytest.raises(lakesql.ProgrammingError, match=r"ML\.FORECAST"):
        cur.execute("SELECT * FROM ML.PREDICT(MODEL demand, TABLE sales)")
    with pytest.raises(lakesql.ProgrammingError, match=r"ML\.FORECAST"):
        cur.execute("PREDICT demand FROM sales")
    notebook, logged = cur.execute(
        "SELECT notebook, valid_loss FROM lakesql.trials WHERE model = 'demand' AND version = 1 AND is_best"
    ).fetchone()
    nb = nbformat.read(folder / notebook, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert float(text.split("validation loss:")[1].split()[0]) == pytest.approx(logged, abs=1e-6)
