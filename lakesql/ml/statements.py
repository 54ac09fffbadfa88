"""Executors of TRAIN AUTOML, RETRAIN and the model-registry statements."""

from __future__ import annotations

import getpass
import json
import shutil
import time
import uuid
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lakesql import errors as E
from lakesql.context import Context, Privilege, Result, Statement
from lakesql.dialect import expressions as lx
from lakesql.dialect.dialect import SPAN, LakeSQL, splice, table_span
from lakesql.engine.duckdb import quote
from lakesql.engine.timetravel import table_version
from lakesql.ml import registry
from lakesql.ml.options import validate as validate_options
from lakesql.storage import delta

LIBRARIES = (
    "lakesql",
    "duckdb",
    "deltalake",
    "pyarrow",
    "flaml",
    "xgboost-cpu",
    "lightgbm",
    "scikit-learn",
    "pandas",
    "numpy",
)


def _value(node: exp.Expr) -> Any:
    """A Python value from an option's SQL literal."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.name
        text = node.name
        return float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(node, exp.Neg):
        return -_value(node.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, (exp.Array, exp.Tuple, exp.Paren)):
        items = node.expressions if not isinstance(node, exp.Paren) else [node.this]
        return [_value(i) for i in items]
    if isinstance(node, (exp.Column, exp.Identifier, exp.Var)):
        return node.name
    raise E.OptionError(
        f"option value {node.sql(dialect=LakeSQL)!r} is not a literal",
        hint="use numbers, 'strings', true/false or ['lists']",
    )


def _library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = pkg_version(lib)
        except PackageNotFoundError:
            pass
    return out


def _pin_query(ctx: Context, text: str, node: exp.Expr) -> tuple[str, list[dict[str, Any]]]:
    """`text` with every warehouse table pinned to its current version (VERSION AS OF)."""
    wh = ctx.session.warehouse
    ctes = {c.alias_or_name.lower() for c in node.find_all(exp.CTE)}
    offset = node.meta.get(SPAN, (0, 0))[0]
    edits, sources = [], []
    for t in node.find_all(exp.Table):
        if t.catalog or not t.name or (not t.db and t.name.lower() in ctes):
            continue
        try:
            ref = wh.ref(t.db or None, t.name)
        except E.Error:
            continue
        if not wh.exists(ref):
            continue
        target = table_version(t)
        if target is not None:
            snap = delta.snapshot(ref.path, target)
            sources.append({"table": ref.qualified, "version": snap.version})
            continue
        snap = delta.snapshot(ref.path)
        sources.append({"table": ref.qualified, "version": snap.version})
        start, end = table_span(t)
        edits.append((end - offset, end - offset, f" VERSION AS OF {snap.version}"))
        del start
    return splice(text, edits), sources


def _training_sql(
    ctx: Context, node: lx.TrainAutoML
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], str]:
    """The pinned query of the training rows, its sources, its feature tables, and the spine SQL."""
    from lakesql.features import store as features

    wh = ctx.session.warehouse
    source = node.args["source"]
    if isinstance(source, exp.Table):
        ref = wh.require(wh.ref(source.db or None, source.name))
        snap = delta.snapshot(ref.path, table_version(source))
        spine = f"SELECT * FROM {quote(ref.schema)}.{quote(ref.name)} VERSION AS OF {snap.version}"
        sources = [{"table": ref.qualified, "version": snap.version}]
    else:
        start, end = source.meta.get(SPAN, (None, None))
        text = ctx.sql[start:end] if start is not None else source.sql(dialect="duckdb")
        spine, sources = _pin_query(ctx, text, source)
    feature_tables: list[dict[str, Any]] = []
    data = spine
    names = [t.sql(dialect="duckdb") for t in node.args.get("features") or []]
    if names:
        time_column = None
        opts = {o.name.lower(): o.expression for o in node.args.get("options") or []}
        if "time_column" in opts:
            time_column = str(_value(opts["time_column"]))
        data, feature_tables = features.lookup_sql(
            ctx.session, ctx.cur, f"({spine})", names, time_column=time_column, pin=True
        )
    return f"SELECT * FROM ({data}) ORDER BY ALL", sources, feature_tables, spine


def train(ctx: Context, node: lx.TrainAutoML) -> Result:

    name = node.name
    registry.validate_name(name, "model name")
    given = node.args.get("options") or []
    names = [o.name.lower() for o in given]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise E.OptionError(f"option {twice[0]!r} is given twice", hint="keep one of them")
    raw = {o.name: _value(o.expression) for o in given}
    opts = validate_options(raw)
    budget = float(opts["time_budget"] or ctx.session.settings["time_budget"])
    label = node.args["label"].name
    data_sql, sources, feature_tables, _ = _training_sql(ctx, node)
    version_doc = _run(
        ctx,
        name,
        label,
        opts,
        budget,
        data_sql,
        sources,
        feature_tables,
        replace=bool(node.args.get("replace")),
    )
    return _summary(ctx, version_doc)


def _load_frame(ctx: Context, data_sql: str) -> Any:
    result = ctx.session.execute(data_sql, cur=ctx.cur)
    if result.cursor is None:
        raise E.InternalError("the training query returned no result set")
    table = result.cursor.to_arrow_table()
    return table.to_pandas()


def _run(
    ctx: Context,
    name: str,
    label: str,
    opts: dict[str, Any],
    budget: float,
    data_sql: str,
    sources: list[dict[str, Any]],
    feature_tables: list[dict[str, Any]],
    *,
    replace: bool,
    reproduce: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or reproduce) into a staging folder and publish it as the next version."""
    from lakesql.ml import automl, backends, notebooks

    wh = ctx.session.warehouse
    registry.validate_name(name, "model name")
    started = time.time()
    cluster = None  # a Ray cluster for the search's trials (lakesql.ml.cluster)
    if reproduce is None:
        from lakesql.ml import cluster as ray_cluster

        cluster = ray_cluster.address(opts.get("cluster"), ctx.session.settings.get("cluster"))
        if cluster is not None and opts.get("task") != "forecast":
            ray_cluster.require_ray()  # before any data is read
    described = ctx.session.execute(f"DESCRIBE {data_sql}", cur=ctx.cur).cursor
    column_types = {r[0]: r[1] for r in described.fetchall()} if described is not None else {}
    columns = list(column_types)
    if label not in columns:
        raise E.ProgrammingError(
            f"label column {label!r} is not in the training data",
            hint=E.suggest(label, columns) or "columns: " + ", ".join(columns),
        )
    df = _load_frame(ctx, data_sql)
    exclude = list(opts["exclude"])
    for ft in feature_tables:  # lookup keys and times identify rows; they are not features
        exclude += [k for k in ft["keys"] if k not in exclude]
        if ft.get("timestamp_key") and ft["timestamp_key"] not in exclude:
            exclude.append(ft["timestamp_key"])
    opts = {**opts, "exclude": exclude}
    with registry.staging(wh, name) as staged:
        # The data profile needs only the rows: write it while the search runs.
        profile = _Background(
            notebooks.write_profile,
            staged / "profile.ipynb",
            df.copy(),
            label=label,
            task=opts["task"] or automl.infer_task(df[label].dropna()),
            model=name,
            version_hint="",
        )
        try:
            if reproduce is None:
                outcome = automl.fit(
                    df,
                    label=label,
                    opts=opts,
                    workdir=staged,
                    progress=bool(ctx.session.settings.get("progress")),
                    time_budget=budget,
                    cluster=cluster,
                )
            else:
                outcome = automl.refit(df, version_doc=reproduce)
            model_meta = backends.save(
                outcome.estimator, staged, task=outcome.task, n_classes=outcome.n_classes
            )
            (staged / "prep.json").write_text(
                json.dumps(outcome.prep.to_dict(), indent=2, default=str)
            )
            n_jobs = opts["n_jobs"] if opts["n_jobs"] != -1 else 0
            notebooks.write_trials(
                staged / "trials",
                outcome.trials,
                warehouse=str(wh.root),
                data_sql=data_sql,
                options=opts,
                label=label,
                task=outcome.task,
                metric=outcome.metric,
                exclude=exclude + [c for c in (opts["split_column"],) if c],
                n_jobs=n_jobs or 1,
            )
            profile.join()
            (staged / "flaml.log").unlink(missing_ok=True)
            doc = {
                "model": name,
                "created_at": registry.now(),
                "created_by": _user(),
                "task": outcome.task,
                "label": label,
                "metric": outcome.metric,
                "options": opts,
                "sql": ctx.statement,
                "data_sql": data_sql,
                "sources": sources,
                "feature_tables": feature_tables,
                "seed": opts["seed"],
                "library_versions": _library_versions(),
                "split": {
                    "method": outcome.split.method,
                    "seed": opts["seed"],
                    "rows": outcome.split.rows(),
                },
                "input_types": {c: column_types.get(c) for c in outcome.prep.inputs},
                "forecast": outcome.forecast,
                "prep": {
                    "inputs": outcome.prep.inputs,
                    "outputs": outcome.prep.outputs,
                    "dropped": outcome.prep.dropped,
                    "classes": outcome.prep.classes,
                },
                "best_trial": {
                    k: outcome.best.get(k)
                    for k in (
                        "trial",
                        "learner",
                        "config",
                        "valid_loss",
                        "valid_metric",
                        "notebook",
                    )
                },
                "trial_count": len(outcome.trials),
                "metrics": {"test": outcome.test_metrics, "valid": outcome.valid_metrics},
                "model_files": model_meta,
                "prep_sha256": backends.file_digest(staged / "prep.json"),
                "warnings": outcome.warnings,
                "time_budget": budget,
                "duration_s": round(time.time() - started, 3),
                "reproduces": reproduce["version"] if reproduce else None,
            }
            version = registry.publish(
                wh, name, staged, doc, outcome.trials, replace=replace or reproduce is not None
            )
        except BaseException as e:
            profile.join(reraise=False)
            shutil.rmtree(staged, ignore_errors=True)
            if isinstance(e, KeyboardInterrupt):
                raise E.OperationalError(
                    f"TRAIN of {name!r} interrupted: nothing was registered"
                ) from e
            if isinstance(e, E.Error):
                raise
            raise E.OperationalError(f"TRAIN of {name!r} failed: {type(e).__name__}: {e}") from e
        doc["version"] = version
        ctx.session.models_changed()
        return doc


