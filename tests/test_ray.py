"""Scale-out on Ray (lakesql.ml.cluster): TRAIN AUTOML's trials and PREDICT … INTO on a real Ray.

The runs on Ray happen in `lakesql -c` subprocesses, as a user runs them, with the environment set
before Ray is imported: Ray reads RAY_AUTH_MODE once per process, and Ray ≥ 2.50 clusters use token
authentication. The test cluster is `ray start --head --block`, on 127.0.0.1 only, with a token, and
is stopped by terminating that process (by its id) — `ray stop` would stop every Ray on the machine.
This process then checks, without Ray, what the runs left in the warehouse against local runs.

Without Ray installed (`pip install 'lakesql[ray]'`) the Ray tests skip; the tests of the address
and of the missing-Ray error run anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lakesql
from lakesql.ml.cluster import address, trial_config

LAKESQL = [sys.executable, "-m", "lakesql.cli"]
SEED = 3
# a trial count, not a time, bounds the searches: Tune's start-up would eat a short time budget
OPTIONS = f"time_budget = 120, max_trials = 8, seed = {SEED}, exclude = ['id']"
SEEDED = {"xgboost", "lgbm", "rf", "extra_tree", "histgb", "lrl1", "xgb_limitdepth"}


@pytest.fixture(scope="module")
def ray_installed() -> None:
    for module in ("ray", "ray.tune", "ray.data", "optuna"):
        pytest.importorskip(module, reason="Ray is not installed: pip install 'lakesql[ray]'")


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """breast_cancer in two commits (two files, so two scoring actors), and a local run."""
    from sklearn.datasets import load_breast_cancer

    path = tmp_path_factory.mktemp("wh")
    con = lakesql.connect(str(path))
    cur = con.cursor()
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.insert(0, "id", range(len(frame)))
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    cur._duck.register("__src", pa.Table.from_pandas(frame, preserve_index=False))
    cur.execute("CREATE TABLE cancer AS SELECT * FROM __src WHERE id < 300")
    cur.execute("INSERT INTO cancer SELECT * FROM __src WHERE id >= 300")
    cur._duck.unregister("__src")
    cur.execute(f"TRAIN AUTOML local_model PREDICT diagnosis FROM cancer OPTIONS ({OPTIONS})")
    yield {"path": path, "con": con, "cur": cur}
    con.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ray_env(tmp: Path, token: str) -> dict[str, str]:
    """A Ray on 127.0.0.1 with token authentication, its files under `tmp`."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "LAKESQL_CLUSTER")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        # Ray makes a node's address the machine's routable one, never loopback, unless told it
        # is not a multi-machine cluster (the variable's name says Windows/macOS; it works here)
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_TMPDIR=str(tmp),
        RAY_USAGE_STATS_ENABLED="0",
        HOME=str(tmp / "home"),  # Tune's ~/ray_results on the cluster side, ~/.ray
    )
    (tmp / "home").mkdir(exist_ok=True)
    return env


