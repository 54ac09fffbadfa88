"""Scoring: load a version once per session, replay its preparation, predict in Arrow batches."""

from __future__ import annotations

import json
import threading
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
        X = self.prep.matrix(batch)
        if self.model.family == "sklearn":  # fitted on a frame: it checks the feature names
            import pandas as pd

            X = pd.DataFrame(X, columns=self.prep.outputs, copy=False)
        return self.model.predict_values(X)


_CACHE: dict[tuple[str, str, int, str], ModelVersion] = {}
_LOCK = threading.Lock()


def load(
    wh: Warehouse, name: str, version: int | None = None, alias: str | None = None
) -> ModelVersion:
    """The model version a reference means, loaded once per process and cached by version."""
    from lakesql.ml import backends
    from lakesql.ml.prep import Prep

    v = registry.resolve_version(wh, name, version, alias)
    doc = registry.get_version(wh, name, v)
    if doc["task"] == "forecast":
        raise E.ProgrammingError(
            f"model {name!r} forecasts future periods; it does not score rows",
            hint=f"use ML.FORECAST(MODEL {name} [, horizon => n])",
        )
    key = (
        str(wh.root),
        name.lower(),
        v,
        str(doc.get("created_at")),
    )  # a re-created v1 is another model
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    folder = registry.version_dir(wh, name, v)
    if not folder.is_dir():
        raise E.OperationalError(
            f"the files of model {name!r} version {v} are missing ({folder})",
            hint="DROP MODEL ... VERSION to remove the entry",
        )
    try:
        prep = Prep.from_dict(json.loads((folder / "prep.json").read_text()))
    except (OSError, ValueError, KeyError) as e:
        raise E.OperationalError(
            f"the preparation of model {name!r} version {v} cannot be read: {e}"
        ) from e
    loaded = ModelVersion(name.lower(), v, doc, prep, backends.load(folder), folder)
    with _LOCK:
        _CACHE[key] = loaded
    return loaded


def forget(wh: Warehouse, name: str) -> None:
    with _LOCK:
        for key in [k for k in _CACHE if k[0] == str(wh.root) and k[1] == name.lower()]:
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


def predict_batch(
    mv: ModelVersion, batch: pa.RecordBatch, *, threshold: float | None = None
) -> pa.RecordBatch:
    """The input batch plus predicted_<label>[, predicted_<label>_probs], _model, _model_version."""
    import numpy as np

    if batch.num_rows:
        values = mv.batch_values(batch)
    elif mv.task == "classification":
        values = np.zeros((0, max(1, len(mv.classes))))
    else:
        values = np.zeros(0)  # a 1-d column, as predict_values returns for regression
    n = batch.num_rows
    arrays = list(batch.columns)
    names = list(batch.schema.names)
    out_name = f"predicted_{mv.label}"
    if mv.task == "classification":
        classes = mv.classes
        if threshold is not None:
            if len(classes) != 2:
                raise E.ProgrammingError("threshold applies to binary classification models only")
            codes = (values[:, 1] >= threshold).astype(int)
        else:
            codes = np.argmax(values, axis=1) if n else np.zeros(0, dtype=int)
        arrays.append(_labels(classes, codes))
        names.append(out_name)
        k = len(classes)
        flat = pa.array(np.asarray(values, dtype=np.float64).reshape(-1))
        class_names = pa.array([str(c) for c in classes], pa.string())
        structs = pa.StructArray.from_arrays(
            [class_names.take(np.tile(np.arange(k, dtype=np.int64), n)), flat],
            names=["label", "prob"],
        )
        offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
        arrays.append(pa.ListArray.from_arrays(offsets, structs))
        names.append(f"{out_name}_probs")
    else:
        arrays.append(pa.array(np.asarray(values, dtype=np.float64)))
        names.append(out_name)
    arrays.append(pa.repeat(pa.scalar(mv.name, pa.string()), n))
    names.append("_model")
    arrays.append(pa.repeat(pa.scalar(mv.version, pa.int64()), n))
    names.append("_model_version")
    for reserved in (out_name, "_model", "_model_version"):
        if names.count(reserved) > 1:
            raise E.ProgrammingError(
                f"the input already has a column named {reserved!r}", hint="rename or exclude it"
            )
    return pa.RecordBatch.from_arrays(arrays, names=names)


def predict_reader(
    mv: ModelVersion, reader: pa.RecordBatchReader, *, threshold: float | None = None
) -> pa.Table:
    """Score every batch of `reader`; returns the scored rows."""
    batches = []
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        batches.append(predict_batch(mv, batch, threshold=threshold))
    if not batches:
        empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
        return pa.Table.from_batches([predict_batch(mv, empty, threshold=threshold)])
    return pa.Table.from_batches(batches)