class _Background:
    """Run a function in a thread; join() re-raises its exception."""

    def __init__(self, fn: Any, *args: Any, **kwargs: Any):
        import threading

        self.error: BaseException | None = None

        def run() -> None:
            try:
                fn(*args, **kwargs)
            except BaseException as e:  # handed to join()
                self.error = e

        self.thread = threading.Thread(target=run, name="lakesql-profile", daemon=True)
        self.thread.start()

    def join(self, reraise: bool = True) -> None:
        self.thread.join()
        if reraise and self.error is not None:
            raise self.error


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _summary(ctx: Context, doc: dict[str, Any]) -> Result:
    best = doc["best_trial"]
    row = {
        "model": doc["model"],
        "version": doc["version"],
        "task": doc["task"],
        "metric": doc["metric"],
        "test_metric": doc["metrics"]["test"][doc["metric"]],
        "valid_metric": best.get("valid_metric"),
        "best_estimator": best["learner"],
        "trials": doc["trial_count"],
        "train_rows": doc["split"]["rows"]["train"],
        "test_rows": doc["split"]["rows"]["test"],
        "seconds": doc["duration_s"],
        "warnings": doc["warnings"],
    }
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("version", pa.int64()),
            ("task", pa.string()),
            ("metric", pa.string()),
            ("test_metric", pa.float64()),
            ("valid_metric", pa.float64()),
            ("best_estimator", pa.string()),
            ("trials", pa.int64()),
            ("train_rows", pa.int64()),
            ("test_rows", pa.int64()),
            ("seconds", pa.float64()),
            ("warnings", pa.list_(pa.string())),
        ]
    )
    return ctx.rows(pa.Table.from_pylist([row], schema=schema))


