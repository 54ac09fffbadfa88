"""Executors of the feature-store statements and the ML.FEATURES_AT_TIME expansion."""

from __future__ import annotations

import datetime as dt
import getpass
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from lakesql import errors as E
from lakesql.catalog.warehouse import TableRef
from lakesql.context import Context, Privilege, Result, Statement
from lakesql.dialect import expressions as lx
from lakesql.dialect.dialect import SPAN
from lakesql.engine.duckdb import literal, quote
from lakesql.features import rewrite
from lakesql.features.lookup import KIND, FeatureTable, doc_name, point_in_time_sql
from lakesql.storage import delta

if TYPE_CHECKING:
    from lakesql.session import Session


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def get(session: Session, ref: TableRef) -> FeatureTable | None:
    doc = session.warehouse.get_doc(KIND, doc_name(ref.schema, ref.name))
    return FeatureTable.from_doc(doc) if doc else None


def require(session: Session, table: exp.Table | str) -> FeatureTable:
    """The feature table a name refers to, or an error listing close names."""
    if isinstance(table, str):
        parts = table.replace('"', "").split(".")
        schema, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[-1])
    else:
        schema, name = table.db or None, table.name
    ref = session.warehouse.ref(schema, name)
    ft = get(session, ref)
    if ft is None:
        known = [d["name"] for d in session.warehouse.docs(KIND).values()]
        hint = E.suggest(ref.name, known) or "SHOW FEATURE TABLES lists them"
        if session.warehouse.exists(ref):
            hint = f"{ref.qualified!r} is a plain table; create a feature table with CREATE FEATURE TABLE"
        raise E.UnknownObjectError(f"feature table {ref.qualified!r} does not exist", hint=hint)
    return ft


def dependent_models(session: Session, ft: FeatureTable) -> list[str]:
    """Registered models that read features from `ft`."""
    out = []
    for name, doc in session.warehouse.docs("models").items():
        if ft.qualified in doc.get("feature_tables", []):
            out.append(name)
    return sorted(out)


# -- materialising and checking a definition ------------------------------------------------------


def _materialise(
    ctx: Context, query: str, keys: list[str], ts: str | None, name: str
) -> tuple[str, list[tuple[str, str]]]:
    """Run the definition into a TEMP table and check its keys; returns (table, [(col, type)])."""
    stage = f"__lakesql_features_{uuid.uuid4().hex[:12]}"
    ctx.run(f"CREATE TEMP TABLE {stage} AS {query}", ctx.params)
    try:
        columns = [(r[0], r[1]) for r in ctx.run(f"DESCRIBE {stage}").fetchall()]
        names = [c for c, _ in columns]
        lower = {c.lower(): c for c in names}
        for col in [*keys, *([ts] if ts else [])]:
            if col.lower() not in lower:
                raise E.ProgrammingError(
                    f"key column {col!r} is not produced by the query of {name!r}",
                    hint=f"the query's columns are: {', '.join(names)}",
                )
        key_cols = [lower[k.lower()] for k in keys] + ([lower[ts.lower()]] if ts else [])
        null_pred = " OR ".join(f"{quote(k)} IS NULL" for k in key_cols)
        nulls = ctx.run(f"SELECT count(*) FROM {stage} WHERE {null_pred}").fetchone()
        if nulls and nulls[0]:
            raise E.IntegrityError(
                f"{nulls[0]} row(s) of feature table {name!r} have a NULL in key column(s) {', '.join(key_cols)}",
                hint="filter them out in the query (WHERE ... IS NOT NULL)",
            )
        group = ", ".join(quote(k) for k in key_cols)
        dups = ctx.run(
            f"SELECT {group}, count(*) AS n FROM {stage} GROUP BY {group} HAVING count(*) > 1 "
            f"ORDER BY n DESC, {group} LIMIT 5"
        ).fetchall()
        if dups:
            total = ctx.run(
                f"SELECT count(*) FROM (SELECT 1 FROM {stage} GROUP BY {group} HAVING count(*) > 1)"
            ).fetchone()
            shown = "; ".join(
                "("
                + ", ".join(f"{k}={v!r}" for k, v in zip(key_cols, row[:-1], strict=True))
                + f") x{row[-1]}"
                for row in dups
            )
            raise E.IntegrityError(
                f"feature table {name!r} has {total[0] if total else len(dups)} duplicate key(s): {shown}",
                hint="keys must be unique per primary key"
                + (" and timestamp key" if ts else "")
                + "; aggregate or deduplicate in the query",
            )
        return stage, columns
    except BaseException:
        ctx.cur.execute(f"DROP TABLE IF EXISTS {stage}")
        raise


