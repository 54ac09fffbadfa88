"""Model files: only the types lakesql writes load (no callables, no FunctionTransformer), the
SHA-256 is checked again whenever a cached model's file changed, and every load failure is a
lakesql.Error."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import lakesql
from lakesql.ml import backends

PREDICT = "SELECT count(*) FROM ML.PREDICT(MODEL m, TABLE t)"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with model m (scikit-learn's HistGradientBoosting) trained on table t."""
    root = tmp_path_factory.mktemp("models") / "wh"
    con = lakesql.connect(str(root))
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE t AS SELECT range AS i, (range % 7)::DOUBLE AS x, (range % 5)::DOUBLE AS z, "
        "(range % 7 + range % 3 > 4) AS y FROM range(300)"
    )
    cur.execute(
        "TRAIN AUTOML m PREDICT y FROM t OPTIONS (time_budget = 3, max_trials = 2, "
        "estimators = ['histgb'], exclude = ['i'])"
    )
    con.close()
    meta = json.loads((root / "_models" / "m" / "v1" / "model.json").read_text())
    assert meta["family"] == "sklearn", meta
    return root


@pytest.fixture
def wh(trained: Path, tmp_path: Path) -> Path:
    root = tmp_path / "wh"
    shutil.copytree(trained, root)
    return root


def _folder(root: Path) -> Path:
    return root / "_models" / "m" / "v1"


def _replace_model(
    root: Path, write: Any, *, family: str = "sklearn", catalog: bool = True
) -> None:
    """Put another model file in m's version 1 and record its SHA-256 in model.json (and in the
    catalog), as someone with write access to the warehouse folder could."""
    folder = _folder(root)
    meta = json.loads((folder / "model.json").read_text())
    (folder / meta["file"]).unlink()
    name = {"sklearn": "model.skops", "xgboost": "model.ubj", "lightgbm": "model.txt"}[family]
    write(folder / name)
    digest = backends.file_digest(folder / name)
    meta.update(file=name, family=family, sha256=digest)
    (folder / "model.json").write_text(json.dumps(meta))
    if catalog:
        doc_path = root / "_lakesql" / "model_versions" / "m__v1.json"
        doc = json.loads(doc_path.read_text())
        doc["model_files"] = {
            **doc["model_files"],
            "file": name,
            "family": family,
            "sha256": digest,
        }
        doc_path.write_text(json.dumps(doc))


@pytest.fixture
def payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module whose function, if ever called, writes a marker file."""
    folder = tmp_path / "attacker"
    folder.mkdir()
    marker = tmp_path / "executed"
    (folder / "attacker_payload.py").write_text(
        textwrap.dedent(
            f"""
            def run(X, *args, **kwargs):
                open({str(marker)!r}, "w").write("ran")
                return X
            """
        )
    )
    monkeypatch.syspath_prepend(str(folder))
    return marker


def _pipeline(func: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = pd.DataFrame({"x": np.arange(20.0), "z": np.arange(20.0) % 5})
    y = np.arange(20) % 2 == 0
    return Pipeline([("f", FunctionTransformer(func=func)), ("m", LogisticRegression())]).fit(
        X.to_numpy(), y
    )


def test_function_transformer_is_refused_and_nothing_runs(wh: Path, payload: Path) -> None:
    import attacker_payload  # type: ignore[import-not-found]
    import skops.io as sio

    pipe = _pipeline(attacker_payload.run)
    payload.unlink()  # written by the fit above
    _replace_model(wh, lambda p: sio.dump(pipe, p))
    # the file is a real attack: skops with the types it lists as untrusted runs the payload
    path = _folder(wh) / "model.skops"
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    loaded.predict(np.zeros((1, 2)))
    assert payload.exists()
    payload.unlink()
    with lakesql.connect(str(wh)) as con:
        with pytest.raises(lakesql.OperationalError, match="FunctionTransformer") as info:
            con.cursor().execute(PREDICT).fetchall()
    assert "attacker_payload.run" in str(info.value)
    assert "model 'm' version 1" in str(info.value)
    assert not payload.exists()


@pytest.mark.parametrize("func", ["builtins.exec", "builtins.eval", "numpy.load", "os.system"])
def test_callables_are_refused(wh: Path, func: str) -> None:
    import importlib

    import skops.io as sio

    module, _, name = func.rpartition(".")
    fn = getattr(importlib.import_module(module), name)
    from sklearn.linear_model import LogisticRegression

    X = np.arange(20.0).reshape(10, 2)
    model = LogisticRegression().fit(X, np.arange(10) % 2)
    model.class_weight = {0: fn}  # a callable hidden in a parameter of an allowed estimator
    _replace_model(wh, lambda p: sio.dump(model, p))
    with lakesql.connect(str(wh)) as con:
        with pytest.raises(lakesql.OperationalError, match="never writes") as info:
            con.cursor().execute(PREDICT).fetchall()
    assert f"{fn.__module__}.{fn.__name__}" in str(info.value)  # os.system is posix.system
    with pytest.raises(lakesql.Error):
        backends.check_skops(_folder(wh) / "model.skops")


def test_hash_in_model_json_alone_is_not_enough(wh: Path) -> None:
    """The catalog records the SHA-256 too: a file matching only model.json is refused."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.arange(20.0).reshape(10, 2), np.arange(10) % 2)
    _replace_model(wh, lambda p: sio.dump(model, p), catalog=False)
    with lakesql.connect(str(wh)) as con:
        with pytest.raises(lakesql.OperationalError, match="SHA-256 differs"):
            con.cursor().execute(PREDICT).fetchall()