def retrain(ctx: Context, node: lx.RetrainModel) -> Result:
    wh = ctx.session.warehouse
    name = node.name
    mdoc = registry.require_model(wh, name)
    version = node.args.get("version")
    if version is None:  # the newest version's statement, on today's data
        from lakesql.dialect.dialect import parse_statement

        latest = registry.get_version(wh, name, max(mdoc["versions"]))
        stmt = parse_statement(latest["sql"])
        if not isinstance(stmt, lx.TrainAutoML):
            stmt_sql = latest["sql"]
            raise E.ProgrammingError(
                f"version {latest['version']} was not made by TRAIN AUTOML: {stmt_sql[:80]}"
            )
        sub = Context(ctx.session, ctx.cur, latest["sql"], None)
        data_sql, sources, feature_tables, _ = _training_sql(sub, stmt)
        opts = latest["options"]
        doc = _run(
            ctx,
            name,
            latest["label"],
            opts,
            float(latest["time_budget"]),
            data_sql,
            sources,
            feature_tables,
            replace=True,
        )
        return _summary(ctx, doc)
    n = int(version.name)
    old = registry.get_version(wh, name, registry.resolve_version(wh, name, n))
    doc = _run(
        ctx,
        name,
        old["label"],
        old["options"],
        float(old["time_budget"]),
        old["data_sql"],
        old["sources"],
        old["feature_tables"],
        replace=True,
        reproduce=old,
    )
    return _summary(ctx, doc)