def _sources(ctx: Context, query_node: exp.Expr) -> list[dict[str, Any]]:
    out = []
    seen = set()
    ctes = {c.alias_or_name.lower() for c in query_node.find_all(exp.CTE)}
    for t in query_node.find_all(exp.Table):
        if t.catalog or (not t.db and t.name.lower() in ctes) or not t.name:
            continue
        try:
            ref = ctx.session.warehouse.ref(t.db or None, t.name)
        except E.Error:
            continue
        if ref.qualified in seen or not ctx.session.warehouse.exists(ref):
            continue
        seen.add(ref.qualified)
        version = t.args.get("version")
        snap_version = delta.snapshot(ref.path).version
        out.append({"table": ref.qualified, "version": snap_version, "pinned": version is not None})
    return out


def create(ctx: Context, node: lx.CreateFeatureTable) -> Result:

    wh = ctx.session.warehouse
    table: exp.Table = node.this
    ref = wh.ref(table.db or None, table.name)
    wh.require_schema(ref.schema)
    existing = get(ctx.session, ref)
    if existing is not None or wh.exists(ref):
        if existing is None:
            raise E.ObjectExistsError(
                f"a table named {ref.qualified!r} exists and is not a feature table"
            )
        if node.args.get("exists"):
            return Result(message="CREATE FEATURE TABLE (exists)")
        if not node.args.get("replace"):
            raise E.ObjectExistsError(
                f"feature table {ref.qualified!r} already exists",
                hint="use CREATE OR REPLACE FEATURE TABLE, or REFRESH FEATURE TABLE to recompute it",
            )
        models = dependent_models(ctx.session, existing)
        if models:
            raise E.CatalogError(
                f"feature table {ref.qualified!r} is used by model(s) {', '.join(models)}; replacing it would change their inputs",
                hint="REFRESH FEATURE TABLE recomputes it with the same definition",
            )
    keys = [k.name for k in node.args["keys"]]
    ts_node = node.args.get("timestamp_key")
    ts = ts_node.name if ts_node is not None else None
    ttl_node = node.args.get("ttl")
    ttl = ttl_node.sql(dialect="duckdb") if ttl_node is not None else None
    if ttl is not None and ts is None:
        raise E.ProgrammingError("TTL needs a TIMESTAMP KEY", hint="add TIMESTAMP KEY (column)")
    query_node = node.expression
    start, end = query_node.meta.get(SPAN, (None, None))
    query = ctx.sql[start:end] if start is not None else query_node.sql(dialect="duckdb")
    stage, columns = _materialise(ctx, query, keys, ts, ref.qualified)
    created = not wh.exists(ref)
    try:
        reader = ctx.run(f"SELECT * FROM {stage}").to_arrow_reader(
            ctx.session.settings["batch_rows"]
        )
        schema = delta.delta_schema(reader.schema)
        version = delta.write(
            ref.path,
            delta.conform(reader, schema),
            mode="error" if created else "overwrite",
            sql=ctx.statement,
            operation="CREATE FEATURE TABLE",
            comment=node.args["comment"].name if node.args.get("comment") else None,
            replace_schema=not created,
        )
    except BaseException:
        if created and not delta.is_table(ref.path):
            import shutil

            shutil.rmtree(ref.path, ignore_errors=True)
        raise
    finally:
        ctx.cur.execute(f"DROP TABLE IF EXISTS {stage}")
    doc = {
        "schema": ref.schema,
        "name": ref.name,
        "keys": keys,
        "timestamp_key": ts,
        "ttl": ttl,
        "query": query,
        "comment": node.args["comment"].name if node.args.get("comment") else None,
        "columns": [c for c, _ in columns],
        "types": {c: t for c, t in columns},
        "sources": _sources(ctx, query_node),
        "created_by": _user(),
        "created_at": _now(),
        "versions": [{"version": version, "at": _now(), "operation": "CREATE"}],
    }
    ctx.session.warehouse.put_doc(KIND, doc_name(ref.schema, ref.name), doc)
    ctx.session.invalidate(ref)
    return Result(message="CREATE FEATURE TABLE")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def refresh(ctx: Context, node: lx.RefreshFeatureTable) -> Result:
    from lakesql.dialect.dialect import parse_statement

    ft = require(ctx.session, node.this)
    ref = ctx.session.warehouse.ref(ft.schema, ft.name)
    stage, columns = _materialise(ctx, ft.query, list(ft.keys), ft.timestamp_key, ft.qualified)
    try:
        if [c for c, _ in columns] != list(ft.columns):
            raise E.ProgrammingError(
                f"the query of {ft.qualified!r} now returns columns {[c for c, _ in columns]}, not {list(ft.columns)}",
                hint="recreate it with CREATE OR REPLACE FEATURE TABLE",
            )
        snap = delta.snapshot(ref.path)
        reader = ctx.run(f"SELECT * FROM {stage}").to_arrow_reader(
            ctx.session.settings["batch_rows"]
        )
        keys = list(ft.keys) + ([ft.timestamp_key] if ft.timestamp_key else [])
        version = delta.upsert(
            ref.path,
            delta.conform(reader, snap.schema),
            keys,
            sql=ctx.statement,
            operation="REFRESH FEATURE TABLE",
        )
    finally:
        ctx.cur.execute(f"DROP TABLE IF EXISTS {stage}")
    doc = dict(ft.doc)
    try:
        query_node = parse_statement(ft.query)
        doc["sources"] = _sources(ctx, query_node)
    except E.Error:
        pass
    doc["versions"] = [
        *doc.get("versions", []),
        {"version": version, "at": _now(), "operation": "REFRESH"},
    ]
    ctx.session.warehouse.put_doc(KIND, doc_name(ft.schema, ft.name), doc)
    ctx.session.invalidate(ref)
    return Result(message="REFRESH FEATURE TABLE")


