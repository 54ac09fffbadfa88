"""Data preparation fitted on the training rows, stored with the model, replayed at prediction.

Every feature becomes a float column: numbers are imputed (median, plus a missing indicator when
training data had gaps) and standardised; booleans become 0/1; dates and timestamps become their
parts; text and categories become frequency-ranked codes (unseen or NULL: -1). ID-like and constant
columns are dropped with a warning.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from lakesql.errors import DataError, ProgrammingError

MAX_CATEGORIES = 200
_DT_ATTR = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # stored part -> pandas name
_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid)", re.IGNORECASE)


class TrainingWarning(UserWarning):
    """Something about the training data that the user should know."""


@dataclass
class Prep:
    """A fitted preparation (JSON-serialisable through to_dict / from_dict)."""

    label: str
    task: str
    classes: list[Any] | None = None  # classification: label values, index = encoded class
    columns: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[str]:
        return [c["name"] for c in self.columns]

    @property
    def outputs(self) -> list[str]:
        out: list[str] = []
        for c in self.columns:
            out.extend(c["outputs"])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "task": self.task,
            "classes": self.classes,
            "columns": self.columns,
            "dropped": self.dropped,
            "warnings": self.warnings,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Prep:
        return Prep(
            d["label"],
            d["task"],
            d.get("classes"),
            d["columns"],
            d.get("dropped", []),
            d.get("warnings", []),
        )

    # -- fitting ------------------------------------------------------------------------------
    def warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, TrainingWarning, stacklevel=3)

    def fit(self, df: Any, *, exclude: list[str]) -> Prep:
        """Decide how to turn each column of the training rows `df` into features."""
        import pandas as pd

        n = len(df)
        for name in df.columns:
            if name == self.label:
                continue
            if name in exclude:
                self.dropped.append({"name": name, "reason": "excluded"})
                continue
            s = df[name]
            nunique = s.nunique(dropna=False)
            if nunique <= 1:
                self._drop(name, "constant")
                continue
            if pd.api.types.is_bool_dtype(s):
                self.columns.append({"name": name, "kind": "boolean", "outputs": [name]})
            elif pd.api.types.is_datetime64_any_dtype(s) or _looks_like_dates(s):
                parts = ["year", "month", "day", "dayofweek", "dayofyear"]
                times = pd.to_datetime(s, errors="coerce")
                if (times.dt.hour.fillna(0) != 0).any():
                    parts.append("hour")
                self.columns.append(
                    {
                        "name": name,
                        "kind": "datetime",
                        "parts": parts,
                        "outputs": [f"{name}__{p}" for p in parts],
                    }
                )
            elif pd.api.types.is_numeric_dtype(s):
                if (
                    pd.api.types.is_integer_dtype(s)
                    and nunique == n
                    and n >= 20
                    and (_ID_NAME.search(name) or _consecutive(s))
                ):
                    self._drop(name, "id-like (unique integer per row)")
                    continue
                values = s.astype("float64")
                fill = float(values.median()) if values.notna().any() else 0.0
                filled = values.fillna(fill)
                std = float(filled.std()) or 1.0
                spec = {
                    "name": name,
                    "kind": "numeric",
                    "fill": fill,
                    "mean": float(filled.mean()),
                    "std": std,
                    "outputs": [name],
                }
                if values.isna().any():
                    spec["missing_indicator"] = True
                    spec["outputs"] = [name, f"{name}__missing"]
                self.columns.append(spec)
            else:
                text = s.astype("string")
                if nunique >= n and n >= 20:
                    self._drop(name, "id-like (unique value per row)")
                    continue
                counts = text.value_counts(dropna=True)
                cats = [str(c) for c in counts.index[:MAX_CATEGORIES]]
                self.columns.append(
                    {"name": name, "kind": "categorical", "categories": cats, "outputs": [name]}
                )
        if not self.columns:
            raise ProgrammingError(
                "no usable feature columns remain",
                hint="dropped: " + ", ".join(f"{d['name']} ({d['reason']})" for d in self.dropped)
                if self.dropped
                else None,
            )
        return self

    def _drop(self, name: str, reason: str) -> None:
        self.dropped.append({"name": name, "reason": reason})
        self.warn(f"column {name!r} dropped: {reason}")

    def fit_label(self, y: Any, pos_label: Any = None) -> None:
        """Record the classes of a classification label."""
        values = sorted({v for v in y.tolist()}, key=lambda v: (str(type(v)), v))
        if len(values) < 2:
            raise DataError(
                f"the label {self.label!r} has a single class ({values[0]!r} ) in the training rows"
                if values
                else f"the label {self.label!r} is empty",
                hint="classification needs at least two classes",
            )
        if pos_label is not None:
            if pos_label not in values:
                raise ProgrammingError(
                    f"pos_label {pos_label!r} is not a value of {self.label!r}",
                    hint=f"values: {values[:10]}",
                )
            if len(values) != 2:
                raise ProgrammingError("pos_label applies to a binary label only")
            values = [v for v in values if v != pos_label] + [pos_label]
        self.classes = [_jsonable(v) for v in values]

    # -- applying -----------------------------------------------------------------------------
    def transform(self, df: Any) -> Any:
        """The feature matrix (pandas DataFrame of float64) for rows `df`."""
        missing = [c for c in self.inputs if c not in df.columns]
        if missing:
            raise ProgrammingError(
                f"input column(s) {', '.join(repr(m) for m in missing)} missing",
                hint="the model was trained on: " + ", ".join(self.inputs),
            )
        outputs = self.outputs
        if len(set(outputs)) == len(outputs):
            return self._transform_into_matrix(df, outputs)
        return self._transform_columns(df)

    def matrix(self, batch: Any, out: Any = None) -> Any:
        """transform() of a pyarrow RecordBatch or Table, as a numpy float64 matrix (same values),
        written into `out` (rows x outputs) when given, else into a new column-major matrix.

        Numeric columns are read from their Arrow buffers (no copy when they have no NULLs); the
        other columns, and batches whose names repeat, go through pandas as transform() does.
        """
        import numpy as np
        import pyarrow as pa

        names = batch.schema.names
        outputs = self.outputs
        if len(set(names)) != len(names) or len(set(outputs)) != len(outputs):
            X = self.transform(batch.to_pandas(split_blocks=True)).to_numpy()
            if out is None:
                return X
            out[:] = X
            return out
        missing = [c for c in self.inputs if c not in names]
        if missing:
            raise ProgrammingError(
                f"input column(s) {', '.join(repr(m) for m in missing)} missing",
                hint="the model was trained on: " + ", ".join(self.inputs),
            )
        where = {name: i for i, name in enumerate(outputs)}
        shape = (batch.num_rows, len(outputs))
        matrix = np.empty(shape, dtype=np.float64, order="F") if out is None else out
        if matrix.shape != shape:
            raise ValueError(f"the matrix to fill is {matrix.shape}, not {shape}")
        for c in self.columns:
            array = batch.column(c["name"])
            kind = c["kind"]
            if kind == "numeric" and (
                pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
            ):
                # NULLs become NaN, as in the float64 column pandas makes of them
                values = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                _standardise(values, c, matrix, where)
                continue
            frame = pa.table([array], names=[c["name"]]).to_pandas()
            single = Prep(self.label, self.task, self.classes, [c])
            part = single._transform_columns(frame)
            for name in c["outputs"]:
                matrix[:, where[name]] = part[name].astype(np.float64).to_numpy()
        return matrix

    def _transform_into_matrix(self, df: Any, outputs: list[str]) -> Any:
        """transform(), writing every feature straight into one float64 matrix (same values).

        Numeric columns held in a plain numpy dtype are prepared with numpy (the same float64
        operations pandas runs); the other columns go through the pandas path of transform().
        """
        import numpy as np
        import pandas as pd

        where = {name: i for i, name in enumerate(outputs)}
        # column-major, so the frame below takes it as its single block without a copy
        matrix = np.empty((len(df), len(outputs)), dtype=np.float64, order="F")
        for c in self.columns:
            s = df[c["name"]]
            kind = c["kind"]
            if (
                kind == "numeric"
                and isinstance(s, pd.Series)
                and isinstance(s.dtype, np.dtype)
                and s.dtype.kind in "fiu"
            ):
                _standardise(s.to_numpy(dtype=np.float64), c, matrix, where)
                continue
            single = Prep(self.label, self.task, self.classes, [c])
            part = single._transform_columns(df)
            for name in c["outputs"]:
                matrix[:, where[name]] = part[name].astype(np.float64).to_numpy()
        return pd.DataFrame(matrix, index=df.index, columns=outputs, copy=False)

    def _transform_columns(self, df: Any) -> Any:
        """The feature matrix built column by column with pandas (any output names)."""
        import numpy as np
        import pandas as pd

        out: dict[str, Any] = {}
        for c in self.columns:
            s = df[c["name"]]
            kind = c["kind"]
            try:
                if kind == "numeric":
                    values = pd.to_numeric(s, errors="raise").astype("float64")
                    if "missing_indicator" in c:
                        out[f"{c['name']}__missing"] = values.isna().astype("float64")
                    out[c["name"]] = (values.fillna(c["fill"]) - c["mean"]) / c["std"]
                elif kind == "boolean":
                    out[c["name"]] = s.map({True: 1.0, False: 0.0}).astype("float64")
                elif kind == "datetime":
                    times = pd.to_datetime(s, errors="coerce")
                    if getattr(times.dt, "tz", None) is not None:
                        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
                    for p in c["parts"]:
                        out[f"{c['name']}__{p}"] = getattr(times.dt, _DT_ATTR.get(p, p)).astype(
                            "float64"
                        )
                else:
                    codes = {v: float(i) for i, v in enumerate(c["categories"])}
                    out[c["name"]] = s.astype("string").map(codes).astype("float64").fillna(-1.0)
            except (ValueError, TypeError) as e:
                raise DataError(f"column {c['name']!r} cannot be read as {kind}: {e}") from e
        return pd.DataFrame(out, index=df.index)[self.outputs].astype(np.float64)

    def encode_label(self, y: Any) -> Any:
        import numpy as np

        if self.classes is None:
            return y.astype("float64").to_numpy()
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[_jsonable(v)] for v in y.tolist()], dtype=np.int64)

    def decode(self, codes: Any) -> list[Any]:
        assert self.classes is not None
        return [self.classes[int(i)] for i in codes]


def _standardise(values: Any, c: dict[str, Any], matrix: Any, where: dict[str, int]) -> None:
    """Write numeric column `c` of float64 `values` into its output column(s) of `matrix`."""
    import numpy as np

    col = matrix[:, where[c["name"]]]
    np.subtract(values, c["mean"], out=col)
    np.divide(col, c["std"], out=col)
    missing = np.isnan(values)
    if "missing_indicator" in c:
        matrix[:, where[f"{c['name']}__missing"]] = missing
    if missing.any():  # (fill - mean) / std, the value pandas computes for a gap
        col[missing] = (c["fill"] - c["mean"]) / c["std"]


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _consecutive(s: Any) -> bool:
    values = s.dropna().sort_values().to_numpy()
    return len(values) > 1 and bool((values[1:] - values[:-1] == 1).all())


def _looks_like_dates(s: Any) -> bool:
    import datetime as dt

    first = s.dropna().head(5).tolist()
    return bool(first) and all(isinstance(v, (dt.date, dt.datetime)) for v in first)


def leakage(features: Any, y: Any, task: str) -> list[str]:
    """Names of feature columns that predict the label perfectly on the training rows."""
    import numpy as np

    out = []
    yv = np.asarray(y)
    for col in features.columns:
        x = features[col].to_numpy()
        if task == "regression":
            if np.std(x) > 0 and np.std(yv) > 0 and abs(np.corrcoef(x, yv)[0, 1]) > 0.9999:
                out.append(col)
        else:
            import pandas as pd

            if pd.Series(yv).groupby(x).nunique().max() > 1:
                continue  # one value of the feature holds several classes
            order = np.argsort(x, kind="stable")
            changes = int(np.count_nonzero(np.diff(yv[order])))
            if changes <= len(np.unique(yv)) - 1:
                out.append(col)
    return out