# -- registry statements ------------------------------------------------------------------------


def show_models(ctx: Context, node: lx.ShowModels) -> Result:
    table = registry.models_table(ctx.session.warehouse)
    pattern = node.args.get("this")
    if pattern is not None:
        import fnmatch

        glob = pattern.name.replace("%", "*").replace("_", "?")
        keep = [fnmatch.fnmatch(n, glob) for n in table.column("name").to_pylist()]
        table = table.filter(pa.array(keep, pa.bool_()))
    return ctx.rows(table)


def show_versions(ctx: Context, node: lx.ShowVersions) -> Result:
    registry.require_model(ctx.session.warehouse, node.name)
    table = registry.versions_table(ctx.session.warehouse)
    mask = pa.array([m == node.name.lower() for m in table.column("model").to_pylist()], pa.bool_())
    return ctx.rows(table.filter(mask))


def show_trials(ctx: Context, node: lx.ShowTrials) -> Result:
    wh = ctx.session.warehouse
    version = node.args.get("version")
    v = registry.resolve_version(wh, node.name, int(version.name) if version is not None else None)
    table = registry.trials_table(wh)
    mask = pa.array(
        [
            m == node.name.lower() and tv == v
            for m, tv in zip(
                table.column("model").to_pylist(), table.column("version").to_pylist(), strict=True
            )
        ],
        pa.bool_(),
    )
    return ctx.rows(table.filter(mask))