def table_rows(session: Session) -> pa.Table:
    """Rows of the system table lakesql.feature_tables."""
    rows = []
    for doc in session.warehouse.docs(KIND).values():
        ft = FeatureTable.from_doc(doc)
        versions = doc.get("versions") or [{}]
        rows.append(
            {
                "schema": ft.schema,
                "name": ft.name,
                "primary_keys": list(ft.keys),
                "timestamp_key": ft.timestamp_key,
                "ttl": ft.ttl,
                "features": ft.features,
                "comment": ft.comment,
                "query": ft.query,
                "version": versions[-1].get("version"),
                "sources": [f"{s['table']}@v{s['version']}" for s in doc.get("sources", [])],
                "created_by": doc.get("created_by"),
                "created_at": doc.get("created_at"),
                "models": dependent_models(session, ft),
            }
        )
    schema = pa.schema(
        [
            ("schema", pa.string()),
            ("name", pa.string()),
            ("primary_keys", pa.list_(pa.string())),
            ("timestamp_key", pa.string()),
            ("ttl", pa.string()),
            ("features", pa.list_(pa.string())),
            ("comment", pa.string()),
            ("query", pa.string()),
            ("version", pa.int64()),
            ("sources", pa.list_(pa.string())),
            ("created_by", pa.string()),
            ("created_at", pa.string()),
            ("models", pa.list_(pa.string())),
        ]
    )
    rows.sort(key=lambda r: (r["schema"], r["name"]))
    return pa.Table.from_pylist(rows, schema=schema)