def test_cached_model_is_checked_again_when_its_file_changes(wh: Path) -> None:
    with lakesql.connect(str(wh)) as con:
        cur = con.cursor()
        assert cur.execute(PREDICT).fetchall() == [(300,)]  # loaded and cached
        path = _folder(wh) / "model.skops"
        good = path.read_bytes()
        # same size, one byte changed (the hash in model.json and the catalog stay the old one)
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0xFF
        path.write_bytes(bytes(bad))
        with pytest.raises(lakesql.OperationalError, match="SHA-256 differs"):
            cur.execute(PREDICT).fetchall()
        # restored: verified and loaded again
        path.write_bytes(good)
        assert cur.execute(PREDICT).fetchall() == [(300,)]
        # the mtime put back by hand does not hide a change (inode, size and ctime are checked)
        st = path.stat()
        tmp = path.with_suffix(".new")
        tmp.write_bytes(bytes(bad))
        os.replace(tmp, path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        with pytest.raises(lakesql.OperationalError, match="SHA-256 differs"):
            cur.execute(PREDICT).fetchall()
        # prep.json too
        path.write_bytes(good)
        prep = _folder(wh) / "prep.json"
        prep.write_text(prep.read_text().replace('"x"', '"z"', 1))
        with pytest.raises(lakesql.OperationalError, match=r"prep\.json"):
            cur.execute(PREDICT).fetchall()


def _unfitted(path: Path) -> None:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    sio.dump(RandomForestClassifier(), path)


@pytest.mark.parametrize(
    "family,write,match",
    [
        ("sklearn", _unfitted, "NotFittedError"),
        ("sklearn", lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "not a model file"),
        ("sklearn", lambda p: p.write_bytes(b""), "not a model file"),
        ("xgboost", lambda p: p.write_bytes(b"{not ubjson"), "cannot be loaded"),
        ("lightgbm", lambda p: p.write_text("tree\nversion=v4\n"), "cannot be loaded"),
    ],
    ids=["unfitted", "bad-zip", "empty", "xgboost-garbage", "lightgbm-garbage"],
)
def test_every_load_failure_is_a_lakesql_error(
    wh: Path, family: str, write: Any, match: str
) -> None:
    _replace_model(wh, write, family=family)
    with lakesql.connect(str(wh)) as con:
        with pytest.raises(lakesql.OperationalError, match=match) as info:
            con.cursor().execute(PREDICT).fetchall()
    assert info.value.__cause__ is not None or "not a model file" in str(info.value)


def test_model_json_with_bad_values(wh: Path) -> None:
    folder = _folder(wh)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "n_classes": "many"}))
    with pytest.raises(backends.ModelFileError, match="cannot be read") as info:
        backends.load(folder)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    "learner", ["rf", "extra_tree", "histgb", "lrl1", "lrl2", "enet", backends.BASELINE]
)
def test_every_estimator_lakesql_writes_loads(tmp_path: Path, learner: str) -> None:
    """The allow-list admits each scikit-learn model lakesql trains (and the forecast baseline)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    targets = (
        [("regression", X.a * 2 + rng.normal(size=200))]
        if learner == "enet"
        else [
            ("classification", (X.a > 0).astype(int)),
            ("classification", np.digitize(X.a, [-0.5, 0.5])),
        ]
        + ([] if learner.startswith("lr") else [("regression", X.a * 2)])
    )
    for i, (task, y) in enumerate(targets):
        est = backends.fit_trial(learner, task, {}, X, y, n_jobs=1, seed=0)
        folder = tmp_path / str(i)
        backends.save(est, folder, task=task, n_classes=len(set(np.asarray(y).tolist())))
        loaded = backends.load(folder, sha256=backends.file_digest(folder / "model.skops"))
        np.testing.assert_allclose(
            loaded.predict_values(X),
            est.predict_proba(X) if task == "classification" else est.predict(X),
        )


def test_forecast_baseline_loads(tmp_path: Path) -> None:
    from lakesql.ml.forecast import _linear

    backends.save(_linear(["a", "b"], {"a": 1.0}), tmp_path, task="regression", n_classes=0)
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 0.0]})
    assert list(backends.load(tmp_path).predict_values(X)) == [1.0, 2.0]


def test_allow_list_has_no_callables() -> None:
    """Every allowed name is a class (data or an estimator's part), never a function."""
    import importlib

    for name in backends.SKOPS_TYPES:
        module, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue  # not in this numpy/scikit-learn version
        assert isinstance(obj, type), name
    assert not any("FunctionTransformer" in t or "Pipeline" in t for t in backends.SKOPS_TYPES)
    assert not {"FunctionNode", "MethodNode", "PartialNode", "OperatorFuncNode"} & set(
        backends.SKOPS_LOADERS
    )