def describe_model(ctx: Context, node: lx.DescribeModel) -> Result:
    wh = ctx.session.warehouse
    version = node.args.get("version")
    v = registry.resolve_version(wh, node.name, int(version.name) if version is not None else None)
    doc = registry.get_version(wh, node.name, v)
    mdoc = registry.require_model(wh, node.name)
    rows: list[tuple[str, str]] = [
        ("model", doc["model"]),
        ("version", str(v)),
        ("aliases", ", ".join(sorted(a for a, av in mdoc.get("aliases", {}).items() if av == v))),
        ("task", doc["task"]),
        ("label", doc["label"]),
        ("metric", doc["metric"]),
        ("created", f"{doc['created_at']} by {doc['created_by']}"),
        ("sql", doc["sql"]),
        ("data_sql", doc["data_sql"]),
        ("best_trial", json.dumps(doc["best_trial"], sort_keys=True, default=str)),
        ("trials", str(doc["trial_count"])),
        ("split", json.dumps(doc["split"], sort_keys=True)),
        ("features", ", ".join(doc["prep"]["inputs"])),
        ("dropped", ", ".join(f"{d['name']} ({d['reason']})" for d in doc["prep"]["dropped"])),
        ("options", json.dumps(doc["options"], sort_keys=True)),
        ("library_versions", json.dumps(doc["library_versions"], sort_keys=True)),
        ("files", doc["files"]),
    ]
    rows += [(f"source {s['table']}", f"version {s['version']}") for s in doc["sources"]]
    rows += [
        (f"feature table {f['table']}", f"version {f['version']}: {', '.join(f['features'])}")
        for f in doc["feature_tables"]
    ]
    rows += [(f"test {k}", repr(val)) for k, val in sorted(doc["metrics"]["test"].items())]
    rows += [("warning", w) for w in doc.get("warnings", [])]
    if doc.get("reproduces"):
        rows.append(("reproduces", f"version {doc['reproduces']}"))
    return ctx.rows(pa.table({"property": [r[0] for r in rows], "value": [r[1] for r in rows]}))


def alter_model(ctx: Context, node: lx.AlterModelAlias) -> Result:

    alias = node.args["alias"].name
    version = None if node.args.get("unset") else int(node.args["version"].name)
    registry.set_alias(ctx.session.warehouse, node.name, alias, version)
    ctx.session.models_changed()
    return Result(message="ALTER MODEL")


def drop_model(ctx: Context, node: lx.DropModel) -> Result:

    wh = ctx.session.warehouse
    if registry.get_model(wh, node.name) is None and node.args.get("exists"):
        return Result(message="DROP MODEL")
    version = node.args.get("version")
    registry.drop(wh, node.name, int(version.name) if version is not None else None)
    ctx.session.models_changed()
    return Result(message="DROP MODEL")


def vacuum_models(ctx: Context, node: lx.VacuumModels) -> Result:
    """VACUUM MODEL m | VACUUM MODELS [DRY RUN]: one row per leftover found (and removed)."""
    name = node.args.get("this")
    rows = registry.vacuum(
        ctx.session.warehouse,
        name.name if name is not None else None,
        dry_run=bool(node.args.get("dry_run")),
    )
    schema = pa.schema([(c, pa.string()) for c in ("model", "path", "reason", "action")])
    return ctx.rows(pa.Table.from_pylist(rows, schema=schema))


def model_dir(ctx: Context, name: str, version: int) -> Path:
    return registry.version_dir(ctx.session.warehouse, name, version)


# -- the PREDICT statement ------------------------------------------------------------------------