def show(ctx: Context, node: lx.ShowFeatureTables) -> Result:
    table = table_rows(ctx.session)
    pattern = node.args.get("this")
    name = "__lakesql_feature_tables"
    ctx.cur.register(name, table)
    cols = "schema, name, primary_keys, timestamp_key, ttl, features, comment, version"
    where = (
        f" WHERE name LIKE {literal(pattern.name)} OR schema || '.' || name LIKE {literal(pattern.name)}"
        if pattern
        else ""
    )
    ctx.run(f"SELECT {cols} FROM {name}{where} ORDER BY schema, name")

    return Result(cursor=ctx.cur)


def describe(ctx: Context, node: lx.DescribeFeatureTable) -> Result:
    ft = require(ctx.session, node.this)
    view = f"{quote(ft.schema)}.{quote(ft.name)}"
    types = ft.doc.get("types", {})
    total_row = ctx.run(f"SELECT count(*) FROM {view}").fetchone()
    total = int(total_row[0]) if total_row else 0
    rows: list[dict[str, Any]] = []
    for col in ft.columns:
        typ = str(types.get(col, ""))
        numeric = any(
            typ.upper().startswith(p)
            for p in (
                "TINYINT",
                "SMALLINT",
                "INTEGER",
                "BIGINT",
                "HUGEINT",
                "FLOAT",
                "DOUBLE",
                "DECIMAL",
                "U",
            )
        )
        mean = f"avg({quote(col)})::DOUBLE" if numeric else "NULL::DOUBLE"
        stats = ctx.run(
            f"SELECT count({quote(col)}), count(DISTINCT {quote(col)}), min({quote(col)})::VARCHAR, "
            f"max({quote(col)})::VARCHAR, {mean} FROM {view}"
        ).fetchone() or (0, 0, None, None, None)
        role = (
            "primary key"
            if col in ft.keys
            else "timestamp key"
            if col == ft.timestamp_key
            else "feature"
        )
        rows.append(
            {
                "name": col,
                "role": role,
                "type": typ,
                "null_fraction": (1 - stats[0] / total) if total else None,
                "distinct_count": stats[1],
                "min": stats[2],
                "max": stats[3],
                "mean": stats[4],
            }
        )
    info = [("rows", str(total)), ("query", ft.query), ("ttl", ft.ttl), ("comment", ft.comment)]
    info += [
        ("source", f"{s['table']} (version {s['version']})") for s in ft.doc.get("sources", [])
    ]
    info += [
        (f"version {v['version']}", f"{v['operation']} at {v['at']}")
        for v in ft.doc.get("versions", [])
    ]
    info += [("model", m) for m in dependent_models(ctx.session, ft)]
    rows += [{"name": k, "role": "table", "type": v} for k, v in info if v is not None]
    schema = pa.schema(
        [
            ("name", pa.string()),
            ("role", pa.string()),
            ("type", pa.string()),
            ("null_fraction", pa.float64()),
            ("distinct_count", pa.int64()),
            ("min", pa.string()),
            ("max", pa.string()),
            ("mean", pa.float64()),
        ]
    )
    return ctx.rows(pa.Table.from_pylist(rows, schema=schema))


