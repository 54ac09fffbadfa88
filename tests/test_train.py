"""TRAIN AUTOML and the model registry, with real FLAML runs on small budgets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import load_frame

import lakesql

BUDGET = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One warehouse with breast_cancer trained once (shared by the read-only tests)."""
    from sklearn.datasets import load_breast_cancer

    wh = tmp_path_factory.mktemp("wh")
    con = lakesql.connect(str(wh))
    cur = con.cursor()
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    load_frame(cur, "cancer", frame)
    cur.execute(
        f"TRAIN AUTOML cancer_model PREDICT diagnosis FROM cancer OPTIONS (time_budget = {BUDGET}, seed = 7)"
    )
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    return {"wh": wh, "con": con, "cur": cur, "summary": summary}


def test_train_registers_a_version_with_lineage(trained: dict[str, Any]) -> None:
    cur, wh, summary = trained["cur"], trained["wh"], trained["summary"]
    assert summary["model"] == "cancer_model" and summary["version"] == 1
    assert summary["task"] == "classification" and summary["metric"] == "roc_auc"
    assert summary["test_metric"] > 0.9  # a 3-second search on a busy machine may stop early
    assert cur.execute(
        "SELECT name, task, label, latest_version, aliases FROM lakesql.models"
    ).fetchall() == [("cancer_model", "classification", "diagnosis", 1, ["default=1", "latest=1"])]
    (trials, best) = cur.execute(
        "SELECT count(*), sum(is_best::INT) FROM lakesql.trials"
    ).fetchone()
    assert trials == summary["trials"] and trials >= 2 and best == 1
    doc = json.loads((wh / "_models" / "cancer_model" / "v1" / "version.json").read_text())
    assert doc["sources"] == [{"table": "main.cancer", "version": 0}]
    assert (
        doc["data_sql"]
        == 'SELECT * FROM (SELECT * FROM "main"."cancer" VERSION AS OF 0) ORDER BY ALL'
    )
    assert doc["split"]["rows"] == {"train": 365, "valid": 91, "test": 113}
    assert doc["options"]["seed"] == 7 and "flaml" in doc["library_versions"]
    assert doc["sql"].startswith("TRAIN AUTOML cancer_model")
    files = {p.name for p in (wh / "_models" / "cancer_model" / "v1").iterdir()}
    assert {"model.json", "prep.json", "version.json", "profile.ipynb", "trials"} <= files
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in files)


def test_saved_model_reproduces_the_recorded_test_metric(trained: dict[str, Any]) -> None:
    from sklearn.metrics import roc_auc_score

    from lakesql.ml import automl, backends
    from lakesql.ml.prep import Prep

    wh, cur = trained["wh"], trained["cur"]
    folder = wh / "_models" / "cancer_model" / "v1"
    doc = json.loads((folder / "version.json").read_text())
    prep = Prep.from_dict(json.loads((folder / "prep.json").read_text()))
    model = backends.load(folder)
    df = cur.execute(doc["data_sql"]).fetchdf()
    split = automl.make_split(df, "classification", "diagnosis", doc["options"])
    test = df.iloc[split.test]
    proba = model.predict_values(prep.transform(test))
    y = prep.encode_label(test["diagnosis"])
    assert roc_auc_score(y, proba[:, 1]) == pytest.approx(
        doc["metrics"]["test"]["roc_auc"], abs=1e-12
    )