def predict(ctx: Context, node: lx.PredictInto) -> Result:
    """PREDICT m FROM t | (query) [INTO t2 [MODE APPEND | OVERWRITE | MERGE ON (k, ...)]]."""
    from lakesql.dialect.dialect import parse_statement
    from lakesql.ml import inference
    from lakesql.ml import predict as P

    session = ctx.session
    ref_node = node.this
    version = ref_node.args.get("version")
    alias = ref_node.args.get("alias")
    mv = P.load(
        session.warehouse,
        ref_node.name,
        int(version.name) if version is not None else None,
        alias.name if alias is not None else None,
    )
    source = node.args["source"]
    if isinstance(source, exp.Table):
        relation = (
            source.sql(dialect="duckdb")
            .replace("FOR VERSION AS OF", "VERSION AS OF")
            .replace("FOR TIMESTAMP AS OF", "TIMESTAMP AS OF")
        )
    else:
        start, end = source.meta.get(SPAN, (None, None))
        relation = (
            "(" + (ctx.sql[start:end] if start is not None else source.sql(dialect="duckdb")) + ")"
        )
    into = node.args.get("into")
    table = None
    if into is not None:  # on the session's cluster when one is set (lakesql.ml.cluster)
        from lakesql.ml import cluster

        table = cluster.predict_into(session, mv, source, relation)
    if table is None:
        table = inference.scored(session, mv, relation)
        # written in batches of batch_rows, as the Ray path (lakesql.ml.cluster) writes them
        if into is not None and table.num_rows:
            rows = int(session.settings["batch_rows"])
            table = pa.Table.from_batches(
                table.combine_chunks().to_batches(max_chunksize=rows), schema=table.schema
            )
    if into is None:
        return ctx.rows(table)
    wh = session.warehouse
    ref = wh.ref(into.db or None, into.name)
    wh.require_schema(ref.schema)
    mode = node.args.get("mode") or "APPEND"
    schema = delta.delta_schema(table.schema)
    reader = delta.conform(
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), schema
    )
    if not wh.exists(ref):
        delta.write(
            ref.path, reader, mode="error", sql=ctx.statement, operation=f"PREDICT INTO ({mode})"
        )
    elif mode == "APPEND":
        delta.write(
            ref.path, reader, mode="append", sql=ctx.statement, operation="PREDICT INTO (APPEND)"
        )
    elif mode == "OVERWRITE":
        delta.write(
            ref.path,
            reader,
            mode="overwrite",
            sql=ctx.statement,
            operation="PREDICT INTO (OVERWRITE)",
            replace_schema=True,
        )
    else:
        keys = [k.name for k in node.args.get("keys") or []]
        missing = [k for k in keys if k not in table.column_names]
        if missing:
            raise E.ProgrammingError(
                f"MERGE ON key(s) {missing} are not columns of the predictions",
                hint=f"columns: {', '.join(table.column_names)}",
            )
        view = f"__lakesql_predictions_{uuid.uuid4().hex[:10]}"
        ctx.cur.register(view, table)
        cols = table.column_names
        target = f"{quote(ref.schema)}.{quote(ref.name)}"
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        sets = ", ".join(f"{quote(c)} = s.{quote(c)}" for c in cols if c not in keys)
        merge = (
            f"MERGE INTO {target} AS t USING {view} AS s ON {on} "
            f"WHEN MATCHED THEN UPDATE SET {sets} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(quote(c) for c in cols)}) VALUES ({', '.join('s.' + quote(c) for c in cols)})"
        )
        try:
            ctx.sub(merge).execute(parse_statement(merge))
        finally:
            ctx.cur.unregister(view)
    session.invalidate(ref)
    return Result(rowcount=table.num_rows, message=f"PREDICT {table.num_rows}")


# this area's part of the statement table (lakesql.statements)
def _predict_needs(ctx: Context, node: lx.PredictInto) -> Privilege:
    return Privilege.WRITE if node.args.get("into") is not None else Privilege.READ


STATEMENTS: tuple[Statement, ...] = (
    Statement(lx.TrainAutoML, train, Privilege.WRITE, in_transaction=False),
    Statement(lx.PredictInto, predict, _predict_needs, in_transaction=False),
    Statement(lx.RetrainModel, retrain, Privilege.WRITE, in_transaction=False),
    Statement(lx.ShowModels, show_models, Privilege.READ),
    Statement(lx.ShowVersions, show_versions, Privilege.READ),
    Statement(lx.ShowTrials, show_trials, Privilege.READ),
    Statement(lx.DescribeModel, describe_model, Privilege.READ),
    Statement(lx.AlterModelAlias, alter_model, Privilege.WRITE, in_transaction=False),
    Statement(lx.DropModel, drop_model, Privilege.WRITE, in_transaction=False),
    Statement(lx.VacuumModels, vacuum_models, Privilege.WRITE),
)