def drop(ctx: Context, node: lx.DropFeatureTable) -> Result:

    table: exp.Table = node.this
    ref = ctx.session.warehouse.ref(table.db or None, table.name)
    ft = get(ctx.session, ref)
    if ft is None:
        if node.args.get("exists"):
            return Result(message="DROP FEATURE TABLE")
        require(ctx.session, table)
        raise AssertionError  # require raised
    models = dependent_models(ctx.session, ft)
    if models and not node.args.get("cascade"):
        raise E.CatalogError(
            f"feature table {ft.qualified!r} is used by model(s) {', '.join(models)}",
            hint="drop the models first, or use DROP FEATURE TABLE ... CASCADE (which drops them too)",
        )
    for model in models:
        ctx.session.drop_model_for_cascade(model)
    ctx.session.warehouse.delete_doc(KIND, doc_name(ref.schema, ref.name))
    if ctx.session.warehouse.exists(ref):
        delta.remove_table(ref.path)
    ctx.session.invalidate(ref)
    return Result(message="DROP FEATURE TABLE")


# -- ML.FEATURES_AT_TIME -----------------------------------------------------------------------


def expand(session: Session, cur: Any, sql: str) -> str:
    """Replace every ML.FEATURES_AT_TIME(...) call in `sql` by its point-in-time query."""

    def build(call: rewrite.FeaturesCall) -> str:
        spine = expand(session, cur, call.spine) if call.spine_is_query else call.spine
        source = spine if call.spine_is_query else f"SELECT * FROM {spine}"
        try:
            described = session.engine.run(cur, f"DESCRIBE {source}").fetchall()
        except E.Error as e:
            raise type(e)(
                f"the spine of ML.FEATURES_AT_TIME cannot be read: {e.message}", hint=e.hint
            ) from e
        columns = [r[0] for r in described]
        tables = [require(session, name) for name in call.tables]
        time_column = call.named.get("time_column")
        if time_column is not None:
            time_column = time_column.strip().strip("'\"")
            if time_column.lower() not in {c.lower() for c in columns}:
                raise E.ProgrammingError(
                    f"time_column {time_column!r} is not a column of the spine",
                    hint=E.suggest(time_column, columns)
                    or f"the spine's columns are: {', '.join(columns)}",
                )
        return point_in_time_sql(
            source, columns, tables, time_column=time_column, ttl=call.named.get("ttl")
        )

    return rewrite.expand(sql, build)


def lookup_sql(
    session: Session,
    cur: Any,
    spine_sql: str,
    feature_tables: list[str],
    *,
    time_column: str | None = None,
    ttl: str | None = None,
    pin: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """The lookup API for training and inference: the point-in-time query and what it read.

    Args:
        pin: read each feature table at the version recorded (VERSION AS OF), not its newest.

    Returns:
        (SQL text, [{"table", "version", "features", "keys", "timestamp_key"}]).
    """
    described = session.execute(f"DESCRIBE {spine_sql}", cur=cur).cursor  # time travel resolved
    columns = [r[0] for r in described.fetchall()] if described is not None else []
    tables = [require(session, name) for name in feature_tables]
    used = []
    relations = {}
    for ft in tables:
        snap = delta.snapshot(session.warehouse.ref(ft.schema, ft.name).path)
        used.append(
            {
                "table": ft.qualified,
                "version": snap.version,
                "features": ft.features,
                "keys": list(ft.keys),
                "timestamp_key": ft.timestamp_key,
            }
        )
        if pin:
            relations[ft.qualified] = (
                f"{quote(ft.schema)}.{quote(ft.name)} VERSION AS OF {snap.version}"
            )
    sql = point_in_time_sql(
        spine_sql, columns, tables, time_column=time_column, ttl=ttl, relations=relations
    )
    return sql, used


# this area's part of the statement table (lakesql.statements)
STATEMENTS: tuple[Statement, ...] = (
    Statement(lx.CreateFeatureTable, create, Privilege.WRITE, in_transaction=False),
    Statement(lx.RefreshFeatureTable, refresh, Privilege.WRITE, in_transaction=False),
    Statement(lx.ShowFeatureTables, show, Privilege.READ),
    Statement(lx.DescribeFeatureTable, describe, Privilege.READ),
    Statement(lx.DropFeatureTable, drop, Privilege.WRITE, in_transaction=False),
)