def test_trial_notebook_prints_the_logged_metric(trained: dict[str, Any]) -> None:
    import nbformat
    from nbclient import NotebookClient

    wh, cur = trained["wh"], trained["cur"]
    row = cur.execute("SELECT notebook, valid_loss FROM lakesql.trials WHERE is_best").fetchone()
    notebook, logged = row
    nb = nbformat.read(wh / "_models" / "cancer_model" / "v1" / notebook, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    printed = float(text.split("validation loss:")[1].split()[0])
    assert printed == pytest.approx(logged, abs=1e-6)


def test_profile_notebook_has_statistics_and_plots(trained: dict[str, Any]) -> None:
    import nbformat

    nb = nbformat.read(
        trained["wh"] / "_models" / "cancer_model" / "v1" / "profile.ipynb", as_version=4
    )
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("mean_radius" in o["data"].get("text/plain", "") for o in outputs)
    assert sum("image/png" in o["data"] for o in outputs) >= 2


def test_retrain_reproduce_gives_the_same_test_metric(trained: dict[str, Any]) -> None:
    cur = trained["cur"]
    cur.execute("RETRAIN MODEL cancer_model REPRODUCE VERSION 1")
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    assert summary["version"] == 2
    assert summary["test_metric"] == pytest.approx(trained["summary"]["test_metric"], abs=1e-12)
    row = cur.execute(
        "SELECT reproduces, aliases FROM lakesql.model_versions WHERE version = 2"
    ).fetchone()
    assert row == (1, ["default", "latest"])


def test_aliases_describe_and_drop(trained: dict[str, Any]) -> None:
    cur = trained["cur"]
    cur.execute("ALTER MODEL cancer_model SET ALIAS champion VERSION 1")
    props = dict(cur.execute("DESCRIBE MODEL cancer_model VERSION 1").fetchall())
    assert props["aliases"] == "champion" and props["source main.cancer"] == "version 0"
    with pytest.raises(lakesql.ProgrammingError, match="latest"):
        cur.execute("ALTER MODEL cancer_model SET ALIAS latest VERSION 1")
    cur.execute("ALTER MODEL cancer_model UNSET ALIAS champion")
    with pytest.raises(lakesql.UnknownObjectError, match="no alias 'champion'"):
        cur.execute("ALTER MODEL cancer_model UNSET ALIAS champion")
    versions = [r[1] for r in cur.execute("SHOW VERSIONS IN MODEL cancer_model").fetchall()]
    assert versions[:2] == [1, 2]
    assert cur.execute("SHOW TRIALS IN MODEL cancer_model VERSION 2").fetchall()[0][3] is not None


@pytest.mark.parametrize(
    ("statement", "error", "message"),
    [
        (
            "TRAIN AUTOML m PREDICT diagnosis FROM cancer OPTIONS (bogus = 1)",
            lakesql.OptionError,
            "valid options: task",
        ),
        (
            "TRAIN AUTOML m PREDICT diagnosis FROM cancer OPTIONS (estimators = ['xgbost'])",
            lakesql.OptionError,
            "did you mean 'xgboost'",
        ),
        (
            "TRAIN AUTOML m PREDICT diagnosis FROM cancer OPTIONS (time_budget = 'soon')",
            lakesql.OptionError,
            "expected a number",
        ),
        (
            "TRAIN AUTOML m PREDICT diagnosis FROM cancer OPTIONS (metric = 'r2')",
            lakesql.OptionError,
            "does not fit a classification",
        ),
        (
            "TRAIN AUTOML m PREDICT diagnoses FROM cancer",
            lakesql.ProgrammingError,
            "did you mean 'diagnosis'",
        ),
        (
            "TRAIN AUTOML m PREDICT diagnosis FROM cancr",
            lakesql.UnknownObjectError,
            "does not exist",
        ),
        (
            "TRAIN AUTOML m PREDICT diagnosis FROM (SELECT * FROM cancer WHERE diagnosis = 'benign') OPTIONS (time_budget = 1)",
            lakesql.DataError,
            "single class",
        ),
        ("TRAIN AUTOML m PREDICT FROM cancer", lakesql.ParseError, "PREDICT"),
    ],
)
def test_bad_train_statements_register_nothing(
    trained: dict[str, Any], statement: str, error: type, message: str
) -> None:
    cur, wh = trained["cur"], trained["wh"]
    with pytest.raises(error, match=message):
        cur.execute(statement)
    assert cur.execute("SELECT count(*) FROM lakesql.models WHERE name = 'm'").fetchone() == (0,)
    assert not (wh / "_models" / "m").exists() or not any((wh / "_models" / "m").glob("v*"))


def test_max_trials_one_trains_one_scored_trial(trained: dict[str, Any]) -> None:
    """FLAML evaluates nothing with one iteration; lakesql scores that one configuration."""
    from sklearn.metrics import roc_auc_score

    from lakesql.ml import automl, backends
    from lakesql.ml.prep import Prep

    cur, wh = trained["cur"], trained["wh"]
    cur.execute(
        "TRAIN AUTOML one_trial PREDICT diagnosis FROM cancer "
        "OPTIONS (max_trials = 1, estimators = ['lgbm'], time_budget = 30, seed = 3)"
    )
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    assert summary["trials"] == 1
    ((learner, valid_metric, is_best),) = cur.execute(
        "SELECT estimator, valid_metric, is_best FROM lakesql.trials WHERE model = 'one_trial'"
    ).fetchall()
    assert learner == "lgbm" and is_best and 0.9 < valid_metric <= 1.0
    folder = wh / "_models" / "one_trial" / "v1"
    prep = Prep.from_dict(json.loads((folder / "prep.json").read_text()))
    doc = json.loads((folder / "version.json").read_text())
    frame = cur.execute(doc["data_sql"]).fetchdf()
    split = automl.make_split(frame, "classification", "diagnosis", doc["options"])
    valid = frame.iloc[split.valid]
    probs = backends.load(folder).predict_values(prep.transform(valid))
    assert roc_auc_score(prep.encode_label(valid["diagnosis"]), probs[:, 1]) == pytest.approx(
        valid_metric, abs=1e-12
    )


def test_vacuum_models_removes_only_what_dead_trains_left(trained: dict[str, Any]) -> None:
    import os
    import shutil

    from lakesql.ml import registry

    cur, wh = trained["cur"], trained["wh"]
    con = trained["con"]
    folder = wh / "_models" / "cancer_model"
    before = cur.execute(
        "SELECT model, version FROM lakesql.model_versions ORDER BY ALL"
    ).fetchall()
    dead = folder / ".tmp-killed"
    dead.mkdir()
    (dead / "model.txt").write_text("half a model")
    shutil.copytree(folder / "v1", folder / "v99")  # killed between rename and registration
    docs = wh / "_lakesql" / "model_versions"
    shutil.copy(docs / "cancer_model__v1.json", docs / "cancer_model__v99.json")
    (wh / "_models" / "never_registered" / ".tmp-x").mkdir(parents=True)
    with registry.staging(con.session.warehouse, "cancer_model") as live:  # a TRAIN still running
        listing = cur.execute("VACUUM MODELS DRY RUN").fetchall()
        assert {(m, p, a) for m, p, _, a in listing} == {
            ("cancer_model", "_models/cancer_model/.tmp-killed", "would remove"),
            ("cancer_model", "_models/cancer_model/v99", "would remove"),
            (
                "cancer_model",
                "_lakesql/model_versions/cancer_model__v99.json",
                "would remove",
            ),
            ("never_registered", "_models/never_registered/.tmp-x", "would remove"),
            ("never_registered", "_models/never_registered", "would remove"),
        }
        assert dead.exists() and (folder / "v99").exists()  # DRY RUN changes nothing
        removed = cur.execute("VACUUM MODEL cancer_model").fetchall()
        assert [r[3] for r in removed] == ["removed"] * 3 and live.exists()
        assert not dead.exists() and not (folder / "v99").exists()
        assert not (docs / "cancer_model__v99.json").exists()
    assert [r[1] for r in cur.execute("VACUUM MODELS").fetchall()] == [
        "_models/never_registered/.tmp-x",
        "_models/never_registered",
    ]
    assert cur.execute("VACUUM MODELS").fetchall() == []
    assert (
        cur.execute("SELECT model, version FROM lakesql.model_versions ORDER BY ALL").fetchall()
        == before
    )
    assert sorted(os.listdir(folder)) == sorted(f"v{v}" for m, v in before if m == "cancer_model")
    with pytest.raises(lakesql.UnknownObjectError, match="does not exist and left no files"):
        cur.execute("VACUUM MODEL nothing_here")


def test_regression_with_features_and_null_labels(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.datasets import load_diabetes

    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame.insert(0, "patient_id", range(len(frame)))
    frame["visit"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["patient_id"], unit="D")
    load_frame(cur, "patients", frame.drop(columns=["bmi", "bp"]))
    load_frame(cur, "vitals", frame[["patient_id", "visit", "bmi", "bp"]])
    cur.execute(
        "CREATE FEATURE TABLE vitals_ft PRIMARY KEY (patient_id) TIMESTAMP KEY (visit) AS SELECT * FROM vitals"
    )
    cur.execute("UPDATE patients SET target = NULL WHERE patient_id < 5")
    with pytest.warns(UserWarning, match="NULL label"):
        cur.execute(
            f"TRAIN AUTOML diabetes PREDICT target FROM (SELECT patient_id, visit, age, sex, s1, s2, s3, s4, s5, s6, target FROM patients) "
            f"WITH FEATURES vitals_ft OPTIONS (time_budget = {BUDGET}, estimators = ['lgbm', 'rf', 'lr'])"
        )
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    assert (
        summary["task"] == "regression"
        and summary["metric"] == "r2"
        and summary["test_metric"] > 0.2
    )
    props = dict(cur.execute("DESCRIBE MODEL diabetes").fetchall())
    assert props["feature table main.vitals_ft"] == "version 0: bmi, bp"
    assert props["source main.patients"] == "version 1"
    assert "bmi" in props["features"] and "patient_id (excluded)" in props["dropped"]
    assert cur.execute("SELECT models FROM lakesql.feature_tables").fetchone() == (["diabetes"],)
    with pytest.raises(lakesql.CatalogError, match="used by model"):
        cur.execute("DROP FEATURE TABLE vitals_ft")
    con.close()


def test_interrupted_train_registers_nothing(tmp_path: Path) -> None:
    code = f"""
import lakesql, pyarrow as pa
from sklearn.datasets import load_breast_cancer
con = lakesql.connect({str(tmp_path / "wh")!r})
cur = con.cursor()
frame = load_breast_cancer(as_frame=True).frame
frame.columns = [c.replace(' ', '_') for c in frame.columns]
cur._duck.register('src', pa.Table.from_pandas(frame))
cur.execute('CREATE TABLE cancer AS SELECT * FROM src')
print('training', flush=True)
cur.execute('TRAIN AUTOML m PREDICT target FROM cancer OPTIONS (time_budget = 60)')
print('finished', flush=True)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "training"
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "finished" not in out
    assert "interrupted: nothing was registered" in err
    con = lakesql.connect(str(tmp_path / "wh"))
    assert con.cursor().execute("SELECT count(*) FROM lakesql.models").fetchone() == (0,)
    models = tmp_path / "wh" / "_models" / "m"
    assert not models.exists() or list(models.iterdir()) == []
    con.close()
