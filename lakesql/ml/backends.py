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


_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


def load(folder: Path) -> Loaded:
    """Load the model written by :func:`save` (no pickle, allow-listed skops types only)."""
    try:
        meta = json.loads((folder / "model.json").read_text())
        path = folder / meta["file"]
        fam = meta["family"]
        if path.resolve().parent != folder.resolve():
            raise OperationalError(f"{folder / 'model.json'} names a file outside its folder")
        if "sha256" in meta and file_digest(path) != meta["sha256"]:
            raise OperationalError(
                f"{path} was changed after the model was trained (its SHA-256 differs)",
                hint="train the model again, or DROP MODEL ... VERSION n",
            )
    except OperationalError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise OperationalError(f"the model files in {folder} cannot be read: {e}") from e
    try:
        if fam == "xgboost":
            import xgboost as xgb

            cls = xgb.XGBClassifier if meta["task"] == "classification" else xgb.XGBRegressor
            model: Any = cls()
            model.load_model(path)
        elif fam == "lightgbm":
            import lightgbm as lgb

            model = lgb.Booster(model_file=str(path))
        elif fam == "sklearn":
            import skops.io as sio

            untrusted = sio.get_untrusted_types(file=path)
            bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
            if bad:
                raise OperationalError(
                    f"refusing to load {path}: it holds types outside the allow-list: {bad}"
                )
            model = sio.load(path, trusted=untrusted)
        else:
            raise OperationalError(f"unknown model family {fam!r} in {folder}")
    except OperationalError:
        raise
    except Exception as e:
        raise OperationalError(f"the model files in {folder} cannot be loaded: {e}") from e
    return Loaded(fam, meta["task"], model, int(meta.get("n_classes") or 0))
