"""Model back-ends behind one interface: fit (FLAML estimator classes), save, load, predict, explain.

Persistence never uses pickle: xgboost and lightgbm in their native formats, scikit-learn
estimators with skops (loaded only when every type in the file is on an allow-list).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lakesql.errors import InternalError, OperationalError

REFIT_BUDGET = 1e9  # seconds: a budget that never binds
BASELINE = "histgb_default"  # scikit-learn's HistGradientBoosting with its defaults


class Model(Protocol):
    def predict_values(self, X: Any) -> Any: ...  # regression values or class probabilities


def flaml_estimator(learner: str, task: str, config: dict[str, Any], n_jobs: int) -> Any:
    """The FLAML estimator object for one trial's configuration (what FLAML itself trains)."""
    from flaml.automl.task.factory import task_factory

    flaml_task = "classification" if task == "classification" else "regression"
    cls = task_factory(flaml_task).estimators[learner]  # type: ignore[attr-defined]  # FLAML's learner table
    return cls(task=flaml_task, n_jobs=n_jobs, **config)


def fit_trial(
    learner: str, task: str, config: dict[str, Any], X: Any, y: Any, *, n_jobs: int, seed: int
) -> Any:
    """Train one configuration; returns the library's estimator object."""
    if learner == BASELINE:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = (
            HistGradientBoostingClassifier
            if task == "classification"
            else HistGradientBoostingRegressor
        )
        from threadpoolctl import threadpool_limits

        est = cls(random_state=seed)
        # One OpenMP thread: on a busy machine its spinning threads stall the fit for seconds, and
        # the candidate is small next to the search's budget. Results do not depend on the count.
        with threadpool_limits(limits=1, user_api="openmp"):
            est.fit(X, y)
        return est
    wrapper = flaml_estimator(learner, task, config, n_jobs)
    # With a budget FLAML trains boosted trees in steps (timing 1 iteration, then a few, then the
    # rest); the steps draw random numbers, so a refit must take the same path to match exactly.
    wrapper.fit(X, y, budget=REFIT_BUDGET)
    return wrapper.estimator


def family(estimator: Any) -> str:
    module = type(estimator).__module__
    if module.startswith("xgboost"):
        return "xgboost"
    if module.startswith("lightgbm"):
        return "lightgbm"
    if module.startswith("sklearn"):
        return "sklearn"
    raise InternalError(f"no back-end for {type(estimator).__name__}")


@dataclass
class Loaded:
    """A model loaded from disk: predicts class probabilities or values."""

    family: str
    task: str
    model: Any
    n_classes: int

    def predict_values(self, X: Any) -> Any:
        try:
            return self._predict_values(X)
        except Exception as e:  # ValueError, NotFittedError, a library's own error
            raise OperationalError(
                f"the model cannot score the rows: {type(e).__name__}: {e}"
            ) from e

    def _predict_values(self, X: Any) -> Any:
        import numpy as np

        if self.family == "lightgbm":
            out = self.model.predict(X.to_numpy() if hasattr(X, "to_numpy") else X)
            if self.task == "classification" and self.n_classes == 2:
                p1 = out
                out = np.empty((len(p1), 2), order="F")  # column-major: columns copy-free
                np.subtract(1.0, p1, out=out[:, 0])
                out[:, 1] = p1
            return out
        if self.task == "classification":
            return self.model.predict_proba(X)
        return self.model.predict(X)

    def contributions(self, X: Any) -> Any:
        """Per-feature contributions plus the bias as the last column (raw margin scale)."""
        if self.family == "xgboost":
            import xgboost as xgb

            return self.model.get_booster().predict(xgb.DMatrix(X), pred_contribs=True)
        if self.family == "lightgbm":
            return self.model.predict(X.to_numpy(), pred_contrib=True)
        raise OperationalError("this model family has no native contributions")


def save(estimator: Any, folder: Path, *, task: str, n_classes: int) -> dict[str, Any]:
    """Write the model into `folder`; returns the description stored with the version."""
    fam = family(estimator)
    folder.mkdir(parents=True, exist_ok=True)
    if fam == "xgboost":
        path = folder / "model.ubj"
        estimator.save_model(path)
    elif fam == "lightgbm":
        path = folder / "model.txt"
        estimator.booster_.save_model(str(path))
    else:
        import skops.io as sio

        path = folder / "model.skops"
        sio.dump(estimator, path)
    meta = {
        "family": fam,
        "file": path.name,
        "sha256": file_digest(path),
        "class": f"{type(estimator).__module__}.{type(estimator).__name__}",
        "task": task,
        "n_classes": n_classes,
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2))
    return meta


