"""PREDICT, ML.PREDICT and the ML.* analysis functions against the libraries' own answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from helpers import load_frame

import lakesql

FAMILIES = ["xgboost", "lgbm", "rf", "extra_tree", "histgb", "lr"]


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer, load_diabetes

    path = tmp_path_factory.mktemp("wh")
    con = lakesql.connect(str(path))
    cur = con.cursor()
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [*list(range(8)), 30]]
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.insert(0, "id", range(len(frame)))
    load_frame(cur, "cancer", frame)
    diabetes = load_diabetes(as_frame=True).frame
    diabetes.insert(0, "id", range(len(diabetes)))
    load_frame(cur, "diabetes", diabetes)
    for fam in FAMILIES:
        cur.execute(
            f"TRAIN AUTOML c_{fam} PREDICT target FROM cancer OPTIONS (time_budget = 2, max_trials = 2, estimators = ['{fam}'], exclude = ['id'])"
        )
    cur.execute(
        "TRAIN AUTOML reg PREDICT target FROM diabetes OPTIONS (time_budget = 2, max_trials = 2, estimators = ['lgbm'], exclude = ['id'])"
    )
    return {"path": path, "con": con, "cur": cur, "frame": frame, "diabetes": diabetes}


def native_probabilities(folder: Path, X: Any) -> Any:
    meta = json.loads((folder / "model.json").read_text())
    if meta["family"] == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster(model_file=str(folder / meta["file"]))
        p1 = booster.predict(xgb.DMatrix(X))
    elif meta["family"] == "lightgbm":
        import lightgbm as lgb

        p1 = lgb.Booster(model_file=str(folder / meta["file"])).predict(X.to_numpy())
    else:
        import skops.io as sio

        path = folder / meta["file"]
        model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        return model.predict_proba(X)
    return np.column_stack([1 - p1, p1])


@pytest.mark.parametrize("family", FAMILIES)
def test_ml_predict_equals_the_libraries_own_predictions(wh: dict[str, Any], family: str) -> None:
    from lakesql.ml.prep import Prep

    cur = wh["cur"]
    folder = wh["path"] / "_models" / f"c_{family}" / "v1"
    learner = json.loads((folder / "version.json").read_text())["best_trial"]["learner"]
    assert learner.startswith({"lr": "lrl1", "histgb": "histgb"}.get(family, family))
    got = cur.execute(
        f"SELECT id, predicted_target, [p.prob FOR p IN predicted_target_probs] AS probs, _model, _model_version "
        f"FROM ML.PREDICT(MODEL c_{family}, TABLE cancer) ORDER BY id"
    ).fetchall()
    prep = Prep.from_dict(json.loads((folder / "prep.json").read_text()))
    expected = native_probabilities(folder, prep.transform(wh["frame"]))
    probs = np.array([r[2] for r in got])
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)
    assert [r[1] for r in got] == [prep.classes[i] for i in np.argmax(expected, axis=1)]
    assert {(r[3], r[4]) for r in got} == {(f"c_{family}", 1)}


@pytest.mark.parametrize("family", FAMILIES)
def test_attributions_sum_to_the_raw_prediction(wh: dict[str, Any], family: str) -> None:
    from lakesql.ml import explain, predict

    cur = wh["cur"]
    rows = cur.execute(
        f"SELECT id, baseline, raw_prediction, top_feature_attributions FROM ML.EXPLAIN_PREDICT("
        f"MODEL c_{family}, (SELECT * FROM cancer WHERE id < 40), top_k_features => 100) ORDER BY id"
    ).fetchall()
    mv = predict.load(cur.connection.session.warehouse, f"c_{family}")
    X = mv.prep.transform(wh["frame"].iloc[:40])
    own = explain.raw_prediction(mv.model, X, "classification", 2, np.ones(40, dtype=int))
    for (_, base, raw, attributions), expected in zip(rows, own, strict=True):
        assert base + sum(a["attribution"] for a in attributions) == pytest.approx(raw, abs=1e-5)
        assert raw == pytest.approx(float(expected), abs=1e-5)


def test_evaluate_equals_sklearn_metrics(wh: dict[str, Any]) -> None:
    from sklearn import metrics as m

    cur = wh["cur"]
    got = dict(
        (r[0], r[1:])
        for r in cur.execute(
            "SELECT metric, value, ci_low, ci_high FROM ML.EVALUATE(MODEL c_lgbm, (SELECT * FROM cancer WHERE id % 3 = 0))"
        ).fetchall()
    )
    scored = cur.execute(
        "SELECT target, predicted_target, predicted_target_probs[2].prob FROM ML.PREDICT(MODEL c_lgbm, (SELECT * FROM cancer WHERE id % 3 = 0))"
    ).fetchall()
    y = [r[0] for r in scored]
    pred = [r[1] for r in scored]
    p1 = [r[2] for r in scored]
    assert got["accuracy"][0] == pytest.approx(m.accuracy_score(y, pred), abs=1e-12)
    assert got["f1"][0] == pytest.approx(m.f1_score(y, pred), abs=1e-12)
    assert got["roc_auc"][0] == pytest.approx(m.roc_auc_score(y, p1), abs=1e-12)
    assert got["log_loss"][0] == pytest.approx(
        m.log_loss(y, np.column_stack([1 - np.array(p1), p1])), abs=1e-9
    )
    for value, lo, hi in got.values():
        assert lo <= value <= hi
    regression = dict(cur.execute("SELECT metric, value FROM ML.EVALUATE(MODEL reg)").fetchall())
    recorded = json.loads((wh["path"] / "_models" / "reg" / "v1" / "version.json").read_text())[
        "metrics"
    ]["test"]
    for k in ("mae", "mse", "rmse", "r2", "mape", "explained_variance"):
        assert regression[k] == pytest.approx(recorded[k], abs=1e-9)


def test_confusion_matrix_roc_importance_trials(wh: dict[str, Any]) -> None:
    cur = wh["cur"]
    cm = cur.execute(
        "SELECT actual, predicted, count FROM ML.CONFUSION_MATRIX(MODEL c_xgboost, TABLE cancer)"
    ).fetchall()
    assert sum(r[2] for r in cm) == len(wh["frame"]) and len(cm) == 4
    correct = cur.execute(
        "SELECT count(*) FROM ML.PREDICT(MODEL c_xgboost, TABLE cancer) WHERE predicted_target = target"
    ).fetchone()[0]
    assert sum(r[2] for r in cm if r[0] == r[1]) == correct
    roc = cur.execute(
        "SELECT min(false_positive_rate), max(true_positive_rate) FROM ML.ROC_CURVE(MODEL c_xgboost)"
    ).fetchone()
    assert roc == (0.0, 1.0)
    imp = cur.execute("SELECT feature, share FROM ML.FEATURE_IMPORTANCE(MODEL c_rf)").fetchall()
    assert {r[0] for r in imp} == {c for c in wh["frame"].columns if c not in ("id", "target")}
    assert sum(r[1] for r in imp) == pytest.approx(1.0)
    assert cur.execute("SELECT count(*) FROM ML.TRIAL_INFO(MODEL c_rf)").fetchone()[0] >= 1
    with pytest.raises(lakesql.ProgrammingError, match="classification"):
        cur.execute("SELECT * FROM ML.ROC_CURVE(MODEL reg)")


def test_scalar_predict_matches_ml_predict(wh: dict[str, Any]) -> None:
    cur = wh["cur"]
    cols = ", ".join(c for c in wh["frame"].columns if c not in ("id", "target"))
    scalar = cur.execute(
        f"SELECT id, PREDICT(c_lgbm, {cols}), PREDICT_PROBA(c_lgbm, {cols}) FROM cancer ORDER BY id"
    ).fetchall()
    table = cur.execute(
        "SELECT id, predicted_target::VARCHAR, predicted_target_probs[2].prob FROM ML.PREDICT(MODEL c_lgbm, TABLE cancer) ORDER BY id"
    ).fetchall()
    assert [r[:2] for r in scalar] == [r[:2] for r in table]
    np.testing.assert_allclose([r[2] for r in scalar], [r[2] for r in table], atol=1e-12)


def test_predict_into_merge_twice(wh: dict[str, Any]) -> None:
    from deltalake import DeltaTable

    cur = wh["cur"]
    cur.execute("PREDICT c_xgboost FROM cancer INTO scores MODE MERGE ON (id)")
    first = cur.execute(
        "SELECT * EXCLUDE (predicted_target_probs) FROM scores ORDER BY id"
    ).fetchall()
    path = str(wh["path"] / "main" / "scores")
    v1 = DeltaTable(path).version()
    cur.execute("PREDICT c_xgboost FROM cancer INTO scores MODE MERGE ON (id)")
    assert DeltaTable(path).version() == v1 + 1
    assert (
        cur.execute("SELECT * EXCLUDE (predicted_target_probs) FROM scores ORDER BY id").fetchall()
        == first
    )
    assert len(first) == len(wh["frame"])
    history = cur.execute("DESCRIBE HISTORY scores").fetchall()
    assert history[0][5] == "PREDICT c_xgboost FROM cancer INTO scores MODE MERGE ON (id)"


def test_bad_inputs(wh: dict[str, Any]) -> None:
    cur = wh["cur"]
    with pytest.raises(lakesql.ProgrammingError, match="'mean_radius'"):
        cur.execute("SELECT * FROM ML.PREDICT(MODEL c_lgbm, (SELECT id, mean_texture FROM cancer))")
    with pytest.raises(lakesql.UnknownObjectError, match="model 'nope'"):
        cur.execute("SELECT * FROM ML.PREDICT(MODEL nope, TABLE cancer)")
    with pytest.raises(lakesql.UnknownObjectError, match="no version 9"):
        cur.execute("SELECT * FROM ML.PREDICT(MODEL c_lgbm VERSION 9, TABLE cancer)")
    with pytest.raises(lakesql.DataError):
        cur.execute(
            "SELECT * FROM ML.PREDICT(MODEL c_lgbm, (SELECT * REPLACE ('x' AS mean_area) FROM cancer))"
        )


def test_unseen_categories_and_nulls_are_defined(tmp_path: Path) -> None:
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE t AS SELECT i, CASE WHEN i % 3 = 0 THEN 'a' WHEN i % 3 = 1 THEN 'b' ELSE 'c' END AS kind, "
        "(i % 7)::DOUBLE AS x, (i % 3 = 0 OR i % 7 = 0) AS y FROM range(200) r(i)"
    )
    cur.execute(
        "TRAIN AUTOML m PREDICT y FROM t OPTIONS (time_budget = 2, max_trials = 2, estimators = ['lgbm'], exclude = ['i'])"
    )
    rows = cur.execute(
        "SELECT kind, x, predicted_y FROM ML.PREDICT(MODEL m, (SELECT * FROM (VALUES ('a', 1.0), ('zzz', 1.0), (NULL, NULL)) v(kind, x))) ORDER BY ALL"
    ).fetchall()
    assert len(rows) == 3 and all(r[2] in (True, False) for r in rows)
    con.close()


def test_feature_table_model_predicts_from_keys_alone(tmp_path: Path) -> None:
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE readings AS SELECT (i % 20) AS device, TIMESTAMP '2024-01-01' + INTERVAL (i) HOUR AS ts, "
        "(i % 11)::DOUBLE AS temperature FROM range(400) r(i)"
    )
    cur.execute(
        "CREATE FEATURE TABLE device_temp PRIMARY KEY (device) TIMESTAMP KEY (ts) AS SELECT * FROM readings"
    )
    cur.execute(
        "CREATE TABLE alarms AS SELECT (i % 20) AS device, TIMESTAMP '2024-01-01' + INTERVAL (i) HOUR + INTERVAL 30 MINUTE AS ts, "
        "((i % 11) > 6) AS alarm FROM range(400) r(i)"
    )
    cur.execute(
        "TRAIN AUTOML alarm PREDICT alarm FROM alarms WITH FEATURES device_temp OPTIONS (time_budget = 2, max_trials = 3, estimators = ['lgbm'])"
    )
    spine = "(SELECT * FROM (VALUES (3, TIMESTAMP '2024-01-01 03:30:00'), (3, TIMESTAMP '2024-01-01 23:59:00'), (5, TIMESTAMP '2024-01-10 05:45:00')) v(device, ts))"
    rows = cur.execute(
        f"SELECT device, ts, temperature, predicted_alarm FROM ML.PREDICT(MODEL alarm, {spine}) ORDER BY ALL"
    ).fetchall()
    expected = cur.execute(
        f"SELECT s.device, s.ts, (SELECT temperature FROM readings r WHERE r.device = s.device AND r.ts <= s.ts ORDER BY r.ts DESC LIMIT 1) FROM {spine} s ORDER BY ALL"
    ).fetchall()
    assert [r[:3] for r in rows] == expected
    assert [r[3] for r in rows] == [r[2] > 6 for r in expected]
    con.close()


def test_every_ml_table_function_declares_its_arguments() -> None:
    from lakesql.ml import inference

    assert set(inference.SIGNATURES) == set(inference.TABLE_FUNCTIONS)


@pytest.mark.parametrize("family", [*FAMILIES, "reg"])
def test_arrow_matrix_scores_bit_identical_to_the_pandas_path(
    wh: dict[str, Any], family: str
) -> None:
    from lakesql.ml import predict

    cur = wh["cur"]
    name = "reg" if family == "reg" else f"c_{family}"
    table = "diabetes" if family == "reg" else "cancer"
    mv = predict.load(cur.connection.session.warehouse, name)
    # NULLs in a float column, an integer column with NULLs and one without (cast from floats)
    first, second = mv.prep.inputs[0], mv.prep.inputs[1]
    batch = (
        cur.execute(
            f"SELECT * REPLACE (CASE WHEN id % 5 = 0 THEN NULL ELSE {first} END AS {first}, "
            f"CASE WHEN id % 7 = 0 THEN NULL ELSE round({second} * 100)::BIGINT END AS {second}) "
            f"FROM {table} ORDER BY id"
        )
        .fetch_arrow_table()
        .combine_chunks()
        .to_batches()[0]
    )
    frame = batch.to_pandas()
    assert frame[first].isna().sum() > 0 and frame[second].isna().sum() > 0
    expected_matrix = mv.prep.transform(frame).to_numpy()
    np.testing.assert_array_equal(mv.prep.matrix(batch), expected_matrix)
    if family in ("rf", "extra_tree"):  # their threads add the trees up in varying order
        np.testing.assert_allclose(mv.batch_values(batch), mv.values(frame), rtol=0, atol=1e-15)
    else:
        np.testing.assert_array_equal(mv.batch_values(batch), mv.values(frame))
    no_nulls = batch.set_column(
        batch.schema.get_field_index(second),
        second,
        pa.array(np.arange(batch.num_rows, dtype=np.int32)),
    )
    np.testing.assert_array_equal(
        mv.prep.matrix(no_nulls), mv.prep.transform(no_nulls.to_pandas()).to_numpy()
    )


def test_arrow_matrix_of_text_dates_and_booleans(tmp_path: Path) -> None:
    from lakesql.ml import predict

    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE t AS SELECT i, CASE WHEN i % 3 = 0 THEN 'a' WHEN i % 3 = 1 THEN 'b' ELSE NULL END AS kind, "
        "DATE '2024-01-01' + i::INTEGER AS day, i % 2 = 0 AS even, (i % 7)::DOUBLE AS x, "
        "(i % 3 = 0 OR i % 7 = 0) AS y FROM range(200) r(i)"
    )
    cur.execute(
        "TRAIN AUTOML m PREDICT y FROM t OPTIONS (time_budget = 2, max_trials = 2, estimators = ['lgbm'], exclude = ['i'])"
    )
    mv = predict.load(con.session.warehouse, "m")
    assert {c["kind"] for c in mv.prep.columns} == {"categorical", "datetime", "boolean", "numeric"}
    batch = (
        cur.execute("SELECT * FROM t UNION ALL SELECT 500, 'zzz', NULL, NULL, NULL, NULL")
        .fetch_arrow_table()
        .combine_chunks()
        .to_batches()[0]
    )
    frame = batch.to_pandas()
    np.testing.assert_array_equal(mv.prep.matrix(batch), mv.prep.transform(frame).to_numpy())
    np.testing.assert_array_equal(mv.batch_values(batch), mv.values(frame))
    con.close()


def test_ml_predict_output_equals_predict_batch(tmp_path: Path) -> None:
    """ML.PREDICT builds its nested and constant columns in DuckDB: the same table as PREDICT."""
    from lakesql.ml import predict

    con = lakesql.connect(str(tmp_path / "wh"), batch_rows=1000)
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE t AS SELECT i, CASE WHEN i % 3 = 0 THEN 'it''s' WHEN i % 3 = 1 THEN 'b' "
        "ELSE 'c' END AS y, (i % 7)::DOUBLE + (i % 3) AS x, (i % 5)::DOUBLE AS z, "
        "(i % 11)::DOUBLE AS r FROM range(3000) r(i)"
    )
    cur.execute(
        "TRAIN AUTOML three PREDICT y FROM t OPTIONS (time_budget = 2, max_trials = 2, "
        "estimators = ['lgbm'], exclude = ['i', 'r'])"
    )
    cur.execute(
        "TRAIN AUTOML num PREDICT r FROM t OPTIONS (time_budget = 2, max_trials = 2, "
        "estimators = ['xgboost'], exclude = ['i', 'y'])"
    )
    for model in ("three", "num"):
        got = cur.execute(f"SELECT * FROM ML.PREDICT(MODEL {model}, TABLE t)").fetch_arrow_table()
        expected = cur.execute(f"PREDICT {model} FROM t").fetch_arrow_table()
        assert got.num_rows == 3000 and got.schema == expected.schema
        assert got.sort_by("i").equals(expected.sort_by("i"))
        mv = predict.load(con.session.warehouse, model)
        batch = cur.execute("SELECT * FROM t").fetch_arrow_table().combine_chunks().to_batches()[0]
        own = pa.Table.from_batches([predict.predict_batch(mv, batch)])
        assert (
            got.sort_by("i")
            .column(f"predicted_{mv.label}")
            .equals(own.sort_by("i").column(f"predicted_{mv.label}"))
        )
    probs = cur.execute(
        "SELECT predicted_y_probs FROM ML.PREDICT(MODEL three, TABLE t) LIMIT 1"
    ).fetchone()[0]
    assert [p["label"] for p in probs] == ["b", "c", "it's"]
    # empty input, a relation read twice (a CTE), CREATE TABLE AS
    none = "(SELECT * FROM t WHERE i < 0)"
    empty = cur.execute(f"SELECT * FROM ML.PREDICT(MODEL three, {none})").fetch_arrow_table()
    assert empty.num_rows == 0
    assert empty.schema == cur.execute(f"PREDICT three FROM {none}").fetch_arrow_table().schema
    twice = cur.execute(
        "WITH p AS (SELECT * FROM ML.PREDICT(MODEL three, TABLE t)) "
        "SELECT count(*) FROM p a JOIN p b USING (i)"
    ).fetchone()
    assert twice == (3000,)
    cur.execute("CREATE TABLE scored AS SELECT * FROM ML.PREDICT(MODEL three, TABLE t)")
    stored = cur.execute("SELECT * FROM scored").fetch_arrow_table()
    plain = cur.execute("PREDICT three FROM t").fetch_arrow_table()
    assert stored.sort_by("i").to_pylist() == plain.sort_by("i").to_pylist()
    with pytest.raises(lakesql.ProgrammingError, match="_model"):
        cur.execute("SELECT * FROM ML.PREDICT(MODEL three, (SELECT *, 1 AS _model FROM t))")
    con.close()


def test_read_ahead_hands_over_errors_and_stops() -> None:
    from lakesql.ml.predict import read_ahead

    schema = pa.schema([("x", pa.int64())])

    def failing() -> Any:
        yield pa.record_batch([pa.array([1])], schema=schema)
        raise ValueError("broken input")

    reader = pa.RecordBatchReader.from_batches(schema, failing())
    seen = []
    with pytest.raises(ValueError, match="broken input"):
        for b in read_ahead(reader):
            seen.append(b.num_rows)
    assert seen == [1]
    endless = pa.RecordBatchReader.from_batches(
        schema, (pa.record_batch([pa.array([i])], schema=schema) for i in range(10**9))
    )
    first = []
    for b in read_ahead(endless):  # leaving early stops the reading thread
        first.append(b.column(0)[0].as_py())
        if len(first) == 3:
            break
    assert first == [0, 1, 2]
    import threading

    assert not any(t.name == "lakesql-read-ahead" for t in threading.enumerate())


def test_ml_predict_over_registered_arrow_rows(wh: dict[str, Any]) -> None:
    con, cur = wh["con"], wh["cur"]
    con.register("cancer_mem", pa.Table.from_pandas(wh["frame"], preserve_index=False))
    try:
        query = "SELECT * FROM ML.PREDICT(MODEL c_xgboost, TABLE {}) ORDER BY id"
        got = cur.execute(query.format("cancer_mem")).fetch_arrow_table()
        assert got.equals(cur.execute(query.format("cancer")).fetch_arrow_table())
        assert got.num_rows == len(wh["frame"])
        # the registered rows are read in place; DuckDB's names ignore case, quoted or not
        again = cur.execute(query.format('"CANCER_MEM"')).fetch_arrow_table()
        assert again.equals(got)
        con.register("cancer_part", pa.Table.from_pandas(wh["frame"].drop(columns=["mean_radius"])))
        with pytest.raises(lakesql.ProgrammingError, match="'mean_radius' missing"):
            cur.execute(query.format("cancer_part"))
        import threading

        assert not any(t.name.startswith("lakesql-prep") for t in threading.enumerate())
    finally:
        con.unregister("cancer_mem")
        con.unregister("cancer_part")


@pytest.mark.parametrize("name", ["c_xgboost", "reg"])
def test_predict_reader_groups_rows_for_the_model(wh: dict[str, Any], name: str) -> None:
    from lakesql.ml import predict

    cur = wh["cur"]
    mv = predict.load(cur.connection.session.warehouse, name)
    table = (
        cur.execute(f"SELECT * FROM {'diabetes' if name == 'reg' else 'cancer'} ORDER BY id")
        .fetch_arrow_table()
        .combine_chunks()
    )
    whole = table.to_batches()[0]
    # an empty batch, batches that share a model call, one larger than a call's rows, a remainder
    cuts = [(0, 100), (100, 0), (100, 30), (130, 260), (390, table.num_rows - 390)]
    batches = [whole.slice(a, n) for a, n in cuts]
    expected = predict.predict_batch(mv, whole)
    for score in (predict.predict_batch, predict.score_batch):
        reader = pa.RecordBatchReader.from_batches(table.schema, batches)
        got = predict.predict_reader(mv, reader, score=score, model_rows=250)
        assert [b.num_rows for b in got.to_batches()] == [100, 30, 260, table.num_rows - 390]
        for column in expected.schema.names:
            if column in got.column_names:
                assert got.column(column).combine_chunks().equals(expected.column(column))
        if score is predict.predict_batch:
            assert got.column_names == expected.schema.names


def test_scored_rows_are_released_by_the_next_statement(wh: dict[str, Any]) -> None:
    """A cursor keeps only the last statement's ML.* results; a view over them keeps its own."""
    con = lakesql.connect(str(wh["path"]))
    cur = con.cursor()

    def registered() -> int:
        (n,) = cur._duck.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name LIKE '__lakesql_ml_%'"
        ).fetchone()
        return int(n)

    for _ in range(3):
        cur.execute("SELECT count(*) FROM ML.PREDICT(MODEL c_lgbm, TABLE cancer)")
        assert cur.fetchone() == (569,)
    assert registered() == 1
    cur.execute("CREATE TEMP VIEW kept AS SELECT * FROM ML.PREDICT(MODEL c_lgbm, TABLE cancer)")
    cur.execute("SELECT 1").fetchall()
    assert registered() == 1  # the view's scored rows stay; the SELECT's are gone
    assert cur.execute("SELECT count(*) FROM kept").fetchone() == (569,)
    con.close()
