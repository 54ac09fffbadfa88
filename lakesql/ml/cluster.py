"""Scale-out on Ray: TRAIN AUTOML's trials and batch PREDICT … INTO on a Ray cluster.

Where the cluster is: the TRAIN option ``cluster``, else the session setting ``cluster``
(``SET lakesql.cluster``, ``LAKESQL_CLUSTER``), else the ``RAY_ADDRESS`` environment variable.
``'local'`` starts an embedded Ray in this process; ``'none'`` runs locally whatever the session
or the environment says; anything else is handed to ``ray.init(address=...)`` (``ray://host:10001``
through Ray Client, ``auto`` or ``host:6379`` from a node of the cluster).

Training: FLAML's own Ray support runs the trials (``use_ray``, ``n_concurrent_trials``, Tune
actors reused between trials). Everything around the search — data, preparation, split, the refit
of the best configuration, the test score, the registry entry and its notebooks — stays where it
is, so a version trained on a cluster is published exactly like a local one and
``RETRAIN … REPRODUCE`` refits it locally.

Prediction: ``PREDICT m FROM t INTO t2`` reads the files of ``t``'s Delta snapshot with Ray Data,
scores them in an actor pool that loads the model once per actor, and brings the Arrow batches
back to be committed in one version, like the local path.

Ray is an optional dependency (``pip install 'lakesql[ray]'``), imported only here and only when
a cluster is named.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakesql import errors as E

if TYPE_CHECKING:
    from lakesql.ml.predict import ModelVersion
    from lakesql.session import Session

INSTALL_HINT = "install the Ray extra: pip install 'lakesql[ray]'"
LOCAL = "local"  # an embedded Ray started in this process
NONE = "none"  # run locally even when the session or RAY_ADDRESS names a cluster
ACTOR_CPUS = 0.5  # scoring actors leave CPUs to the read tasks (2 actors on a 2-core machine)

# Ray keeps one connection per process: connecting, searching and scoring hold this lock.
_LOCK = threading.RLock()
_CONNECTED: str | None = None  # the address lakesql connected to (None: not lakesql's)


def address(
    option: str | None, setting: str | None, env: Mapping[str, str] | None = None
) -> str | None:
    """The cluster a statement runs on: option > session setting > RAY_ADDRESS; None: locally."""
    env = os.environ if env is None else env
    for value in (option, setting, env.get("RAY_ADDRESS")):
        if value is not None and value.strip():
            text = value.strip()
            return None if text.lower() == NONE else text
    return None


def require_ray() -> Any:
    """The ray module, with Tune and Data.

    Raises:
        NotSupportedError: Ray (the ``ray`` extra) is not installed, saying how to install it.
    """
    try:
        import ray
        import ray.data
        import ray.tune
    except ImportError as e:
        raise E.NotSupportedError(
            f"running on a Ray cluster needs Ray, which is not installed ({e})", hint=INSTALL_HINT
        ) from e
    return ray


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep Ray's, Tune's and Optuna's chatter off stdout (where results go) and their info logs
    off stderr, for the duration of a call."""
    names = ("ray", "ray.tune", "ray.data", "ray.train", "optuna")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def connect(where: str) -> Any:
    """Connect this process to the cluster at `where` (once; again when the address changes).

    A Ray connection made by someone else in this process (``ray.init()`` in a notebook, say) is
    used as it is.

    Raises:
        NotSupportedError: Ray is not installed.
        OperationalError: the cluster cannot be reached.
    """
    global _CONNECTED
    ray = require_ray()
    with _LOCK:
        if ray.is_initialized():
            if _CONNECTED is None or _CONNECTED == where:
                return ray
            ray.shutdown()
            _CONNECTED = None
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if where.lower() == LOCAL:
            kwargs.update(
                address="local", num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False
            )
        else:
            kwargs["address"] = where
        try:
            _init(ray, kwargs)
        except Exception as e:  # ConnectionError, RuntimeError, ValueError, auth errors ...
            with contextlib.suppress(Exception):
                ray.shutdown()
            raise E.OperationalError(
                f"cannot connect to the Ray cluster at {where!r}: {type(e).__name__}: {e}",
                hint="use ray://<head>:10001 (Ray Client), 'auto' on a cluster node, or 'local'; "
                "a cluster with token authentication needs RAY_AUTH_MODE=token and its token "
                "(RAY_AUTH_TOKEN or ~/.ray/auth_token): see docs/scaleout.md",
            ) from e
        _CONNECTED = where
        return ray