def file_digest(path: Path) -> str:
    """SHA-256 of a file: recorded when a model is saved, checked when it is loaded."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# Every type a model file written by save() holds, and nothing else: the estimators lakesql trains
# (FLAML's rf, extra_tree, histgb, lrl1/lrl2, enet, the default HistGradientBoosting baseline, the
# forecast baselines' LinearRegression), the objects inside them, and plain data. No function, no
# method, no FunctionTransformer or Pipeline: a file holding anything else is refused before skops
# builds a single object. (Found by saving each estimator and walking its schema.json.)
SKOPS_TYPES = frozenset(
    {
        # containers and scalars (skops's DictNode, ListNode, TupleNode, JsonNode, TypeNode)
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        # numpy arrays, scalars, dtypes and random generators
        "numpy.ndarray",
        "numpy.dtype",
        *(
            f"numpy.{t}"
            for t in (
                "bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 "
                "float64 str_ object_"
            ).split()
        ),
        *(
            f"numpy.dtypes.{t}DType"
            for t in (
                "Bool Int8 Int16 Int32 Int64 UInt8 UInt16 UInt32 UInt64 Float16 Float32 "
                "Float64 Str Object"
            ).split()
        ),
        "numpy.random._generator.Generator",
        "numpy.random._pcg64.PCG64",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
        # the estimators
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._coordinate_descent.ElasticNet",
        "sklearn.linear_model._base.LinearRegression",
        # what they hold
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.link.Interval",
    }
)
# skops node kinds that build data or an allow-listed object; never FunctionNode, MethodNode,
# PartialNode, OperatorFuncNode (callables) or others.
SKOPS_LOADERS = frozenset(
    {
        "ObjectNode",
        "DictNode",
        "ListNode",
        "TupleNode",
        "JsonNode",
        "TypeNode",
        "NdArrayNode",
        "DTypeNode",
        "RandomGeneratorNode",
        "RandomStateNode",
        "LossNode",
        "TreeNode",
        "BytesNode",
        "SetNode",
        "SliceNode",
    }
)
_SCHEMA_LIMIT = 64 << 20  # bytes of schema.json read to check a model file


class ModelFileError(OperationalError):
    """A model's files cannot be loaded: missing, changed, damaged or holding refused types."""


def skops_types(path: Path) -> list[tuple[str, str]]:
    """(module.class, skops loader) of every node of a skops file, read from its schema.json
    (no object is built).

    Raises:
        ModelFileError: not a skops file, or an unreadable schema.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("schema.json")
            if info.file_size > _SCHEMA_LIMIT:
                raise ModelFileError(f"{path} has a schema of {info.file_size} bytes")
            schema = json.loads(z.read(info))
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RecursionError) as e:
        raise ModelFileError(f"{path} is not a model file lakesql wrote: {e}") from e
    found: list[tuple[str, str]] = []
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__loader__" in node or "__class__" in node:
                found.append(
                    (
                        f"{node.get('__module__')}.{node.get('__class__')}",
                        str(node.get("__loader__")),
                    )
                )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def check_skops(path: Path) -> list[str]:
    """The types of skops file `path` when every one is on the allow-list, else raise.

    Raises:
        ModelFileError: naming the refused types or node kinds.
    """
    found = skops_types(path)
    types = {t for t, _ in found}
    bad_types = sorted(types - SKOPS_TYPES)
    bad_loaders = sorted({loader for _, loader in found} - SKOPS_LOADERS)
    if bad_types or bad_loaders:
        what = ", ".join(bad_types + [f"a {n}" for n in bad_loaders])
        raise ModelFileError(
            f"refusing to load {path}: it holds what lakesql never writes in a model file: {what}",
            hint="only models trained by lakesql load; train the model again",
        )
    return sorted(types)


def load(folder: Path, *, sha256: str | None = None) -> Loaded:
    """Load the model written by :func:`save` (no pickle, allow-listed skops types only).

    `sha256`: the digest recorded in the catalog, checked besides model.json's.

    Raises:
        ModelFileError: for every way the files can be missing, changed, damaged or refused.
    """
    try:
        meta = json.loads((folder / "model.json").read_text())
        path = folder / meta["file"]
        fam = meta["family"]
        task = meta["task"]
        n_classes = int(meta.get("n_classes") or 0)
        if path.resolve().parent != folder.resolve():
            raise ModelFileError(f"{folder / 'model.json'} names a file outside its folder")
        digest = file_digest(path)
        for expected in (meta.get("sha256"), sha256):
            if expected is not None and digest != expected:
                raise ModelFileError(
                    f"{path} was changed after the model was trained (its SHA-256 differs)",
                    hint="train the model again, or DROP MODEL ... VERSION n",
                )
    except ModelFileError:
        raise
    except Exception as e:  # OSError, ValueError, KeyError, TypeError, ...
        raise ModelFileError(f"the model files in {folder} cannot be read: {e}") from e
    try:
        if fam == "xgboost":
            import xgboost as xgb

            cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
            model: Any = cls()
            model.load_model(path)
        elif fam == "lightgbm":
            import lightgbm as lgb

            model = lgb.Booster(model_file=str(path))
        elif fam == "sklearn":
            import skops.io as sio
            from sklearn.utils.validation import check_is_fitted

            trusted = check_skops(path)  # before skops builds any object
            model = sio.load(path, trusted=trusted)
            check_is_fitted(model)
        else:
            raise ModelFileError(f"unknown model family {fam!r} in {folder}")
    except ModelFileError:
        raise
    except Exception as e:  # ValueError, NotFittedError, XGBoostError, LightGBMError, ...
        raise ModelFileError(
            f"the model files in {folder} cannot be loaded: {type(e).__name__}: {e}"
        ) from e
    return Loaded(fam, task, model, n_classes)
