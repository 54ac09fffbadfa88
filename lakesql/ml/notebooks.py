"""Notebooks written with every model version, as Databricks AutoML writes them.

``profile.ipynb`` summarises the training data; ``trials/trial_<n>.ipynb`` rebuilds one trial in
plain Python from the pinned Delta versions and prints its validation metric.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

MAX_TRIAL_NOTEBOOKS = 200


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def write_profile(
    path: Path, df: Any, *, label: str, task: str, model: str, version_hint: str
) -> None:
    """profile.ipynb: per-column statistics, label distribution, association with the label, plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat
    import pandas as pd
    from nbformat import v4

    rows = []
    for col in df.columns:
        s = df[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        row: dict[str, Any] = {
            "column": col,
            "type": str(s.dtype),
            "nulls": int(s.isna().sum()),
            "distinct": int(s.nunique(dropna=True)),
        }
        if numeric:
            q = s.quantile([0.25, 0.5, 0.75])
            row.update(
                min=s.min(), max=s.max(), mean=s.mean(), p25=q.iloc[0], p50=q.iloc[1], p75=q.iloc[2]
            )
        else:
            top = s.astype("string").value_counts().head(3)
            row["top_values"] = ", ".join(f"{k} ({v})" for k, v in top.items())
        if col != label and numeric:
            y = df[label]
            if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
                row["association"] = f"corr {s.corr(y.astype('float64')):.3f}"
            else:
                means = s.groupby(y.astype("string")).mean()
                row["association"] = "mean by class: " + ", ".join(
                    f"{k}={v:.3g}" for k, v in means.items()
                )
        rows.append(row)
    stats = pd.DataFrame(rows)
    nb = v4.new_notebook()
    nb.cells.append(
        v4.new_markdown_cell(
            f"# Data profile: model `{model}` {version_hint}\n\n{len(df)} rows, {len(df.columns)} columns, label `{label}` ({task})."
        )
    )
    cell = v4.new_code_cell("stats  # summary statistics of the training data")
    cell.outputs = [
        v4.new_output(
            "execute_result",
            data={
                "text/html": stats.to_html(index=False),
                "text/plain": stats.to_string(index=False),
            },
            execution_count=1,
        )
    ]
    nb.cells.append(cell)
    fig, ax = plt.subplots(figsize=(5, 3))
    y = df[label]
    if task == "classification":
        y.astype("string").value_counts().sort_index().plot.bar(ax=ax)
        dist = y.astype("string").value_counts().to_string()
    else:
        y.astype("float64").plot.hist(ax=ax, bins=30)
        dist = y.describe().to_string()
    ax.set_title(f"label: {label}")
    cell = v4.new_code_cell("label distribution")
    cell.outputs = [
        v4.new_output("display_data", data={"image/png": _png(fig), "text/plain": dist})
    ]
    plt.close(fig)
    nb.cells.append(cell)
    numeric_cols = [
        c
        for c in df.columns
        if c != label
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ][:6]
    if numeric_cols:
        fig, axes = plt.subplots(1, len(numeric_cols), figsize=(3 * len(numeric_cols), 2.5))
        for ax, col in zip(
            list(axes) if len(numeric_cols) > 1 else [axes], numeric_cols, strict=True
        ):
            df[col].astype("float64").plot.hist(ax=ax, bins=20)
            ax.set_title(col, fontsize=8)
        cell = v4.new_code_cell("feature distributions")
        cell.outputs = [
            v4.new_output("display_data", data={"image/png": _png(fig), "text/plain": "histograms"})
        ]
        plt.close(fig)
        nb.cells.append(cell)
    nbformat.write(nb, path)


TRIAL_CODE = """import json
import lakesql
from lakesql.ml import automl, backends, metrics
from lakesql.ml.prep import Prep

WAREHOUSE = {warehouse!r}
DATA_SQL = {data_sql!r}      # every table pinned to the Delta version the model read
OPTIONS = json.loads({options!r})
LABEL, TASK, METRIC = {label!r}, {task!r}, {metric!r}
LEARNER, CONFIG = {learner!r}, json.loads({config!r})

with lakesql.connect(WAREHOUSE) as con:
    df = con.cursor().execute(DATA_SQL).fetchdf()
df = df[df[LABEL].notna()].reset_index(drop=True)
prep = Prep(label=LABEL, task=TASK)
if TASK == "classification":
    prep.fit_label(df[LABEL], OPTIONS["pos_label"])
else:
    df[LABEL] = df[LABEL].astype("float64")
split = automl.make_split(df, TASK, LABEL, OPTIONS)
exclude = {exclude!r}
prep.fit(df.iloc[split.train], exclude=exclude)
X_train, X_valid = prep.transform(df.iloc[split.train]), prep.transform(df.iloc[split.valid])
y_train = prep.encode_label(df[LABEL].iloc[split.train])
y_valid = prep.encode_label(df[LABEL].iloc[split.valid])
estimator = backends.fit_trial(LEARNER, TASK, CONFIG, X_train, y_train, n_jobs={n_jobs}, seed=OPTIONS["seed"])
values = estimator.predict_proba(X_valid) if TASK == "classification" else estimator.predict(X_valid)
scores = (metrics.classification_metrics(y_valid, values, len(prep.classes)) if TASK == "classification"
          else metrics.regression_metrics(y_valid, values))
print(f"validation {{METRIC}}: {{scores[METRIC]:.10f}}")
print(f"validation loss: {{metrics.loss(METRIC, scores[METRIC]):.10f}}")
"""


FORECAST_TRIAL_CODE = """import json
import lakesql
from lakesql.ml import forecast, metrics

WAREHOUSE = {warehouse!r}
DATA_SQL = {data_sql!r}      # every table pinned to the Delta version the model read
OPTIONS = json.loads({options!r})
LABEL, METRIC = {label!r}, {metric!r}
LEARNER, CONFIG = {learner!r}, json.loads({config!r})

with lakesql.connect(WAREHOUSE) as con:
    df = con.cursor().execute(DATA_SQL).fetchdf()
# forecasts the validation window step by step, as the search scored it
scores = forecast.trial_scores(df, label=LABEL, opts=OPTIONS, learner=LEARNER, config=CONFIG, n_jobs={n_jobs})
print(f"validation {{METRIC}}: {{scores[METRIC]:.10f}}")
print(f"validation loss: {{metrics.loss(METRIC, scores[METRIC]):.10f}}")
"""


def write_trials(
    folder: Path,
    trials: list[dict[str, Any]],
    *,
    warehouse: str,
    data_sql: str,
    options: dict[str, Any],
    label: str,
    task: str,
    metric: str,
    exclude: list[str],
    n_jobs: int,
) -> None:
    """One notebook per trial (the best one always, the others up to MAX_TRIAL_NOTEBOOKS)."""
    import nbformat
    from nbformat import v4

    folder.mkdir(parents=True, exist_ok=True)
    keep = sorted(trials, key=lambda t: t["valid_loss"])[:MAX_TRIAL_NOTEBOOKS]
    for t in trials:
        if t not in keep:
            continue
        name = f"trial_{t['trial']:04d}.ipynb"
        t["notebook"] = f"trials/{name}"
        best = " (best)" if t.get("is_best") else ""
        nb = v4.new_notebook()
        nb.cells.append(
            v4.new_markdown_cell(
                f"# Trial {t['trial']}{best}: `{t['learner']}`\n\nLogged validation loss: `{t['valid_loss']:.10f}` "
                f"(metric `{metric}`). Running this notebook trains the same configuration on the same rows and prints it. "
                f"(FLAML stops a trial early when the search budget runs out; the loss printed here is that of the full configuration.)"
            )
        )
        template = FORECAST_TRIAL_CODE if task == "forecast" else TRIAL_CODE
        nb.cells.append(
            v4.new_code_cell(
                template.format(
                    warehouse=warehouse,
                    data_sql=data_sql,
                    options=json.dumps(options),
                    label=label,
                    task=task,
                    metric=metric,
                    learner=t["learner"],
                    config=json.dumps(t["config"]),
                    exclude=exclude,
                    n_jobs=n_jobs,
                )
            )
        )
        nbformat.write(nb, folder / name)