def _init(ray: Any, kwargs: dict[str, Any]) -> None:
    """ray.init, tried again when Ray Client's server for this connection dies as it starts.

    The head's Ray Client proxy forks a server per connection from a gRPC thread, and that child
    sometimes dies before it runs (ray-project/ray#63202); a new connection gets a new server.
    """
    attempts = 3 if str(kwargs.get("address", "")).startswith("ray://") else 1
    for attempt in range(1, attempts + 1):
        try:
            with _quiet():
                ray.init(**kwargs)
            return
        except ConnectionAbortedError as e:
            if attempt == attempts or "client server failed" not in str(e):
                raise
            with contextlib.suppress(Exception), _quiet():
                ray.shutdown()
            time.sleep(1.0)


def disconnect() -> None:
    """Drop the connection lakesql made (a connection made by someone else is left alone)."""
    global _CONNECTED
    with _LOCK:
        if _CONNECTED is None:
            return
        import ray

        with _quiet():
            ray.shutdown()
        _CONNECTED = None


def _cpus(ray: Any) -> tuple[int, int]:
    """(CPUs of the cluster, CPUs of its largest node)."""
    total = int(ray.cluster_resources().get("CPU", 0))
    try:
        largest = max(
            (int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")),
            default=0,
        )
    except Exception:  # node listing is informational here
        largest = total
    return total, largest


# -- TRAIN AUTOML ---------------------------------------------------------------------------------


@contextlib.contextmanager
def search(where: str, settings: dict[str, Any], *, n_jobs: int) -> Iterator[None]:
    """Turn FLAML `settings` into a search whose trials run concurrently on the cluster, and hold
    the connection (quietly) while the caller runs ``AutoML.fit(**settings)``.

    On a cluster ``n_jobs`` is the CPUs (threads) of one trial, 1 for -1; as many trials run at once
    as the cluster's CPUs hold. The log stays FLAML's (``log_type='all'``), with the explicit
    validation set, ``sample=False`` and every seed pinned in the search space as locally; a seed is
    pinned as a one-value choice, since FLAML's joint search space over several learners (what its
    parallel search uses) cannot complete configurations that hold a constant.
    """
    from flaml import tune

    with _LOCK:
        ray = connect(where)
        total, largest = _cpus(ray)
        per_trial = n_jobs if n_jobs > 0 else 1
        if largest:
            per_trial = min(per_trial, largest)
        settings["n_jobs"] = per_trial
        settings["n_concurrent_trials"] = max(1, total // per_trial)
        tune_args: dict[str, Any] = {
            "reuse_actors": True,
            "name": f"lakesql-{uuid.uuid4().hex[:12]}",
        }
        storage = None
        if not ray.util.client.ray.is_connected():
            # the Tune driver runs here: keep its files in a folder removed afterwards (through
            # Ray Client it runs on the cluster and keeps them in Ray's default folder there)
            storage = tempfile.mkdtemp(prefix="lakesql-tune-")
            tune_args["storage_path"] = storage
        settings["use_ray"] = tune_args
        settings["custom_hp"] = {
            learner: {
                name: ({"domain": tune.choice([spec["domain"]])} if _constant(spec) else spec)
                for name, spec in space.items()
            }
            for learner, space in settings.get("custom_hp", {}).items()
        }
        try:
            with _quiet():
                yield
        finally:
            if storage:
                shutil.rmtree(storage, ignore_errors=True)


def _constant(spec: Any) -> bool:
    return isinstance(spec, dict) and "domain" in spec and not hasattr(spec["domain"], "sample")


def trial_config(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's configuration as a local search logs it.

    FLAML's parallel search logs ``{"ml": {..., "learner": name}}``; a local one the learner's
    hyperparameters alone.
    """
    inner = config.get("ml", config)
    if not isinstance(inner, dict):
        return config
    return {k: v for k, v in inner.items() if k not in ("learner", "_choice_", "FLAML_sample_size")}


# -- PREDICT … INTO ---------------------------------------------------------------------------------


def predict_into(session: Session, mv: ModelVersion, source: Any, relation: str) -> pa.Table | None:
    """The predictions of PREDICT … INTO scored on the session's cluster; None: score locally.

    Scores on Ray when a cluster is set and the rows are a warehouse table (at its current or a
    given version) that can be read as its snapshot's Parquet files: no deletion vectors, column
    mapping or partitions, and a model without feature-table features. Otherwise it warns and the
    local path scores.
    """
    from sqlglot import exp

    from lakesql.storage import delta

    where = address(None, session.settings.get("cluster"))
    if where is None:
        return None

    def local(reason: str) -> None:
        warnings.warn(f"PREDICT scored locally, not on {where!r}: {reason}", stacklevel=4)

    if not isinstance(source, exp.Table):
        local("the rows are a query; Ray reads a table's files (PREDICT m FROM t INTO t2)")
        return None
    if mv.doc.get("feature_tables"):
        local("the model looks features up in feature tables, which needs the warehouse's SQL")
        return None
    wh = session.warehouse
    try:
        ref = wh.ref(source.db or None, source.name)
        if not wh.exists(ref):
            local(f"{source.sql(dialect='duckdb')} is not a warehouse table")
            return None
        version = source.args.get("version")
        target: Any = None
        if version is not None:
            value = version.expression
            target = int(value.name) if str(version.this).upper() == "VERSION" else value.name
        snap = delta.snapshot(ref.path, target)
    except E.Error as e:
        local(str(e))
        return None
    if not snap.plain_parquet or snap.partition_columns:
        local("the table uses deletion vectors, column mapping or partitions")
        return None
    if not snap.files:
        return None  # nothing to score: the local path does it at no cost
    described = session.execute(f"SELECT * FROM {relation} LIMIT 0", cur=session.engine.cursor())
    if described.cursor is None:
        return None
    schema = described.cursor.to_arrow_table().schema  # the types the local path would score
    with _LOCK, _quiet():
        ray = connect(where)
        total, _ = _cpus(ray)
        actors = max(1, min(total, len(snap.files)))
        args = (
            list(snap.files),
            schema,
            str(mv.folder),
            mv.name,
            mv.version,
            actors,
            int(session.settings["batch_rows"]),
        )
        try:
            if ray.util.client.ray.is_connected():
                # through Ray Client the pipeline's driver runs on the cluster, next to the data
                driver = ray.remote(num_cpus=0)(_score_files)
                tables = ray.get(driver.remote(*args))
            else:
                tables = _score_files(*args)
        except E.Error:
            raise
        except Exception as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, E.Error):
                raise cause from e
            raise E.OperationalError(
                f"scoring on the Ray cluster at {where!r} failed: {type(e).__name__}: {e}",
                hint="the workers need lakesql and its ML libraries at the driver's versions, and "
                "must read the warehouse at the same path: see docs/scaleout.md",
            ) from e
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return None
    # in the local path's batches (batch_rows each): the Delta writer does not keep the order of
    # the rows of different batches, so the same batches make the same table
    table = pa.concat_tables(tables).combine_chunks()
    rows = int(session.settings["batch_rows"])
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), schema=table.schema)


def _score_files(
    files: list[str],
    schema: pa.Schema,
    folder: str,
    name: str,
    version: int,
    actors: int,
    batch_rows: int,
) -> list[pa.Table]:
    """Read `files`, score them in an actor pool, return the scored tables in file order."""
    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows in the order the local path reads them
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    ds = ray.data.read_parquet(files, schema=schema, partitioning=None)
    ds = ds.map_batches(
        _Scorer,
        batch_format="pyarrow",
        batch_size=min(batch_rows, 100_000),
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=ACTOR_CPUS,
        max_restarts=0,  # a failed actor fails the statement (nothing is committed)
        fn_constructor_kwargs={
            "folder": folder,
            "name": name,
            "version": version,
            "schema": schema,
        },
    )
    return list(ray.get(ds.to_arrow_refs()))


class _Scorer:
    """One Ray Data actor: loads the model version once, scores each batch as the local path."""

    def __init__(self, folder: str, name: str, version: int, schema: pa.Schema):
        from lakesql.ml import backends
        from lakesql.ml.predict import ModelVersion
        from lakesql.ml.prep import Prep

        path = Path(folder)
        doc = json.loads((path / "version.json").read_text())
        prep = Prep.from_dict(json.loads((path / "prep.json").read_text()))
        self.mv = ModelVersion(name, version, doc, prep, backends.load(path), path)
        self.schema = schema

    def __call__(self, batch: pa.Table) -> pa.Table:
        from lakesql.ml.predict import predict_batch

        columns = [
            batch.column(f.name).cast(f.type)
            if f.name in batch.column_names
            else pa.nulls(batch.num_rows, f.type)
            for f in self.schema
        ]
        table = pa.Table.from_arrays(columns, schema=self.schema).combine_chunks()
        batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=self.schema)]
        return pa.Table.from_batches([predict_batch(self.mv, b) for b in batches])
