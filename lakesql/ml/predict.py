"""Scoring: load a version once per session, replay its preparation, predict in Arrow batches."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakesql import errors as E
from lakesql.ml import registry

if TYPE_CHECKING:
    from lakesql.catalog.warehouse import Warehouse


@dataclass
class ModelVersion:
    """A loaded version: its catalog document, preparation and model."""

    name: str
    version: int
    doc: dict[str, Any]
    prep: Any  # lakesql.ml.prep.Prep
    model: Any  # lakesql.ml.backends.Loaded
    folder: Path

    @property
    def task(self) -> str:
        return str(self.doc["task"])

    @property
    def label(self) -> str:
        return str(self.doc["label"])

    @property
    def classes(self) -> list[Any]:
        return list(self.prep.classes or [])

    def values(self, frame: Any) -> Any:
        """Class probabilities (classification) or predicted values, for a pandas frame."""
        return self.model.predict_values(self.prep.transform(frame))

    def batch_values(self, batch: pa.RecordBatch) -> Any:
        """values() of an Arrow batch: the same numbers, with the matrix made from Arrow."""
        return self.matrix_values(self.prep.matrix(batch))

    def matrix_values(self, X: Any) -> Any:
        """values() of a matrix made by prep.matrix()."""
        if self.model.family == "sklearn":  # fitted on a frame: it checks the feature names
            import pandas as pd

            X = pd.DataFrame(X, columns=self.prep.outputs, copy=False)
        return self.model.predict_values(X)


# key -> (the files' stat signature when loaded, the loaded version)
_CACHE: dict[tuple[str, str, int, str], tuple[tuple[Any, ...], ModelVersion]] = {}
_LOCK = threading.Lock()


def _signature(folder: Path) -> tuple[Any, ...]:
    """(inode, size, mtime, ctime) of a version's files (model.json, prep.json, the model file): a
    cached model whose files changed since it was loaded is verified and loaded again."""
    out: list[Any] = []
    names = ["model.json", "prep.json"]
    try:
        names.append(str(json.loads((folder / "model.json").read_text()).get("file", "")))
    except (OSError, ValueError, AttributeError):
        pass
    for n in names:
        try:
            st = os.stat(folder / n) if n else None
        except OSError:
            st = None
        out.append(None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def load(
    wh: Warehouse, name: str, version: int | None = None, alias: str | None = None
) -> ModelVersion:
    """The model version a reference means, loaded once per process and cached by version; the
    SHA-256 of its files is checked again whenever they changed on disk since.

    Raises:
        lakesql.Error: an OperationalError for every way its files can fail to load.
    """
    from lakesql.ml import backends
    from lakesql.ml.prep import Prep

    v = registry.resolve_version(wh, name, version, alias)
    doc = registry.get_version(wh, name, v)
    if doc["task"] == "forecast":
        raise E.ProgrammingError(
            f"model {name!r} forecasts future periods; it does not score rows",
            hint=f"use ML.FORECAST(MODEL {name} [, horizon => n])",
        )
    name = registry.validate_name(name, "model name")  # as stored: ASCII letters lower-cased
    key = (
        str(wh.root),
        name,
        v,
        str(doc.get("created_at")),
    )  # a re-created v1 is another model
    folder = registry.version_dir(wh, name, v)
    signature = _signature(folder)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    if not folder.is_dir():
        raise E.OperationalError(
            f"the files of model {name!r} version {v} are missing ({folder})",
            hint="DROP MODEL ... VERSION to remove the entry",
        )
    try:
        digest = doc.get("prep_sha256")
        if digest is not None and backends.file_digest(folder / "prep.json") != digest:
            raise E.OperationalError(
                f"{folder / 'prep.json'} was changed after model {name!r} version {v} was "
                "trained (its SHA-256 differs)",
                hint="train the model again, or DROP MODEL ... VERSION n",
            )
        prep = Prep.from_dict(json.loads((folder / "prep.json").read_text()))
    except E.Error:
        raise
    except Exception as e:  # OSError, ValueError, KeyError, TypeError, ...
        raise E.OperationalError(
            f"the preparation of model {name!r} version {v} cannot be read: {e}"
        ) from e
    files = doc.get("model_files")
    expected = files.get("sha256") if isinstance(files, dict) else None
    try:
        model = backends.load(folder, sha256=expected)
    except E.Error as e:
        e.message = f"model {name!r} version {v}: {e.message}"
        e.args = (e.message,)
        raise
    loaded = ModelVersion(name, v, doc, prep, model, folder)
    with _LOCK:
        _CACHE[key] = (signature, loaded)
    return loaded


def forget(wh: Warehouse, name: str) -> None:
    with _LOCK:
        try:
            stored = registry.validate_name(name, "model name")
        except E.ProgrammingError:  # no such model can have been loaded
            return
        for key in [k for k in _CACHE if k[0] == str(wh.root) and k[1] == stored]:
            del _CACHE[key]


def _probs_type() -> pa.DataType:
    return pa.list_(pa.struct([("label", pa.string()), ("prob", pa.float64())]))


def _labels(classes: list[Any], codes: Any) -> pa.Array:
    """pa.array([classes[i] for i in codes]), taken from an array of the classes when that is the
    same array (classes of one type whose Arrow type does not depend on which of them occur)."""
    if len(codes) and classes and _uniform_type(classes):
        return pa.array(classes).take(pa.array(codes, pa.int64()))
    return pa.array([classes[int(i)] for i in codes])


def _uniform_type(classes: list[Any]) -> bool:
    kinds = {type(c) for c in classes}
    if kinds in ({str}, {bool}, {float}):
        return True
    return kinds == {int} and all(-(2**63) <= c < 2**63 for c in classes)


PREP_THREADS = min(4, os.cpu_count() or 1)  # threads preparing batches (numpy frees the GIL)
PROB_PREFIX = "__lakesql_prob_"  # score_batch()'s column of the probability of class i


def _predicted(
    mv: ModelVersion, batch: pa.RecordBatch, threshold: float | None, values: Any
) -> tuple[pa.Array, Any]:
    """(the predicted_<label> column, the values as float64) of a batch, given its values or not."""
    import numpy as np

    n = batch.num_rows
    if values is None and n:
        values = mv.batch_values(batch)
    elif values is None and mv.task == "classification":
        values = np.zeros((0, max(1, len(mv.classes))))
    elif values is None:
        values = np.zeros(0)  # a 1-d column, as predict_values returns for regression
    values = np.asarray(values, dtype=np.float64)
    if mv.task != "classification":
        return pa.array(values), values
    classes = mv.classes
    if threshold is not None:
        if len(classes) != 2:
            raise E.ProgrammingError("threshold applies to binary classification models only")
        codes = (values[:, 1] >= threshold).astype(int)
    else:
        codes = _argmax_rows(values) if n else np.zeros(0, dtype=int)
    return _labels(classes, codes), values


def _argmax_rows(values: Any) -> Any:
    """np.argmax(values, axis=1); for two classes a comparison, 5x faster, with the same answer
    on ties (the first class) and NaNs (the first NaN)."""
    import numpy as np

    if values.shape[1] != 2:
        return np.argmax(values, axis=1)
    a, b = values[:, 0], values[:, 1]
    return ((b > a) | (np.isnan(b) & ~np.isnan(a))).astype(np.int64)


def _check_names(mv: ModelVersion, names: list[str]) -> None:
    for reserved in (f"predicted_{mv.label}", "_model", "_model_version"):
        if names.count(reserved) > 1:
            raise E.ProgrammingError(
                f"the input already has a column named {reserved!r}", hint="rename or exclude it"
            )


def predict_batch(
    mv: ModelVersion,
    batch: pa.RecordBatch,
    *,
    threshold: float | None = None,
    values: Any = None,
) -> pa.RecordBatch:
    """The input batch plus predicted_<label>[, predicted_<label>_probs], _model, _model_version
    (`values`: the model's output for the batch, when already computed)."""
    import numpy as np

    predicted, values = _predicted(mv, batch, threshold, values)
    n = batch.num_rows
    out_name = f"predicted_{mv.label}"
    arrays = [*batch.columns, predicted]
    names = [*batch.schema.names, out_name]
    if mv.task == "classification":
        k = len(mv.classes)
        class_names = pa.array([str(c) for c in mv.classes], pa.string())
        structs = pa.StructArray.from_arrays(
            [class_names.take(np.tile(np.arange(k, dtype=np.int64), n)), values.reshape(-1)],
            names=["label", "prob"],
        )
        offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
        arrays.append(pa.ListArray.from_arrays(offsets, structs))
        names.append(f"{out_name}_probs")
    arrays.append(pa.repeat(pa.scalar(mv.name, pa.string()), n))
    names.append("_model")
    arrays.append(pa.repeat(pa.scalar(mv.version, pa.int64()), n))
    names.append("_model_version")
    _check_names(mv, names)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def score_batch(
    mv: ModelVersion,
    batch: pa.RecordBatch,
    *,
    threshold: float | None = None,
    values: Any = None,
) -> pa.RecordBatch:
    """The input batch plus predicted_<label> and, for a classifier, the probability of each
    class i as float64 column PROB_PREFIX<i>: output_sql() makes predict_batch()'s columns of it
    (the constant and nested columns are cheaper to build in DuckDB than to hand over)."""
    predicted, values = _predicted(mv, batch, threshold, values)
    arrays = [*batch.columns, predicted]
    names = [*batch.schema.names, f"predicted_{mv.label}"]
    if mv.task == "classification":
        for i in range(values.shape[1]):
            arrays.append(pa.array(values[:, i]))
            names.append(f"{PROB_PREFIX}{i}")
    _check_names(mv, [*names, "_model", "_model_version"])
    if any(n.startswith(PROB_PREFIX) for n in batch.schema.names):
        raise E.ProgrammingError(f"input column names cannot start with {PROB_PREFIX!r}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def output_sql(mv: ModelVersion, relation: str) -> str:
    """A query turning score_batch()'s rows in `relation` into predict_batch()'s columns."""
    from lakesql.engine.duckdb import literal, quote

    constants = f"{literal(mv.name)} AS _model, CAST({int(mv.version)} AS BIGINT) AS _model_version"
    if mv.task != "classification":
        return f"SELECT *, {constants} FROM {relation}"
    probs = [quote(f"{PROB_PREFIX}{i}") for i in range(len(mv.classes))]
    items = ", ".join(
        f"{{'label': {literal(str(c))}, 'prob': {p}}}"
        for c, p in zip(mv.classes, probs, strict=True)
    )
    name = quote(f"predicted_{mv.label}_probs")
    return (
        f"SELECT * EXCLUDE ({', '.join(probs)}), [{items}] AS {name}, {constants} FROM {relation}"
    )


def predict_reader(
    mv: ModelVersion,
    reader: pa.RecordBatchReader,
    *,
    threshold: float | None = None,
    score: Any = None,
    model_rows: int = 1_000_000,
) -> pa.Table:
    """Score every batch of `reader`; returns the scored rows, made by `score` (default
    predict_batch), in the reader's batches.

    A thread reads the next batches while up to PREP_THREADS threads prepare the ones read, each
    into its rows of one matrix; the model is called once per `model_rows` rows (a call of a
    multi-threaded model has a fixed cost, large on a busy machine).
    """
    import numpy as np

    fn = score or predict_batch
    width = len(mv.prep.outputs)
    matrix: Any = None
    group: list[pa.RecordBatch] = []
    pending: list[Future[Any]] = []
    filled = 0
    out: list[pa.RecordBatch] = []
    workers = ThreadPoolExecutor(PREP_THREADS, thread_name_prefix="lakesql-prep")

    def flush() -> None:
        nonlocal filled
        for job in pending:  # the group's rows are all in the matrix
            job.result()
        pending.clear()
        if not group:
            return
        X = matrix[:filled] if filled < len(matrix) else matrix
        # float64 and column-major once for the group: each batch's slice of a column is then
        # handed to Arrow without a copy
        values = np.asarray(mv.matrix_values(np.asfortranarray(X)), dtype=np.float64, order="F")
        start = 0
        for b in group:
            out.append(fn(mv, b, threshold=threshold, values=values[start : start + b.num_rows]))
            start += b.num_rows
        group.clear()
        filled = 0

    batches = read_ahead(reader)
    following = next(batches, None)
    try:
        while following is not None:
            batch, following = following, next(batches, None)
            n = batch.num_rows
            if not n:
                continue
            if n > model_rows:  # a batch larger than a group: on its own
                flush()
                out.append(fn(mv, batch, threshold=threshold))
                continue
            if filled + n > model_rows:
                flush()
            if matrix is None:  # as many rows as a model call takes, or as the rows left
                rows = model_rows if following is not None else n
                matrix = np.empty((rows, width), dtype=np.float64, order="F")
            pending.append(workers.submit(mv.prep.matrix, batch, matrix[filled : filled + n]))
            group.append(batch)
            filled += n
        flush()
    finally:
        batches.close()  # stops the reading thread when leaving early
        workers.shutdown(wait=True, cancel_futures=True)
    if not out:
        empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
        return pa.Table.from_batches([fn(mv, empty, threshold=threshold)])
    return pa.Table.from_batches(out)


def read_ahead(reader: pa.RecordBatchReader, depth: int = 2) -> Generator[pa.RecordBatch]:
    """The batches of `reader`, the next ones read by a thread while the caller uses this one
    (reading a DuckDB result releases the GIL, as do numpy and the models)."""
    import queue

    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                q.put(batch)
        except BaseException as e:  # handed to the caller
            q.put(e)
            return
        q.put(done)

    thread = threading.Thread(target=work, name="lakesql-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a put() so the thread sees `stop`
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
