"""DuckDB's `rowid` pseudo-column over Delta tables.

A Delta table is a DuckDB view over its Parquet files, and a view has no rowid. When a statement
DuckDB runs names `rowid` (or `t.rowid`) of a warehouse table that has no such column, the table
is read through its companion view (`Session.rowid_view`), which adds the row's position in the
table's files (oldest first, as DuckDB numbers rows in insertion order) as a hidden column; the
references are renamed to it and `*` / `t.*` in that query exclude it, so the column never shows.

Positions are those of the current version: lakesql rewrites a table's files on UPDATE/DELETE, so
unlike DuckDB's rowids they are renumbered by those statements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from lakesql.dialect.dialect import LakeSQL, parse_statement
from lakesql.engine.duckdb import ROWID_COLUMN, quote
from lakesql.engine.names import target_ref
from lakesql.errors import Error

if TYPE_CHECKING:
    from lakesql.context import Context


def rewrite(ctx: Context, sql: str) -> str:
    """`sql` with the rowid references of warehouse tables read from their companion views
    (`sql` itself when it has none)."""
    node = parse_if_mentioned(sql, "rowid")
    if node is None:
        return sql
    # unaliased projections over rowid keep a name without ours (DuckDB names them by their text)
    named = {
        id(p): (p, p.sql(dialect=LakeSQL, normalize_functions="lower"))
        for select in node.find_all(exp.Select)
        for p in select.expressions
        if not isinstance(p, (exp.Alias, exp.Column, exp.Star))
        and any(c.name.lower() == "rowid" for c in p.find_all(exp.Column))
    }
    changed = False
    hidden: list[str] = []  # one name per table read with its position: a NATURAL JOIN of two
    for query in outer_queries(node):  # never pairs them
        for scope in traverse_scope(query):
            changed |= _rewrite_scope(ctx, scope, hidden)
    if not changed:
        return sql
    for proj, name in named.values():
        if ROWID_COLUMN in proj.sql(dialect=LakeSQL):
            proj.replace(exp.alias_(proj.copy(), name, quoted=True))
    return node.sql(dialect=LakeSQL)


def parse_if_mentioned(sql: str, word: str) -> exp.Expr | None:
    """`sql` parsed when it mentions `word` (any case), else None; None too when our parser
    cannot read it (DuckDB then reports its own syntax errors)."""
    if word not in sql.lower():
        return None
    try:
        return parse_statement(sql)
    except Error:
        return None


def outer_queries(node: exp.Expr) -> list[exp.Query]:
    if isinstance(node, exp.Query):
        return [node]
    return [q for q in node.find_all(exp.Query) if q.find_ancestor(exp.Query) is None]


def source_table(scope: Scope, col: exp.Column) -> exp.Table | None:
    """The table of `scope` that column `col` is read from (by its qualifier, or the scope's one
    source), or None (another kind of source, or several sources: DuckDB decides)."""
    tables = {
        alias.lower(): source
        for alias, source in scope.sources.items()
        if isinstance(source, exp.Table)
    }
    if col.table:
        return tables.get(col.table.lower())
    if len(scope.sources) == 1 and len(tables) == 1:
        return next(iter(tables.values()))
    return None


def delta_columns(ctx: Context, table: exp.Table) -> tuple[str, str, dict[str, str]] | None:
    """(schema, name, {lower-case column: DuckDB type}) of the warehouse table `table` names as
    read now (not time travel), or None when it names something else."""
    if table.args.get("version") is not None:
        return None
    try:
        ref = target_ref(ctx, table)
    except Error:  # not a table name (a file path, say): DuckDB's
        return None
    if ref is None or not ctx.session.warehouse.exists(ref):
        return None
    rows = ctx.lookup(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = ? AND table_name = ?",
        [ref.schema, ref.name],
    )
    return ref.schema, ref.name, {str(c).lower(): str(t) for c, t in rows}


def _rewrite_scope(ctx: Context, scope: Scope, hidden: list[str]) -> bool:
    """Read the tables whose rowid `scope` names from their companion views; `hidden` collects
    the position columns' names given so far in the statement."""
    marked: dict[str, tuple[exp.Table, str, str]] = {}
    renamed: list[tuple[exp.Column, str]] = []
    for col in scope.columns:
        if not isinstance(col.this, exp.Identifier) or col.name.lower() != "rowid":
            continue
        table = source_table(scope, col)
        found = delta_columns(ctx, table) if table is not None else None
        if table is None or found is None or "rowid" in found[2]:
            continue
        alias = table.alias_or_name.lower()
        marked.setdefault(alias, (table, found[0], found[1]))
        renamed.append((col, alias))
    if not marked:
        return False
    names = {}
    for alias in marked:
        names[alias] = ROWID_COLUMN if not hidden else f"{ROWID_COLUMN}_{len(hidden)}"
        hidden.append(names[alias])
    select = scope.expression
    for col, alias in renamed:
        name = col.this
        col.set("this", exp.to_identifier(names[alias]))
        if isinstance(select, exp.Select) and col.parent is select:  # keeps its name: rowid
            col.replace(exp.alias_(col.copy(), name))
    for alias, (table, schema, name) in marked.items():
        view = ".".join(quote(p) for p in ctx.session.rowid_view(schema, name))
        rename = (
            "" if names[alias] == ROWID_COLUMN else f" RENAME ({ROWID_COLUMN} AS {names[alias]})"
        )
        query: exp.Expr = exp.maybe_parse(f"SELECT *{rename} FROM {view}", dialect=LakeSQL)
        assert isinstance(query, exp.Select)
        source = query.subquery(exp.to_identifier(table.alias_or_name, quoted=True))
        table.replace(source)
    if isinstance(select, exp.Select):
        for proj in select.expressions:
            if isinstance(proj, exp.Star):
                star, drop = proj, list(names.values())
            elif isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star):
                star, drop = (
                    proj.this,
                    [names[proj.table.lower()]] if proj.table.lower() in names else [],
                )
            else:
                continue
            if drop:
                extra = [exp.column(n) for n in drop]
                star.set("except_", [*(star.args.get("except_") or []), *extra])
    return True
