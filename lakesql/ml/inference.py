"""Models inside SQL: ML.* table functions, the PREDICT statement, scalar PREDICT()/PREDICT_PROBA().

DuckDB has no Python table functions, so before a statement runs each ``ML.<NAME>(...)`` call is
evaluated here: its input relation is run through the session (time travel and feature lookups
included), streamed in Arrow batches through the model, and the result is registered on the
statement's cursor as a view whose name (ML.PREDICT: a subquery over it) replaces the call in the
text. Scalar ``PREDICT(m, ...)`` calls become calls of an Arrow-vectorized UDF registered for that
model version.

Size: about 830 lines, just over the house's 800: one executor per ML.* table function.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot.tokens import Token, TokenType

from lakesql import errors as E
from lakesql.dialect.dialect import LakeSQL
from lakesql.dialect.tokens import matching, split_args, text_between
from lakesql.ml import predict as P
from lakesql.ml import registry

if TYPE_CHECKING:
    from lakesql.session import Session


@dataclass
class Call:
    """One ML.<NAME>(...) call: its span and parsed arguments."""

    name: str
    start: int
    end: int
    model: str | None = None
    version: int | None = None
    alias: str | None = None
    relation: str | None = None  # SQL text usable after FROM
    named: dict[str, str] = field(default_factory=dict)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


_NAME_TOKENS = (TokenType.VAR, TokenType.IDENTIFIER, TokenType.DOT)
_USAGE = (
    "ML.{0}(MODEL m [VERSION n | ALIAS a], TABLE t | (query) [, name => value]), or as generic "
    "SQL: ML.{0}('m' | 'm@n' | 'm@alias', 't' | (query) [, version => n] [, name => value])"
)


def _is_name(tokens: list[Token]) -> bool:
    """True when `tokens` spell a (dotted) name: t, main.t, "My T"."""
    return len(tokens) % 2 == 1 and all(
        (t.token_type == TokenType.DOT) == (k % 2 == 1) and t.token_type in _NAME_TOKENS
        for k, t in enumerate(tokens)
    )


def _model_spec(call: Call, text: str, sql: str, at: Token) -> None:
    """Model `m`, `m@3` (version 3) or `m@champion` (alias), written as a string."""
    name, sep, which = text.strip().partition("@")
    if not name or (sep and not which):
        raise E.ParseError(
            f"{text!r} is not a model: write 'm', 'm@version' or 'm@alias'",
            span=E.SourceSpan(sql, at.start, len(at.text) + 2),
        )
    call.model = name.strip()
    if which.strip().isdigit():
        call.version = int(which)
    elif which:
        call.alias = which.strip()


def _table_name(text: str, sql: str, at: Token) -> str:
    """The table a string argument names ('t', 'main.t', '"My T"'), as text usable after FROM."""
    try:
        tokens = LakeSQL().tokenize(text)
    except Exception:
        tokens = []
    if not _is_name(tokens):
        raise E.ParseError(
            f"{text!r} is not a table name",
            span=E.SourceSpan(sql, at.start, len(at.text) + 2),
            hint="name a table ('t', 'schema.t') or pass a query in parentheses: (SELECT ...)",
        )
    return text.strip()


def _version_arguments(call: Call, sql: str, at: Token) -> None:
    """Take `version => n` and `alias => 'a'` out of the named arguments into the call."""
    version = call.named.pop("version", None)
    alias = call.named.pop("alias", None)
    if version is None and alias is None:
        return
    if call.version is not None or call.alias is not None or (version and alias):
        raise E.ParseError(
            f"ML.{call.name} names the model's version twice",
            span=E.SourceSpan(sql, at.start, len(at.text)),
            hint="write one of 'm@n', 'm@alias', version => n, alias => 'a'",
        )
    if version is not None:
        value = _unquote(version)
        if not value.isdigit():
            raise E.OptionError(f"version => must be a version number, not {version.strip()}")
        call.version = int(value)
    if alias is not None:
        call.alias = _unquote(alias)


def _parse_call(sql: str, tokens: list[Token], ml: int, lo: int, hi: int, name: str) -> Call:
    call = Call(name, tokens[ml].start, tokens[hi].end + 1)
    for a, b in split_args(tokens, lo, hi):
        first = tokens[a]
        word = first.text.upper()
        if b - a >= 3 and tokens[a + 1].token_type == TokenType.FARROW:
            call.named[first.text.lower()] = text_between(sql, tokens, a + 2, b)
        elif b - a == 1 and first.token_type == TokenType.STRING and call.model is None:
            _model_spec(call, first.text, sql, first)
        elif b - a == 1 and first.token_type == TokenType.STRING and call.relation is None:
            call.relation = _table_name(first.text, sql, first)
        elif word not in ("MODEL", "TABLE") and _is_name(tokens[a:b]) and call.model is None:
            call.model = first.text if b - a == 1 else text_between(sql, tokens, a, b)
        elif word not in ("MODEL", "TABLE") and _is_name(tokens[a:b]) and call.relation is None:
            call.relation = text_between(sql, tokens, a, b)
        elif word == "MODEL" and b - a >= 2 and call.model is None:
            call.model = tokens[a + 1].text
            rest = [t.text.upper() for t in tokens[a + 2 : b]]
            if len(rest) == 2 and rest[0] == "VERSION":
                call.version = int(tokens[a + 3].text)
            elif len(rest) == 2 and rest[0] == "ALIAS":
                call.alias = tokens[a + 3].text
            elif rest:
                raise E.ParseError(
                    f"unexpected {' '.join(rest)!r} after MODEL {call.model}",
                    span=E.SourceSpan(sql, tokens[a + 2].start),
                    hint="write MODEL m, MODEL m VERSION n or MODEL m ALIAS a",
                )
        elif word == "TABLE" and b - a >= 2 and call.relation is None:
            call.relation = text_between(sql, tokens, a + 1, b)
        elif first.token_type == TokenType.L_PAREN and call.relation is None:
            call.relation = "(" + text_between(sql, tokens, a + 1, b - 1) + ")"
        else:
            raise E.ParseError(
                f"unexpected argument {text_between(sql, tokens, a, b)!r} of ML.{name}",
                span=E.SourceSpan(sql, first.start, len(first.text)),
                hint=_USAGE.format(name),
            )
    if call.model is None:
        raise E.ParseError(
            f"ML.{name} needs MODEL m (or the model's name as a string) as its first argument",
            span=E.SourceSpan(sql, tokens[ml].start, 2),
            hint=_USAGE.format(name),
        )
    _version_arguments(call, sql, tokens[ml])
    return call


def _version_doc(session: Session, call: Call) -> dict[str, Any]:
    wh = session.warehouse
    v = registry.resolve_version(wh, call.model or "", call.version, call.alias)
    return registry.get_version(wh, call.model or "", v)


def _model(session: Session, call: Call) -> P.ModelVersion:
    doc = _version_doc(session, call)
    if doc["task"] == "forecast":
        raise E.ProgrammingError(
            f"model {doc['model']!r} forecasts: ML.{call.name} does not apply to it",
            hint=f"use ML.FORECAST(MODEL {doc['model']} [, horizon => n]), or ML.TRIAL_INFO",
        )
    return P.load(session.warehouse, call.model or "", doc["version"])


@dataclass(frozen=True)
class ArgSpec:
    """A named argument of an ML.* table function: its range and whether it is an integer."""

    low: float
    high: float
    integer: bool
    help: str


_THRESHOLD = ArgSpec(0.0, 1.0, False, "probability of the positive class at which to predict it")
# ML.<NAME> -> (rows: 'required' | 'optional' | 'none', named arguments it takes)
SIGNATURES: dict[str, tuple[str, dict[str, ArgSpec]]] = {
    "PREDICT": ("required", {"threshold": _THRESHOLD}),
    "EVALUATE": (
        "optional",
        {"bootstrap": ArgSpec(0, 10_000, True, "bootstrap resamples for the intervals")},
    ),
    "CONFUSION_MATRIX": ("optional", {"threshold": _THRESHOLD}),
    "ROC_CURVE": ("optional", {}),
    "FEATURE_IMPORTANCE": ("none", {}),
    "TRIAL_INFO": ("none", {}),
    "EXPLAIN_PREDICT": (
        "required",
        {
            "top_k_features": ArgSpec(1, 100_000, True, "attributions kept per row"),
            "threshold": _THRESHOLD,
        },
    ),
    "FORECAST": (
        "optional",
        {
            "horizon": ArgSpec(1, 1_000_000, True, "steps ahead to forecast"),
            "level": ArgSpec(0, 100, False, "interval levels in percent, e.g. [80, 95]"),
        },
    ),
}


def _check_call(call: Call) -> None:
    """Refuse unknown named arguments, values out of range and rows where none are taken."""
    rows, named = SIGNATURES[call.name]
    if rows == "none" and call.relation is not None:
        raise E.ProgrammingError(
            f"ML.{call.name} takes no rows: write ML.{call.name}(MODEL m)",
        )
    if rows == "required" and call.relation is None:
        raise E.ProgrammingError(
            f"ML.{call.name} needs the rows: ML.{call.name}(MODEL m, TABLE t | (query))"
        )
    for name, text in call.named.items():
        spec = named.get(name)
        if spec is None:
            valid = ", ".join(f"{n} => ({s.help})" for n, s in named.items()) or "none"
            raise E.OptionError(
                f"ML.{call.name} has no argument {name!r}", hint=f"its arguments: {valid}"
            )
        if call.name == "FORECAST" and name == "level":
            continue  # a list: read by _ml_forecast
        value = _float_arg(call, name, None)
        if (
            value is None
            or not spec.low <= value <= spec.high
            or (spec.integer and value != int(value))
        ):
            kind = "an integer" if spec.integer else "a number"
            raise E.OptionError(
                f"{name} => must be {kind} from {spec.low:g} to {spec.high:g}, not {text.strip()}"
            )


def _float_arg(call: Call, name: str, default: float | None) -> float | None:
    if name not in call.named:
        return default
    try:
        return float(_unquote(call.named[name]))
    except ValueError as e:
        raise E.OptionError(f"{name} => must be a number, not {call.named[name]!r}") from e


# -- input relations ----------------------------------------------------------------------------


# rows per batch read: several batches, so that reading the next overlaps preparing this one (the
# model itself is called once per batch_rows rows: see predict.predict_reader)
SCORE_ROWS = 1 << 18
_IDENT = re.compile(r'\s*("?)([A-Za-z_]\w*)\1\s*')  # TABLE name, bare or quoted


def input_reader(
    session: Session, mv: P.ModelVersion, relation: str, batch_rows: int | None = None
) -> pa.RecordBatchReader:
    """The rows to score, with the model's feature-table features looked up point-in-time, in
    batches of `batch_rows` (default: the batch_rows setting)."""
    from lakesql.features import store as features

    tables = mv.doc.get("feature_tables") or []
    rows = batch_rows or session.settings["batch_rows"]
    name = _IDENT.fullmatch(relation)
    registered = session.engine.registered(name.group(2)) if name and not tables else None
    if registered is not None:  # rows already in memory: read in place, not through DuckDB
        return registered.to_reader(rows)
    cur = session.engine.cursor()
    sql = f"SELECT * FROM {relation}"
    drop: list[str] = []
    if tables:
        described = session.execute(f"DESCRIBE {sql}", cur=cur).cursor
        columns = {r[0].lower() for r in described.fetchall()} if described is not None else set()
        time_column = mv.doc["options"].get("time_column")
        ts_keys = {t["timestamp_key"] for t in tables if t.get("timestamp_key")}
        if time_column is None and ts_keys and not any(k.lower() in columns for k in ts_keys):
            time_column = "__lakesql_now"
            sql = f"SELECT *, CAST(now() AS TIMESTAMP) AS __lakesql_now FROM ({sql})"
            drop.append(time_column)
        elif time_column is None and ts_keys:
            time_column = next(k for k in ts_keys if k.lower() in columns)
        sql, _ = features.lookup_sql(
            session, cur, f"({sql})", [t["table"] for t in tables], time_column=time_column
        )
        # columns the lookup adds that the spine also had are errors there; features come last
    result = session.execute(sql, cur=cur)
    if result.cursor is None:
        raise E.ProgrammingError("the input of the model returned no rows set")
    reader = result.cursor.to_arrow_reader(rows)
    if drop:
        keep = [n for n in reader.schema.names if n not in drop]

        def gen() -> Any:
            for batch in _batches(reader):
                yield batch.select(keep)

        reader = pa.RecordBatchReader.from_batches(
            pa.schema([reader.schema.field(n) for n in keep]), gen()
        )
    return reader


def _batches(reader: pa.RecordBatchReader) -> Any:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def scored(
    session: Session,
    mv: P.ModelVersion,
    relation: str,
    threshold: float | None = None,
    score: Any = None,
) -> pa.Table:
    """The rows of `relation` scored by `score` (default predict.predict_batch)."""
    model_rows = int(session.settings["batch_rows"])
    reader = input_reader(session, mv, relation, min(SCORE_ROWS, model_rows))
    return P.predict_reader(mv, reader, threshold=threshold, score=score, model_rows=model_rows)


# -- table functions ------------------------------------------------------------------------------


@dataclass
class Relation:
    """What a table function hands DuckDB: `data`, read through the query select(name)."""

    data: pa.Table
    select: Callable[[str], str]


def _ml_predict(session: Session, call: Call) -> Relation:
    mv = _model(session, call)
    if call.relation is None:
        raise E.ParseError("ML.PREDICT needs the rows to score: TABLE t or (query)")
    threshold = _float_arg(call, "threshold", None)
    table = scored(session, mv, call.relation, threshold, score=P.score_batch)
    return Relation(table, lambda name: P.output_sql(mv, name))


def _labelled(session: Session, mv: P.ModelVersion, call: Call) -> tuple[Any, Any, str]:
    """(encoded labels, values) of the call's rows, or of the version's held-out test split."""
    from lakesql.ml import automl

    label = mv.label
    if call.relation is None:
        cur = session.engine.cursor()
        res = session.execute(mv.doc["data_sql"], cur=cur).cursor
        if res is None:
            raise E.InternalError("the training query returned no result set")
        df = res.to_arrow_table().to_pandas()
        df = df[df[label].notna()].reset_index(drop=True)
        split = automl.make_split(df, mv.task, label, mv.doc["options"])
        frame = df.iloc[split.test]
        source = "test split"
    else:
        reader = input_reader(session, mv, call.relation)
        table = pa.Table.from_batches(list(_batches(reader)), schema=reader.schema)
        frame = table.to_pandas()
        if label not in frame.columns:
            raise E.ProgrammingError(f"the rows to evaluate need the label column {label!r}")
        frame = frame[frame[label].notna()]
        source = "given rows"
    if len(frame) == 0:
        raise E.DataError("no labelled rows to evaluate")
    values = mv.values(frame)
    if mv.task == "classification":
        unknown = set(map(str, frame[label])) - set(map(str, mv.classes))
        if unknown:
            raise E.DataError(f"label values the model never saw: {sorted(unknown)[:5]}")
        lookup = {str(c): i for i, c in enumerate(mv.classes)}
        y = [lookup[str(v)] for v in frame[label]]
    else:
        y = frame[label].astype("float64").to_numpy()
    return y, values, source


def _ml_evaluate(session: Session, call: Call) -> pa.Table:
    import numpy as np

    from lakesql.ml import metrics

    doc = _version_doc(session, call)
    if doc["task"] == "forecast":  # forecasts against actuals (lakesql.ml.forecast.evaluate)
        from lakesql.ml import forecast

        actuals = None
        if call.relation is not None:
            res = session.execute(f"SELECT * FROM {call.relation}", cur=session.engine.cursor())
            if res.cursor is None:
                raise E.ProgrammingError("the actuals returned no rows set")
            actuals = res.cursor.to_arrow_table().to_pandas()
        folder = registry.version_dir(session.warehouse, doc["model"], doc["version"])
        evaluated: pa.Table = forecast.evaluate(folder, doc, actuals)
        return evaluated
    mv = _model(session, call)
    y, values, source = _labelled(session, mv, call)
    y = np.asarray(y)
    n_classes = len(mv.classes)

    def score(idx: Any) -> dict[str, float]:
        if mv.task == "classification":
            return metrics.classification_metrics(y[idx], values[idx], n_classes)
        return metrics.regression_metrics(y[idx], values[idx])

    full = score(np.arange(len(y)))
    rng = np.random.default_rng(0)
    draws: dict[str, list[float]] = {k: [] for k in full}
    for _ in range(int(_float_arg(call, "bootstrap", 200) or 0)):
        idx = rng.integers(0, len(y), len(y))
        if mv.task == "classification" and len(np.unique(y[idx])) < 2:
            continue
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, v in score(idx).items():
                if np.isfinite(v):
                    draws[k].append(v)
    rows = []
    for k, v in full.items():
        d = draws[k]
        lo, hi = (
            (float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5)))
            if len(d) >= 20
            else (None, None)
        )
        rows.append(
            {"metric": k, "value": v, "ci_low": lo, "ci_high": hi, "rows": len(y), "data": source}
        )
    schema = pa.schema(
        [
            ("metric", pa.string()),
            ("value", pa.float64()),
            ("ci_low", pa.float64()),
            ("ci_high", pa.float64()),
            ("rows", pa.int64()),
            ("data", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _require_classifier(mv: P.ModelVersion, what: str) -> None:
    if mv.task != "classification":
        raise E.ProgrammingError(
            f"{what} applies to classification models; {mv.name!r} is a {mv.task} model"
        )


def _ml_confusion_matrix(session: Session, call: Call) -> pa.Table:
    import numpy as np

    mv = _model(session, call)
    _require_classifier(mv, "ML.CONFUSION_MATRIX")
    y, values, _ = _labelled(session, mv, call)
    threshold = _float_arg(call, "threshold", None)
    if threshold is not None and len(mv.classes) == 2:
        pred = (values[:, 1] >= threshold).astype(int)
    else:
        pred = np.argmax(values, axis=1)
    rows = []
    for i, actual in enumerate(mv.classes):
        for j, predicted in enumerate(mv.classes):
            rows.append(
                {
                    "actual": str(actual),
                    "predicted": str(predicted),
                    "count": int(np.sum((np.asarray(y) == i) & (pred == j))),
                }
            )
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("actual", pa.string()), ("predicted", pa.string()), ("count", pa.int64())]
        ),
    )


def _ml_roc_curve(session: Session, call: Call) -> pa.Table:
    import numpy as np
    from sklearn.metrics import roc_curve

    mv = _model(session, call)
    _require_classifier(mv, "ML.ROC_CURVE")
    y, values, _ = _labelled(session, mv, call)
    y = np.asarray(y)
    rows = []
    targets = [1] if len(mv.classes) == 2 else list(range(len(mv.classes)))
    for k in targets:
        fpr, tpr, thr = roc_curve(y == k, values[:, k])
        for a, b, c in zip(fpr, tpr, thr, strict=True):
            rows.append(
                {
                    "class": str(mv.classes[k]),
                    "threshold": float(min(c, 1.0)),
                    "false_positive_rate": float(a),
                    "true_positive_rate": float(b),
                }
            )
    schema = pa.schema(
        [
            ("class", pa.string()),
            ("threshold", pa.float64()),
            ("false_positive_rate", pa.float64()),
            ("true_positive_rate", pa.float64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _ml_feature_importance(session: Session, call: Call) -> pa.Table:
    import numpy as np

    mv = _model(session, call)
    est, fam = mv.model.model, mv.model.family
    outputs = mv.prep.outputs
    if fam == "xgboost":
        score = est.get_booster().get_score(importance_type="gain")
        values = np.array([score.get(f, score.get(f"f{i}", 0.0)) for i, f in enumerate(outputs)])
        kind = "gain"
    elif fam == "lightgbm":
        values = np.asarray(est.feature_importance(importance_type="gain"), dtype=float)
        kind = "gain"
    elif hasattr(est, "feature_importances_"):
        values = np.asarray(est.feature_importances_, dtype=float)
        kind = "impurity decrease"
    elif hasattr(est, "coef_"):
        values = np.abs(np.atleast_2d(est.coef_)).sum(axis=0)
        kind = "|coefficient| (standardised inputs)"
    else:
        from sklearn.inspection import permutation_importance

        cur = session.engine.cursor()
        df = session.execute(mv.doc["data_sql"], cur=cur).cursor.to_arrow_table().to_pandas()  # type: ignore[union-attr]
        df = df[df[mv.label].notna()]
        X = mv.prep.transform(df)
        y = mv.prep.encode_label(df[mv.label])
        values = permutation_importance(est, X, y, n_repeats=3, random_state=0).importances_mean
        kind = "permutation"
    total = float(np.sum(values)) or 1.0
    rows = []
    for col in mv.prep.columns:
        idx = [outputs.index(o) for o in col["outputs"]]
        v = float(np.sum(values[idx]))
        rows.append({"feature": col["name"], "importance": v, "share": v / total, "kind": kind})
    rows.sort(key=lambda r: -r["importance"])
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("feature", pa.string()),
                ("importance", pa.float64()),
                ("share", pa.float64()),
                ("kind", pa.string()),
            ]
        ),
    )


def _ml_trial_info(session: Session, call: Call) -> pa.Table:
    doc = _version_doc(session, call)
    table = registry.trials_table(session.warehouse)
    mask = pa.array(
        [
            m == doc["model"] and v == doc["version"]
            for m, v in zip(
                table.column("model").to_pylist(), table.column("version").to_pylist(), strict=True
            )
        ],
        pa.bool_(),
    )
    return table.filter(mask)


def _ml_explain_predict(session: Session, call: Call) -> pa.Table:
    import numpy as np

    from lakesql.ml import explain

    mv = _model(session, call)
    if call.relation is None:
        raise E.ParseError("ML.EXPLAIN_PREDICT needs the rows to explain: TABLE t or (query)")
    top_k = int(_float_arg(call, "top_k_features", 5) or 5)  # range checked by _check_call
    table = scored(session, mv, call.relation, _float_arg(call, "threshold", None))
    frame = table.to_pandas()
    X = mv.prep.transform(frame)
    n_classes = len(mv.classes)
    if mv.task == "classification":
        target = (
            np.ones(len(frame), dtype=int)
            if n_classes == 2
            else np.argmax(mv.model.predict_values(X), axis=1)
        )
    else:
        target = np.zeros(len(frame), dtype=int)
    raw, contrib, base = explain.raw_and_contributions(mv.model, X, mv.task, n_classes, target)
    outputs = mv.prep.outputs
    groups = [(c["name"], [outputs.index(o) for o in c["outputs"]]) for c in mv.prep.columns]
    per_input = np.column_stack([contrib[:, idx].sum(axis=1) for _, idx in groups])
    names = [g[0] for g in groups]
    explained, attributions = [], []
    for i in range(len(frame)):
        order = np.argsort(-np.abs(per_input[i]))[:top_k]
        attributions.append(
            [{"feature": names[j], "attribution": float(per_input[i, j])} for j in order]
        )
        explained.append(str(mv.classes[target[i]]) if mv.task == "classification" else None)
    struct = pa.list_(pa.struct([("feature", pa.string()), ("attribution", pa.float64())]))
    table = table.append_column("explained_class", pa.array(explained, pa.string()))
    table = table.append_column("baseline", pa.array(np.asarray(base, dtype=float)))
    table = table.append_column("raw_prediction", pa.array(np.asarray(raw, dtype=float)))
    table = table.append_column("top_feature_attributions", pa.array(attributions, struct))
    return table


def _ml_forecast(session: Session, call: Call) -> pa.Table:
    from lakesql.ml import forecast

    doc = _version_doc(session, call)
    if doc["task"] != "forecast":
        raise E.ProgrammingError(
            f"ML.FORECAST needs a forecast model; {doc['model']!r} is a {doc['task']} model"
        )
    horizon = _float_arg(call, "horizon", None)
    levels = None
    if "level" in call.named:
        import json

        text = call.named["level"].strip()
        try:
            levels = json.loads(text)
        except ValueError as e:
            raise E.OptionError(
                f"level => takes a percentage or a list of them, e.g. [80, 95]; not {text}"
            ) from e
    future = None
    if call.relation is not None:  # the covariates' future values
        res = session.execute(f"SELECT * FROM {call.relation}", cur=session.engine.cursor())
        if res.cursor is None:
            raise E.ProgrammingError("the future rows returned no rows set")
        future = res.cursor.to_arrow_table().to_pandas()
    folder = registry.version_dir(session.warehouse, doc["model"], doc["version"])
    result: pa.Table = forecast.forecast(
        folder, doc, int(horizon) if horizon else None, levels, future
    )
    return result


TABLE_FUNCTIONS: dict[str, Callable[[Session, Call], pa.Table | Relation]] = {
    "PREDICT": _ml_predict,
    "EVALUATE": _ml_evaluate,
    "CONFUSION_MATRIX": _ml_confusion_matrix,
    "ROC_CURVE": _ml_roc_curve,
    "FEATURE_IMPORTANCE": _ml_feature_importance,
    "TRIAL_INFO": _ml_trial_info,
    "EXPLAIN_PREDICT": _ml_explain_predict,
    "FORECAST": _ml_forecast,
}


# -- scalar PREDICT(m, ...) / PREDICT_PROBA(m, ...) ---------------------------------------------


def _scalar_udf(session: Session, model: str, proba: bool, n_columns: int) -> str:
    import numpy as np

    mv = P.load(session.warehouse, model)
    if mv.doc.get("feature_tables"):
        raise E.ProgrammingError(
            f"model {model!r} takes features from feature tables; scalar PREDICT cannot look them up",
            hint="use ML.PREDICT(MODEL m, TABLE t), which looks them up point-in-time",
        )
    if proba and mv.task != "classification":
        raise E.ProgrammingError("PREDICT_PROBA applies to classification models")
    inputs = mv.prep.inputs
    if n_columns != len(inputs):
        fn = "PREDICT_PROBA" if proba else "PREDICT"
        raise E.ProgrammingError(
            f"{fn}({model}, ...) takes the model's {len(inputs)} input column(s) after the "
            f"model name, got {n_columns}",
            hint=f"{fn}({model}, {', '.join(inputs)})",
        )
    types = [mv.doc.get("input_types", {}).get(c) or "DOUBLE" for c in inputs]
    name = f"__lakesql_{'proba' if proba else 'predict'}_{mv.name}_v{mv.version}"
    if name in session.engine._udfs:
        return name

    def impl(arrays: list[pa.Array]) -> pa.Array:
        frame = pa.table(list(arrays), names=inputs).to_pandas()
        values = mv.values(frame)
        if mv.task != "classification":
            return pa.array(np.asarray(values, dtype=float))
        if proba:
            return pa.array(values[:, -1] if len(mv.classes) == 2 else values.max(axis=1))
        return pa.array([str(mv.classes[i]) for i in np.argmax(values, axis=1)])

    returns = "DOUBLE" if proba or mv.task != "classification" else "VARCHAR"
    session.engine.register_function(name, _fixed_arity(impl, len(inputs)), types, returns)
    return name


def _fixed_arity(impl: Callable[[list[pa.Array]], pa.Array], n: int) -> Callable[..., pa.Array]:
    """A function of exactly `n` positional parameters calling impl([args]) (DuckDB counts them)."""
    params = ", ".join(f"a{i}" for i in range(n))
    namespace: dict[str, Any] = {}
    exec(
        f"def udf({params}):\n    return impl([{params}])", {"impl": impl}, namespace
    )  # n is an int
    fn: Callable[..., pa.Array] = namespace["udf"]
    return fn


def release(session: Session, cur: Any) -> None:
    """Drop the views the previous statement's ML.* calls registered on `cur`.

    A new statement on a cursor replaces its pending result, so the scored rows of the previous
    one are no longer needed; without this a shell holds every scored table until it exits. Views
    behind a `CREATE VIEW` are never recorded, so they live as long as the cursor.
    """
    for view in session.ml_views.pop(id(cur), []):
        cur.unregister(view)


def expand(session: Session, cur: Any, sql: str) -> str:
    """Evaluate every ML.<NAME>(...) call and scalar PREDICT(...) in `sql`; returns the new text."""
    upper = sql.upper()
    if "ML." not in upper and "ML_" not in upper and "PREDICT" not in upper:
        return sql
    tokens = LakeSQL().tokenize(sql)
    edits: list[tuple[int, int, str]] = []
    # a view defined over the calls needs their views for as long as the cursor lives
    keep = bool(re.match(r"\s*CREATE\s+(OR\s+REPLACE\s+)?(TEMP\w*\s+)?VIEW\b", sql, re.I))
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if (
            t.text.upper() == "ML"
            and i + 3 < len(tokens)
            and tokens[i + 1].token_type == TokenType.DOT
            and tokens[i + 3].token_type == TokenType.L_PAREN
            and tokens[i + 2].text.upper() in TABLE_FUNCTIONS
        ):
            fname = tokens[i + 2].text.upper()
            open_paren = i + 3
        elif (
            t.text.upper().startswith("ML_")
            and t.token_type == TokenType.VAR
            and t.text.upper()[3:] in TABLE_FUNCTIONS
            and i + 1 < len(tokens)
            and tokens[i + 1].token_type == TokenType.L_PAREN
            and (i == 0 or tokens[i - 1].token_type != TokenType.DOT)
        ):  # ml_predict('m', 't'): the table function form any SQL parser reads
            fname = t.text.upper()[3:]
            open_paren = i + 1
        else:
            fname = ""
            open_paren = -1
        if fname:
            close = matching(tokens, open_paren, sql, f"ML.{fname}")
            call = _parse_call(sql, tokens, i, open_paren, close, fname)
            _check_call(call)
            result = TABLE_FUNCTIONS[fname](session, call)
            view = f"__lakesql_ml_{uuid.uuid4().hex[:10]}"
            if not keep:
                session.ml_views.setdefault(id(cur), []).append(view)
            if isinstance(result, Relation):
                cur.register(view, result.data)
                edits.append((call.start, call.end, f"({result.select(view)})"))
            else:
                cur.register(view, result)
                edits.append((call.start, call.end, view))
            i = close + 1
            continue
        if (
            t.text.upper() in ("PREDICT", "PREDICT_PROBA")
            and i + 2 < len(tokens)
            and tokens[i + 1].token_type == TokenType.L_PAREN
            and (i == 0 or tokens[i - 1].token_type != TokenType.DOT)
            and i > 0
        ):
            model_tok = tokens[i + 2]
            if i + 3 >= len(tokens) or tokens[i + 3].token_type not in (
                TokenType.COMMA,
                TokenType.R_PAREN,
            ):
                raise E.ParseError(
                    f"{t.text}(model, column, ...) takes a model name first",
                    span=E.SourceSpan(sql, model_tok.start),
                )
            close = matching(tokens, i + 1, sql, t.text.upper())
            n_columns = len(split_args(tokens, i + 1, close)) - 1
            udf = _scalar_udf(session, model_tok.text, t.text.upper() == "PREDICT_PROBA", n_columns)
            end = (
                tokens[i + 3].start
                if tokens[i + 3].token_type == TokenType.R_PAREN
                else tokens[i + 3].end + 1
            )
            edits.append((t.start, end, f"{udf}("))  # PREDICT(m, a, b) -> udf(a, b)
            i += 4
            continue
        i += 1
    out = sql
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return out