def _stop(proc: subprocess.Popen[Any], grace: float) -> None:
    """End a process we started, and whatever is left in the session it leads."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _lakesql(wh: Path, sql: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run `lakesql -c sql` on the warehouse; returns its stderr (asserting it succeeded)."""
    proc = subprocess.Popen(
        [*LAKESQL, "--warehouse", str(wh), "--format", "json", "-c", sql],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the embedded Ray's processes are ended with it
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        _stop(proc, grace=10)
    assert proc.returncode == 0, f"lakesql failed ({proc.returncode}):\n{out}\n{err}"
    return err


@contextlib.contextmanager
def _ray_head(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    """`ray start --head --block` on 127.0.0.1 with a Ray Client port; yields its ray:// address."""
    client = _free_port()
    ports = {
        "--port": _free_port(),
        "--ray-client-server-port": client,
        "--dashboard-agent-listen-port": _free_port(),
        "--dashboard-agent-grpc-port": _free_port(),
        "--metrics-export-port": _free_port(),
        "--runtime-env-agent-port": _free_port(),
    }
    log = (tmp / "ray-start.log").open("w")
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--head", "--block", "--num-cpus=2", "--include-dashboard=false"]
    command += ["--disable-usage-stats", f"--temp-dir={tmp / 'ray'}"]
    command += [f"{flag}={port}" for flag, port in ports.items()]
    proc = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", client), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "ray start failed:\n" + (tmp / "ray-start.log").read_text()
                    ) from None
                time.sleep(0.5)
        yield f"ray://127.0.0.1:{client}"
    finally:
        _stop(proc, grace=60)  # `ray start --block` stops its cluster on SIGTERM
        log.close()


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    # short: Ray's Unix socket paths live under it
    path = Path(tempfile.mkdtemp(prefix="lsray", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _version(wh: Path, model: str, v: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (wh / "_models" / model / f"v{v}" / "version.json").read_text()
    )
    return doc


def _check_like_a_local_run(cur: Any, wh: Path, model: str) -> dict[str, Any]:
    """The version and its trials are what a local run registers, field for field."""
    doc, local = _version(wh, model, 1), _version(wh, "local_model", 1)
    assert set(doc) == set(local)
    for key in ("task", "metric", "label", "sources", "data_sql", "split", "seed", "prep"):
        assert doc[key] == local[key], key
    assert set(doc["best_trial"]) == set(local["best_trial"])
    assert {k: v for k, v in doc["options"].items() if k != "cluster"} == {
        k: v for k, v in local["options"].items() if k != "cluster"
    }
    assert doc["metrics"]["test"]["roc_auc"] > 0.95
    trials = cur.execute(
        f"SELECT * FROM lakesql.trials WHERE model = '{model}' AND version = 1 ORDER BY trial"
    ).fetch_arrow_table()
    assert (
        trials.schema
        == cur.execute("SELECT * FROM lakesql.trials LIMIT 0").fetch_arrow_table().schema
    )
    rows = trials.to_pylist()
    assert len(rows) == doc["trial_count"] >= 4
    assert [r["trial"] for r in rows] == list(range(len(rows)))
    assert sum(r["is_best"] for r in rows) == 1
    learners = {r["estimator"] for r in rows}
    assert len(learners) >= 2, learners
    for r in rows:
        config = json.loads(r["config"]) if isinstance(r["config"], str) else r["config"]
        assert "ml" not in config and "learner" not in config, config  # flat, as locally
        if r["estimator"] in SEEDED:
            assert config["random_state"] == SEED, r
        assert r["valid_loss"] is not None and r["train_seconds"] is not None
        assert (wh / "_models" / model / "v1" / r["notebook"]).is_file()
    assert (wh / "_models" / model / "v1" / "profile.ipynb").is_file()
    return doc


def _check_predictions_equal_local(cur: Any, model: str, ray_table: str) -> None:
    cur.execute(f"PREDICT {model} VERSION 1 FROM cancer INTO {ray_table}_local")
    on_ray = cur.execute(f"SELECT * FROM {ray_table}").fetch_arrow_table()
    local = cur.execute(f"SELECT * FROM {ray_table}_local").fetch_arrow_table()
    assert on_ray.num_rows == local.num_rows == 569
    assert on_ray.schema == local.schema
    assert on_ray.equals(local)  # same rows, same order
    history = cur.execute(f"DESCRIBE HISTORY {ray_table}").fetchall()
    assert len(history) == 1  # one commit


def _check_reproduced_locally(cur: Any, model: str, doc: dict[str, Any]) -> None:
    """The best configuration, refit here without a cluster, predicts what version 1 predicts."""
    cur.execute(f"RETRAIN MODEL {model} REPRODUCE VERSION 1")
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    assert summary["version"] == 2
    assert summary["test_metric"] == pytest.approx(doc["metrics"]["test"]["roc_auc"], abs=1e-12)
    probs = {
        v: cur.execute(
            f"SELECT id, predicted_diagnosis, [p.prob FOR p IN predicted_diagnosis_probs] "
            f"FROM ML.PREDICT(MODEL {model} VERSION {v}, TABLE cancer) ORDER BY id"
        ).fetchall()
        for v in (1, 2)
    }
    assert [r[:2] for r in probs[1]] == [r[:2] for r in probs[2]]
    for a, b in zip(probs[1], probs[2], strict=True):
        assert a[2] == pytest.approx(b[2], abs=1e-12)


# -- without Ray ------------------------------------------------------------------------------------


def test_cluster_address_precedence() -> None:
    env = {"RAY_ADDRESS": "ray://env:10001"}
    assert address("ray://opt:10001", "ray://set:10001", env) == "ray://opt:10001"
    assert address(None, "ray://set:10001", env) == "ray://set:10001"
    assert address(None, None, env) == "ray://env:10001"
    assert address(None, None, {}) is None
    assert address("none", "ray://set:10001", env) is None  # an explicit local run
    assert address(None, "NONE", env) is None
    assert address(" local ", None, {}) == "local"
    assert address("", None, {"RAY_ADDRESS": ""}) is None


def test_trial_config_is_flat_like_a_local_log() -> None:
    nested = {"ml": {"n_estimators": 4, "learner": "lgbm", "random_state": 3, "_choice_": 1}}
    assert trial_config(nested) == {"n_estimators": 4, "random_state": 3}
    assert trial_config({"n_estimators": 4, "random_state": 3}) == {
        "n_estimators": 4,
        "random_state": 3,
    }


def test_without_ray_a_cluster_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE t AS SELECT i, (i % 7)::DOUBLE AS x, (i % 5)::DOUBLE AS z, "
        "((i % 7) + (i % 5) > 5) AS y FROM range(200) r(i)"
    )
    cur.execute(
        "TRAIN AUTOML m PREDICT y FROM t OPTIONS (time_budget = 2, max_trials = 2, estimators = ['lgbm'], exclude = ['i'])"
    )
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    install = r"pip install 'lakesql\[ray\]'"
    with pytest.raises(lakesql.NotSupportedError, match=install):
        cur.execute(
            "TRAIN AUTOML m2 PREDICT y FROM t OPTIONS (time_budget = 1, cluster => 'local')"
        )
    monkeypatch.setenv("RAY_ADDRESS", "ray://127.0.0.1:1")
    with pytest.raises(lakesql.NotSupportedError, match=install):
        cur.execute("TRAIN AUTOML m2 PREDICT y FROM t OPTIONS (time_budget = 1)")
    # 'none' trains here whatever RAY_ADDRESS says
    cur.execute(
        "TRAIN AUTOML m2 PREDICT y FROM t OPTIONS (time_budget = 2, max_trials = 2, estimators = ['lgbm'], exclude = ['i'], cluster = 'none')"
    )
    monkeypatch.delenv("RAY_ADDRESS")
    cur.execute("SET lakesql.cluster = 'ray://127.0.0.1:1'")
    with pytest.raises(lakesql.NotSupportedError, match=install):
        cur.execute("PREDICT m FROM t INTO scores")
    assert cur.execute("SELECT name FROM lakesql.models ORDER BY name").fetchall() == [
        ("m",),
        ("m2",),
    ]
    assert not (tmp_path / "wh" / "main" / "scores").exists()
    cur.execute("PREDICT m FROM t")  # without INTO: scored here, as before
    con.close()


def test_forecast_trains_locally_with_a_cluster_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # proves Ray is not used
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE meter AS SELECT TIMESTAMP '2024-03-01' + INTERVAL (i) HOUR AS ts, "
        "50 + 0.02 * i + 8 * sin(2 * pi() * i / 24) AS load FROM range(240) r(i)"
    )
    with pytest.warns(UserWarning, match="forecast models train locally"):
        cur.execute(
            "TRAIN AUTOML grid PREDICT load FROM meter OPTIONS (task = 'forecast', time_column = 'ts',"
            " horizon = 6, estimators = ['lgbm', 'naive'], time_budget = 2, n_jobs = 1,"
            " cluster => 'local')"
        )
    doc = _version(tmp_path / "wh", "grid", 1)
    assert any("forecast models train locally" in w for w in doc["warnings"])
    con.close()


# -- on Ray -----------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_embedded_local_ray(ray_installed: None, wh: dict[str, Any], ray_tmp: Path) -> None:
    """cluster => 'local': an embedded Ray in the lakesql process runs the trials and the scoring."""
    path, cur = wh["path"], wh["cur"]
    env = _ray_env(ray_tmp, secrets.token_hex(32))
    err = _lakesql(
        path,
        f"TRAIN AUTOML embedded PREDICT diagnosis FROM cancer OPTIONS ({OPTIONS}, cluster => 'local');"
        "SET lakesql.cluster = 'local';"
        "PREDICT embedded FROM cancer INTO embedded_scores;",
        env,
    )
    assert "scored locally" not in err, err
    sessions = list(ray_tmp.glob("ray/session_2*"))
    assert sessions, "no Ray was started"
    data_logs = "".join(p.read_text() for p in sessions[0].glob("logs/ray-data/*.log"))
    assert "_Scorer" in data_logs  # the predictions were made by Ray Data's actors
    assert not (ray_tmp / "home" / ".ray" / "auth_token").exists()  # the token came from the env
    doc = _check_like_a_local_run(cur, path, "embedded")
    _check_predictions_equal_local(cur, "embedded", "embedded_scores")
    _check_reproduced_locally(cur, "embedded", doc)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_client_cluster(ray_installed: None, wh: dict[str, Any], ray_tmp: Path) -> None:
    """ray://: trials run on a separate cluster; RETRAIN … REPRODUCE refits the best locally."""
    path, cur = wh["path"], wh["cur"]
    env = _ray_env(ray_tmp, secrets.token_hex(32))
    with _ray_head(ray_tmp, env) as where:
        err = _lakesql(
            path,
            f"TRAIN AUTOML clustered PREDICT diagnosis FROM cancer OPTIONS ({OPTIONS}, cluster => '{where}');"
            f"SET lakesql.cluster = '{where}';"
            "PREDICT clustered FROM cancer INTO clustered_scores;",
            env,
        )
        assert "scored locally" not in err, err
        # Tune ran the trials on the cluster (its files are in the cluster side's ~/ray_results)
        assert list((ray_tmp / "home" / "ray_results").glob("lakesql-*")), err
        logs = ray_tmp / "ray" / "session_latest" / "logs"
        assert "_Scorer" in "".join(p.read_text() for p in logs.glob("ray-data/*.log"))
    doc = _check_like_a_local_run(cur, path, "clustered")
    assert doc["options"]["cluster"] == where
    _check_predictions_equal_local(cur, "clustered", "clustered_scores")
    _check_reproduced_locally(cur, "clustered", doc)
