"""Per-row feature attributions that sum exactly to the model's raw prediction.

xgboost and lightgbm report their own (TreeSHAP) contributions. For scikit-learn tree ensembles
the attribution of a split is the change in the node value it causes along the row's decision
path (Saabas), which also sums exactly to the prediction; linear models attribute coef * x.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lakesql import errors as E


def raw_and_contributions(
    model: Any, X: Any, task: str, n_classes: int, target: Any
) -> tuple[Any, Any, Any]:
    """(raw prediction, contributions (n, features), baseline (n,)) for class index `target` per row.

    Args:
        model: lakesql.ml.backends.Loaded.
        X: prepared features (pandas DataFrame).
        target: per-row class index explained (classification), ignored otherwise.
    """
    fam = model.family
    est = model.model
    n, f = X.shape
    rows = np.arange(n)
    if fam in ("xgboost", "lightgbm"):
        contrib = np.asarray(model.contributions(X))
        if task == "classification" and n_classes > 2:
            contrib = contrib.reshape(n, n_classes, f + 1)[rows, target, :]
        elif task == "classification" and fam == "xgboost" and contrib.ndim == 3:
            contrib = contrib[:, -1, :]
        return contrib.sum(axis=1), contrib[:, :f], contrib[:, f]
    name = type(est).__name__
    if hasattr(est, "estimators_") and hasattr(est.estimators_[0], "tree_"):
        return _forest(est, X.to_numpy(dtype=np.float64), task, target)
    if name.startswith("HistGradientBoosting"):
        return _histgb(est, X.to_numpy(dtype=np.float64), task, n_classes, target)
    if hasattr(est, "coef_"):
        coef = np.atleast_2d(est.coef_)
        intercept = np.atleast_1d(est.intercept_)
        x = X.to_numpy(dtype=np.float64)
        if task == "classification" and coef.shape[0] > 1:
            contrib = x * coef[target]
            base = intercept[target]
        else:
            contrib = x * coef[0]
            base = np.full(n, intercept[0])
        return contrib.sum(axis=1) + base, contrib, base
    raise E.NotSupportedError(f"no attribution method for {name}")


def _forest(est: Any, x: Any, task: str, target: Any) -> tuple[Any, Any, Any]:
    n, f = x.shape
    rows = np.arange(n)
    contrib = np.zeros((n, f))
    base = np.zeros(n)
    for tree in est.estimators_:
        t = tree.tree_
        values = t.value[:, 0, :]  # (nodes, classes or 1)
        if task == "classification":
            values = values / values.sum(axis=1, keepdims=True)
            node_value = values[:, target].T if np.ndim(target) else values[:, target]
        else:
            node_value = np.repeat(values[:, 0][None, :], n, axis=0)
        node_value = np.asarray(node_value)
        if node_value.ndim == 1:
            node_value = np.repeat(node_value[None, :], n, axis=0)
        path = tree.decision_path(x).tocoo()
        parent = np.full(t.node_count, -1)
        for p in range(t.node_count):
            for c in (t.children_left[p], t.children_right[p]):
                if c >= 0:
                    parent[c] = p
        for s, node in zip(path.row, path.col, strict=True):
            p = parent[node]
            if p < 0:
                base[s] += node_value[s, node]
            else:
                contrib[s, t.feature[p]] += node_value[s, node] - node_value[s, p]
    k = len(est.estimators_)
    contrib /= k
    base /= k
    del rows
    return contrib.sum(axis=1) + base, contrib, base


def _histgb(est: Any, x: Any, task: str, n_classes: int, target: Any) -> tuple[Any, Any, Any]:
    n, f = x.shape
    contrib = np.zeros((n, f))
    baseline = np.asarray(est._baseline_prediction).reshape(-1)
    multi = task == "classification" and n_classes > 2
    base = baseline[target] if multi else np.full(n, baseline[0])
    base = np.array(base, dtype=np.float64)
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            rows = np.arange(n) if not multi else np.flatnonzero(np.asarray(target) == k)
            if rows.size == 0:
                continue
            node = np.zeros(rows.size, dtype=np.int64)
            base[rows] += nodes["value"][0]
            active = ~nodes["is_leaf"][node].astype(bool)
            while active.any():
                idx = np.flatnonzero(active)
                cur = node[idx]
                feat = nodes["feature_idx"][cur]
                vals = x[rows[idx], feat]
                go_left = np.where(
                    np.isnan(vals),
                    nodes["missing_go_to_left"][cur].astype(bool),
                    vals <= nodes["num_threshold"][cur],
                )
                nxt = np.where(go_left, nodes["left"][cur], nodes["right"][cur]).astype(np.int64)
                np.add.at(contrib, (rows[idx], feat), nodes["value"][nxt] - nodes["value"][cur])
                node[idx] = nxt
                active = ~nodes["is_leaf"][node].astype(bool)
    return contrib.sum(axis=1) + base, contrib, base


def raw_prediction(model: Any, X: Any, task: str, n_classes: int, target: Any) -> Any:
    """The model's own raw prediction (margin, log-odds, probability or value) for checking."""
    est = model.model
    fam = model.family
    n = X.shape[0]
    rows = np.arange(n)
    if fam == "xgboost":
        margin = est.predict(X, output_margin=True)
        return margin[rows, target] if margin.ndim == 2 else margin
    if fam == "lightgbm":
        raw = est.predict(X.to_numpy(), raw_score=True)
        return raw[rows, target] if raw.ndim == 2 else raw
    if hasattr(est, "estimators_"):
        if task == "classification":
            return est.predict_proba(X)[rows, target]
        return est.predict(X)
    if type(est).__name__.startswith("HistGradientBoosting"):
        raw = est._raw_predict(X.to_numpy(dtype=np.float64))
        return raw[rows, target] if raw.shape[1] > 1 else raw[:, 0]
    if hasattr(est, "decision_function") and task == "classification":
        d = est.decision_function(X)
        return d[rows, target] if d.ndim == 2 else d
    return est.predict(X)
