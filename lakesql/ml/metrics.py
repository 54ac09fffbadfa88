"""Metrics, computed with scikit-learn; FLAML's losses are derived from them the same way."""

from __future__ import annotations

from typing import Any

# metric -> (higher is better)
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "accuracy": True,
    "f1": True,
    "r2": True,
    "explained_variance": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "mse": False,
    "mape": False,
    "mase": False,
    "smape": False,
    "wape": False,
    "precision": True,
    "recall": True,
}


def classification_metrics(y: Any, proba: Any, n_classes: int) -> dict[str, float]:
    """accuracy, precision, recall, f1, log_loss, roc_auc of class probabilities `proba`."""
    import numpy as np
    from sklearn import metrics as m

    pred = np.argmax(proba, axis=1)
    labels = list(range(n_classes))
    avg = "binary" if n_classes == 2 else "macro"
    out = {
        "accuracy": float(m.accuracy_score(y, pred)),
        "precision": float(
            m.precision_score(
                y, pred, average=avg, labels=labels if avg == "macro" else None, zero_division=0
            )
        ),
        "recall": float(
            m.recall_score(
                y, pred, average=avg, labels=labels if avg == "macro" else None, zero_division=0
            )
        ),
        "f1": float(
            m.f1_score(
                y, pred, average=avg, labels=labels if avg == "macro" else None, zero_division=0
            )
        ),
        "log_loss": float(m.log_loss(y, proba, labels=labels)),
    }
    try:
        if n_classes == 2:
            out["roc_auc"] = float(m.roc_auc_score(y, proba[:, 1]))
        else:
            out["roc_auc"] = float(m.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
    except ValueError:
        out["roc_auc"] = float("nan")  # a single class in y
    return out


def regression_metrics(y: Any, pred: Any) -> dict[str, float]:
    """mae, mse, rmse, r2, mape, explained_variance."""
    import numpy as np
    from sklearn import metrics as m

    mse = float(m.mean_squared_error(y, pred))
    return {
        "mae": float(m.mean_absolute_error(y, pred)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": float(m.r2_score(y, pred)),
        "mape": float(m.mean_absolute_percentage_error(y, pred)),
        "explained_variance": float(m.explained_variance_score(y, pred)),
    }


def mase_scale(y: Any, season: int) -> float:
    """The in-sample MAE of the seasonal-naive forecast (naive when the series is shorter than
    two seasons): MASE's denominator. Never 0 (a constant series scales by its mean, else 1)."""
    import numpy as np

    y = np.asarray(y, dtype="float64")
    m = season if season > 1 and len(y) > season + 1 else 1
    scale = float(np.mean(np.abs(y[m:] - y[:-m]))) if len(y) > m else 0.0
    if not scale > 0:
        scale = float(np.mean(np.abs(y))) or 1.0
    return scale


def forecast_metrics(truth: Any, pred: Any, scales: Any) -> dict[str, float]:
    """Forecast errors of several series: `truth` and `pred` are (series, periods) arrays,
    `scales` each series' MASE scale (:func:`mase_scale` of its training values).

    mase and smape are means over series of each series' value (the M4 convention; smape as a
    fraction, 0 to 2), wape = sum |error| / sum |truth|; mae, rmse, mape and r2 over all values.
    """
    import numpy as np

    truth = np.asarray(truth, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    if truth.ndim == 1:
        truth, pred = truth[None, :], pred[None, :]
    if not np.all(np.isfinite(pred)):
        raise ValueError("non-finite forecasts")
    err = np.abs(truth - pred)
    denom = np.abs(truth) + np.abs(pred)
    smape = np.where(denom > 0, 2 * err / np.where(denom > 0, denom, 1), 0.0)
    total = float(np.sum(np.abs(truth)))
    out = {
        "mase": float(np.mean(np.mean(err, axis=1) / np.asarray(scales, dtype="float64"))),
        "smape": float(np.mean(np.mean(smape, axis=1))),
        "wape": float(np.sum(err) / total) if total > 0 else float("inf"),
    }
    out.update(regression_metrics(truth.reshape(-1), pred.reshape(-1)))
    return out


def loss(metric: str, value: float) -> float:
    """FLAML's convention: a loss to minimise."""
    if metric in ("roc_auc", "accuracy", "f1", "r2"):
        return 1.0 - value
    return value
