"""The Session: one warehouse, one DuckDB engine, and the statement pipeline.

text -> split -> parse (LakeSQL dialect) -> executor from the table, or DuckDB as written.
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lakesql import config, statements
from lakesql import errors as E
from lakesql.catalog.warehouse import TableRef, Warehouse, validate_name
from lakesql.context import ROLES, Context, Privilege, Result
from lakesql.dialect.batch import parameter_rows as parameter_rows_of
from lakesql.dialect.classify import Classified, classify, returns_count
from lakesql.dialect.dialect import parse_statement
from lakesql.engine import transactions as transaction
from lakesql.engine.dml import parameter_table
from lakesql.engine.duckdb import Engine, rowid_view_name
from lakesql.engine.rewrites import rewrite_for_duckdb
from lakesql.engine.timetravel import rewrite_time_travel
from lakesql.features import store as features
from lakesql.ml import inference, registry
from lakesql.script import Statement, split_statements
from lakesql.storage import delta
from lakesql.udfs import UdfSpec, first_doc_line, load_folder, resolve


class Session:
    """A connection to a warehouse.

    Args:
        warehouse: warehouse folder (default: setting `warehouse`, `LAKESQL_WAREHOUSE`, ./lakehouse).
        **settings: any setting of :data:`lakesql.config.SETTINGS`.
    """

    def __init__(
        self,
        warehouse: str | os.PathLike[str] | None = None,
        *,
        role: str | None = None,
        allowed_directories: Sequence[str] = (),
        **settings: Any,
    ):
        self.role = _privilege_of(role)
        self.settings = config.resolve(
            {**settings, "warehouse": None if warehouse is None else os.fspath(warehouse)}
        )
        self._defaults = dict(self.settings)
        self.warehouse = Warehouse(self.settings["warehouse"])
        self.engine = Engine(
            threads=self.settings["threads"],
            memory_limit=self.settings["memory_limit"],
            reader=self.settings["delta_reader"],
        )
        self._stamps: dict[tuple[str, str], int] = {}
        self._system_stamps: dict[str, int] = {}
        self._schemas: set[str] = {"main"}
        self._lock = threading.RLock()
        self._functions: dict[str, dict[str, Any]] = {}
        # DuckDB cursors whose user ran PRAGMA enable_verification (kept alive: ids stay unique)
        self._verifying: dict[int, Any] = {}
        self._suspended: set[int] = set()  # of those, the ones running lakesql's own statements
        self.unoptimized: set[int] = set()  # DuckDB cursors whose user ran PRAGMA disable_optimizer
        # per cursor: the views the last statement's ML.* calls registered (inference.release)
        self.ml_views: dict[int, list[str]] = {}
        self._transactions: dict[int, Any] = {}  # DuckDB cursor id -> open Transaction
        self._rowid_views: set[tuple[str, str]] = set()  # tables with a rowid companion view
        self._rowid_refused: dict[tuple[str, str], E.Error] = {}  # why sync() could not define one
        self._udf_folder = Path(
            self.settings["udfs"] or "udfs"
        ).resolve()  # fixed: SQL cannot set it
        self._load_udfs()
        self.allowed_directories = [str(self.warehouse.root)]
        if self.role is not None:  # an untrusted user: DuckDB confined from here on
            if self.role >= Privilege.ADMIN:
                self.allowed_directories += [os.fspath(d) for d in allowed_directories]
            self.engine.lock_down(self.allowed_directories)

    # -- catalog sync ----------------------------------------------------------------------------
    def sync(self) -> None:
        """Make DuckDB's views match the newest committed version of every table."""
        with self._lock:
            seen: set[tuple[str, str]] = set()
            schemas = self.warehouse.schemas()
            for schema in schemas:
                if schema not in self._schemas:
                    self.engine.ensure_schema(schema)
                    self._schemas.add(schema)
                for name in self.warehouse.tables(schema):
                    key = (schema, name)
                    seen.add(key)
                    ref = self.warehouse.ref(schema, name)
                    stamp = self.warehouse.log_stamp(ref)
                    if stamp is None or self._stamps.get(key) == stamp:
                        continue
                    snap = None
                    try:
                        snap = delta.snapshot(ref.path)
                        self.engine.define_view(schema, name, snap)
                    except E.UnknownObjectError:  # created but not yet committed
                        continue
                    except BaseException as e:  # this table alone: reading it raises, others work
                        if not isinstance(e, Exception) and type(e).__name__ != "PanicException":
                            raise  # KeyboardInterrupt, SystemExit (delta-rs panics are caught)
                        self._unreadable(key, e, snap)
                        self._stamps[key] = stamp
                        continue
                    if key in self._rowid_views:  # views over it read the new version too
                        try:
                            self.engine.define_view(
                                *rowid_view_name(schema, name), snap, rowid=True
                            )
                        except E.NotSupportedError as e:  # for rowid_view() to raise
                            self.engine.drop_view(*rowid_view_name(schema, name))
                            self._rowid_views.discard(key)
                            self._rowid_refused[key] = e
                    self._stamps[key] = stamp
            for key in list(self._stamps):
                if key not in seen:
                    self.engine.drop_view(*key)
                    if key in self._rowid_views:
                        self.engine.drop_view(*rowid_view_name(*key))
                        self._rowid_views.discard(key)
                    del self._stamps[key]
            for schema in list(self._schemas):
                if schema not in schemas and schema != "main":
                    self.forget_schema(schema)
            self._sync_system_tables()

    def _unreadable(self, key: tuple[str, str], error: BaseException, snap: Any) -> None:
        """Table `key` cannot be read (sync): its view raises when used, naming the table."""
        self.engine.define_unreadable_view(
            *key,
            error if isinstance(error, Exception) else RuntimeError(str(error)),
            snap.schema if snap is not None else None,
        )
        if key in self._rowid_views:
            self.engine.drop_view(*rowid_view_name(*key))
            self._rowid_views.discard(key)
            self._rowid_refused[key] = E.OperationalError(
                f"table '{key[0]}.{key[1]}' cannot be read: {error}"
            )

    def table_stamps(self) -> dict[tuple[str, str], int]:
        """Each table's commit-log stamp as the last sync() saw it (it changes with every commit)."""
        with self._lock:
            return dict(self._stamps)

    def rowid_view(self, schema: str, name: str) -> tuple[str, str]:
        """(schema, name) of a view of table schema.name (as synced) plus its rows' positions
        in column ROWID_COLUMN, defined on first use and kept in step with the table by sync().

        Raises:
            NotSupportedError: the table is read through the delta extension.
        """
        key = (schema, name)
        with self._lock:
            if key not in self._rowid_views:
                self._rowid_views.add(key)
                self._stamps.pop(key, None)  # sync() defines the table's views at one version
                self.sync()
            refused = self._rowid_refused.pop(key, None)
            if refused is not None:
                raise refused
        return rowid_view_name(schema, name)

    def _sync_system_tables(self) -> None:
        """Rebuild lakesql.<kind> system tables whose catalog folder changed."""
        for table, (kind, build) in SYSTEM_TABLES.items():
            try:
                stamp = os.stat(self.warehouse.root / "_lakesql" / kind).st_mtime_ns
            except FileNotFoundError:
                stamp = 0
            if self._system_stamps.get(table) == stamp:
                continue
            self.engine.replace_table("lakesql", table, build(self))
            self._system_stamps[table] = stamp

    def models_changed(self) -> None:
        """The registry changed: rebuild the model system tables at the next statement."""
        for table, (kind, _) in SYSTEM_TABLES.items():
            if kind == "models" or table == "feature_tables":
                self._system_stamps.pop(table, None)

    def invalidate(self, ref: TableRef) -> None:
        """Forget what is known of `ref` so the next sync reads it again."""
        with self._lock:
            self._stamps.pop((ref.schema, ref.name), None)
            if not self.warehouse.exists(ref):
                self.engine.drop_view(ref.schema, ref.name)

    def forget_schema(self, schema: str) -> None:
        with self._lock:
            self.engine.drop_schema(schema)
            self._schemas.discard(schema)
            for key in [k for k in self._stamps if k[0] == schema]:
                del self._stamps[key]

    def is_temp_object(self, cur: Any, name: str) -> bool:
        """True when `name` is a TEMP table or view of this cursor's DuckDB connection."""
        rows = cur.execute(
            "SELECT 1 FROM duckdb_tables() WHERE temporary AND lower(table_name) = lower(?) "
            "UNION ALL SELECT 1 FROM duckdb_views() WHERE temporary AND lower(view_name) = lower(?)",
            [name, name],
        ).fetchall()
        return bool(rows)

    # -- execution -------------------------------------------------------------------------------
    def cursor(self) -> Any:
        return self.engine.cursor()

    def execute_many(
        self, sql: str, parameter_rows: Any, *, cur: Any, multi_row: bool = False
    ) -> Result | None:
        """Run `INSERT INTO t [(cols)] VALUES (?, ...)` once for a batch of parameter rows: the
        rows become an Arrow table registered on `cur`, read by the statement as `INSERT INTO t
        (cols) SELECT ... FROM` it, so DuckDB casts and checks them as one statement (defaults,
        NOT NULL, constraints: an error commits nothing) and the table gets one commit.

        Returns:
            The statement's Result (rowcount: rows inserted), or None when `sql` is not such an
            INSERT (`multi_row`: with several VALUES tuples) or the rows have no one Arrow type
            per column: the caller runs it per row.
        """
        shape = parameter_rows_of(sql)
        if shape is None or not isinstance(parameter_rows, (list, tuple)) or not parameter_rows:
            return None
        if multi_row and len(shape.tuples) < 2:
            return None
        columns = shape.columns(parameter_rows)
        table = parameter_table(columns) if columns is not None else None
        if table is None:
            return None
        name = f"__lakesql_params_{uuid.uuid4().hex[:12]}"
        cur.register(name, table)
        try:
            return self.execute(shape.select(name, table.column_names), cur=cur, original=sql)
        finally:
            cur.unregister(name)

    def execute(
        self, sql: str, params: Any = None, *, cur: Any = None, original: str = ""
    ) -> Result:
        """Execute one statement.

        Args:
            sql: the statement (a trailing `;` is allowed).
            params: qmark (`?`) or numbered (`$1`) parameters, bound by DuckDB.
            cur: DuckDB cursor to run on (default: a new one).
            original: the statement as the user wrote it, when `sql` is lakesql's rewrite of it
                (recorded in commit infos).

        Returns:
            A :class:`Result`.

        Raises:
            lakesql.Error: a subclass saying what went wrong; nothing was committed.
        """
        if isinstance(sql, str) and "\x00" in sql:
            # DuckDB stops reading a statement at a NUL byte: the rest would be ignored silently.
            raise E.ParseError(
                "the statement contains a NUL byte",
                span=E.SourceSpan(sql, sql.index("\x00")),
                hint="remove it; pass binary values as parameters",
            )
        cur = cur if cur is not None else self.engine.cursor()
        statements = split_statements(sql)
        if not statements:
            return Result()
        if len(statements) > 1 and params:
            raise E.ProgrammingError("parameters can only be bound to a single statement")
        if len(statements) == 1 and _many_values(statements[0].sql, params):
            batch = self.execute_many(statements[0].sql, [params], cur=cur, multi_row=True)
            if batch is not None:
                return batch
        result = Result()
        for st in statements:
            kind = classify(st.sql)
            result = self._execute_one(kind, params, cur, original)
            tx = self.transaction(cur)
            if tx is not None and result.cursor is None and kind.bare_transaction is None:
                tx.statements.append(
                    original or st.sql
                )  # the COMMIT's commit info lists its writes
        return result

    def _execute_one(self, kind: Classified, params: Any, cur: Any, original: str = "") -> Result:
        self.sync()
        verify = kind.pragma_switch("verification")
        if verify is not None:  # DuckDB's self-check; lakesql's own statements run without it
            if verify:
                self._verifying[id(cur)] = cur
            else:
                self._verifying.pop(id(cur), None)
                self._suspended.discard(id(cur))
        optimize = kind.pragma_switch("optimizer")
        if optimize is not None:  # without the optimizer DuckDB has no column statistics
            if optimize:
                self.unoptimized.discard(id(cur))
            else:
                self.unoptimized.add(id(cur))
        self._internal(cur)
        prepared = self._prepare(kind, params, cur, original)
        if isinstance(prepared, Result):
            return prepared
        node, text = prepared
        if id(cur) in self._suspended:
            self.engine.run(cur, "PRAGMA enable_verification")
            self._suspended.discard(id(cur))
        try:
            duck = self.engine.run(cur, text, params)
        except E.CatalogError as e:
            raise self._explain_missing(e) from e
        if returns_count(node):
            desc = duck.description
            count = -1
            if desc and len(desc) == 1 and desc[0][0] == "Count":
                row = duck.fetchone()
                count = int(row[0]) if row else -1
            return Result(rowcount=count)
        return Result(cursor=cur)

    def _internal(self, cur: Any) -> None:
        """Run lakesql's own statements on `cur` without DuckDB's verification.

        Under PRAGMA enable_verification DuckDB runs every SELECT several times and compares the
        results; lakesql's internal SELECTs (the query of CREATE TABLE AS, staging reads) are not
        the user's SELECTs, and a random() in them legitimately differs between runs (DuckDB does
        not verify the query of its own CREATE TABLE AS either). Verification is suspended here
        and enabled again just before a statement of the user's runs on DuckDB (not right after
        lakesql's statement: that would discard the result pending on the cursor).
        """
        if id(cur) in self._verifying and id(cur) not in self._suspended:
            self.engine.run(cur, "PRAGMA disable_verification")
            self._suspended.add(id(cur))

    def _prepare(
        self, kind: Classified, params: Any, cur: Any, original: str = ""
    ) -> Result | tuple[Any, str]:
        """Expand and parse a statement, running it when it is lakesql's: its Result, or the
        (parsed node, text) DuckDB should run as the user's statement."""
        sql = kind.sql
        inference.release(self, cur)
        if kind.expands_ml:
            try:
                original, sql = original or sql, inference.expand(self, cur, sql)
            except E.CatalogError as e:
                raise self._explain_missing(e) from e
        if kind.expands_features:
            try:
                original, sql = original or sql, features.expand(self, cur, sql)
            except E.CatalogError as e:
                raise self._explain_missing(e) from e
        try:
            node = parse_statement(sql)
        except E.ParseError as e:
            if kind.own:
                raise
            _refuse_unread_create_table(kind, e)
            node = None
        if isinstance(node, exp.Command):
            _refuse_unread_create_table(kind, None)
        ctx = Context(self, cur, sql, params, original)
        if self.role is not None:
            self._authorize(ctx, kind, node)
        control = kind.bare_transaction  # sqlglot reads START/END/ABORT as columns
        if control == "BEGIN":
            return transaction.begin(ctx)
        if control == "COMMIT":
            return transaction.commit(ctx)
        if control == "ROLLBACK":
            return transaction.rollback(ctx)
        tx = self.transaction(cur)
        if tx is not None and node is not None:
            statements.refuse_in_transaction(node)
            result = transaction.in_transaction(ctx, tx, node)
            if result is not None:
                return result
        if node is not None:
            result = self.execute_node(ctx, node)
            if result is not None:
                return result
            return node, rewrite_for_duckdb(ctx, rewrite_time_travel(ctx, node))
        return node, sql

    def execute_node(self, ctx: Context, node: Any) -> Result | None:
        """Run parsed statement `node` through the statement table (`lakesql.statements`); None
        when it is DuckDB's to run as written."""
        return statements.execute_node(ctx, node)

    def _authorize(self, ctx: Context, kind: Classified, node: Any) -> None:
        """Refuse what this session's role does not allow (docs/security.md)."""
        assert self.role is not None
        if kind.first in CLIENTS_NEVER:
            raise E.InsufficientPrivilegeError(
                f"permission denied: {kind.first} is not allowed to server clients "
                "(extensions and attached databases are the warehouse owner's)",
                hint="ask the warehouse's owner",
            )
        banned = kind.calls(CLIENT_FUNCTIONS_NEVER)
        if banned:
            raise E.InsufficientPrivilegeError(
                f"permission denied: function {banned} is not allowed to server clients "
                "(it reads process memory, runs serialized plans, or changes the engine)",
                hint="ask the warehouse's owner",
            )
        what, needed = "this statement", Privilege.READ
        row = statements.lookup(node) if node is not None else None
        if row is not None:
            needed = row.privilege(ctx, node)
            what = kind.name
        if isinstance(node, exp.Copy) and not node.args.get("kind"):
            what, needed = "COPY ... TO a server file", Privilege.ADMIN
            # the warehouse is written by lakesql's commits only; a module in the UDF folder
            # would run in the server at the next CREATE FUNCTION
            closed = [
                os.path.join(os.path.realpath(d), "")
                for d in (self.warehouse.root, self.udf_folder)
            ]
            for f in node.args.get("files") or []:
                path = os.path.realpath(f.name) if isinstance(f, exp.Literal) else None
                if path is None or any(path.startswith(d) for d in closed):
                    raise E.InsufficientPrivilegeError(
                        "permission denied: COPY ... TO a file inside the warehouse or the UDF "
                        "folder, or to a path not written as a literal",
                        hint="COPY ... TO STDOUT sends the rows to the client",
                    )
        if needed > self.role:
            raise E.InsufficientPrivilegeError(
                f"permission denied: {what} needs the {needed.name} privilege, which role "
                f"{ROLE_NAMES[self.role]!r} does not have",
                hint=f"connect as a user whose role is {ROLE_NAMES[needed]!r} or above",
            )

    def transaction(self, cur: Any) -> Any:
        """The open transaction (engine.transactions.Transaction) of DuckDB cursor `cur`, or None."""
        return self._transactions.get(id(cur))

    def set_transaction(self, cur: Any, tx: Any) -> None:
        if tx is None:
            self._transactions.pop(id(cur), None)
        else:
            self._transactions[id(cur)] = tx

    def forget_cursor(self, cur: Any) -> None:
        """`cur` is closing: its transaction (uncommitted) and verification state end with it."""
        self._transactions.pop(id(cur), None)
        self._verifying.pop(id(cur), None)
        self._suspended.discard(id(cur))
        self.unoptimized.discard(id(cur))

    def _explain_missing(self, e: E.CatalogError) -> E.Error:
        """Replace DuckDB's guess for a missing table by one from the warehouse's tables."""
        if e.missing is None:
            return e
        name = e.missing
        tables = self.warehouse.all_tables()
        candidates = [t.name if t.schema == "main" else t.qualified for t in tables]
        hint = E.suggest(name, candidates) or "SHOW TABLES lists the tables"
        # DuckDB's own first line (what DuckDB users and tests match on); the hint is ours, as
        # DuckDB's "Did you mean" can name lakesql's internal views.
        message = e.message.split("\n")[0]
        return E.UnknownObjectError(message, span=e.span, hint=hint)

    def execute_script(
        self, script: str, *, line_offset: int = 0
    ) -> Iterator[tuple[Statement, Result]]:
        """Run each statement of `script`, yielding it with its result; stops at the first error.

        Errors carry the statement's line in the script.
        """
        for st in split_statements(script):
            try:
                yield st, self.execute(st.sql)
            except E.Error as e:
                e.span = (
                    e.span.shifted(st.line - 1 + line_offset)
                    if e.span
                    else E.SourceSpan(st.sql, 0, line_offset=st.line - 1 + line_offset)
                )
                raise

    # -- settings --------------------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        key = name.lower().removeprefix("lakesql.")
        converted = config.validate(key, value)
        config.check_settable(key)  # the warehouse and the UDF folder are fixed at connect
        self.engine.configure(key, converted)  # threads, memory_limit: refused values raise
        self.settings[key] = converted

    def reset(self, name: str) -> None:
        key = name.lower().removeprefix("lakesql.")
        config.validate(key, self._defaults.get(key))
        if not config.SETTINGS[key].fixed:  # a fixed setting has its connect value already
            self.set(key, self._defaults[key])

    # -- UDFs ------------------------------------------------------------------------------------
    @property
    def udf_folder(self) -> Path:
        """The UDF folder, fixed (as an absolute path) when the session started."""
        return self._udf_folder

    def _load_udfs(self) -> None:
        for spec in load_folder(self.udf_folder):
            self._register(spec, kind="module")
        for name, doc in self.warehouse.docs("functions").items():
            try:
                fn = resolve(doc["target"], self.udf_folder)
            except E.Error as e:  # importable where it was created, not here
                warnings.warn(
                    f"lakesql: function {name!r} is not available in this session: {e}",
                    stacklevel=2,
                )
                continue
            self._register(
                UdfSpec(
                    name,
                    tuple(doc["params"]),
                    doc["returns"],
                    fn,
                    doc=first_doc_line(fn),
                    origin=doc["target"],
                ),
                kind="catalog",
            )

    def _register(self, spec: UdfSpec, *, kind: str) -> None:
        self.engine.register_function(spec.name, spec.fn, list(spec.params), spec.returns)
        self._functions[spec.name] = {
            "name": spec.name,
            "params": ", ".join(spec.params),
            "returns": spec.returns,
            "origin": spec.origin,
            "kind": kind,
            "description": spec.doc,
        }

    def create_function(
        self, name: str, *, params: list[str], returns: str, target: str, replace: bool, sql: str
    ) -> None:
        name = validate_name(name, "function name")
        if self.warehouse.get_doc("functions", name) is not None and not replace:
            raise E.ObjectExistsError(
                f"function {name!r} already exists", hint="use CREATE OR REPLACE FUNCTION"
            )
        if self._functions.get(name, {}).get("kind") == "module" and not replace:
            raise E.ObjectExistsError(
                f"function {name!r} already exists: it comes from the UDF folder",
                hint="choose another name, or CREATE OR REPLACE FUNCTION to shadow it",
            )
        fn = resolve(target, self.udf_folder)
        self._register(
            UdfSpec(name, tuple(params), returns, fn, doc=first_doc_line(fn), origin=target),
            kind="catalog",
        )
        self.warehouse.put_doc(
            "functions", name, {"params": params, "returns": returns, "target": target, "sql": sql}
        )

    def drop_function(self, name: str, *, if_exists: bool) -> None:
        name = validate_name(name, "function name")
        if not self.warehouse.delete_doc("functions", name):
            if name in self._functions and self._functions[name]["kind"] == "module":
                raise E.ProgrammingError(
                    f"function {name!r} comes from the UDF folder",
                    hint="remove it from the module instead",
                )
            if if_exists:
                return
            raise E.UnknownObjectError(
                f"function {name!r} does not exist", hint=E.suggest(name, self._functions)
            )
        self.engine.unregister_function(name)
        self._functions.pop(name, None)

    def functions_table(self) -> pa.Table:
        cols = ("name", "params", "returns", "origin", "kind", "description")
        rows = [self._functions[k] for k in sorted(self._functions)]
        return pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in cols]))

    def drop_model_for_cascade(self, name: str) -> None:
        """Remove a model's registry entry and files (DROP FEATURE TABLE ... CASCADE)."""
        registry.drop(self.warehouse, name, None)
        self.models_changed()

    def close(self) -> None:
        self.engine.close()


# system table -> (catalog folder whose changes rebuild it, builder)
SYSTEM_TABLES: dict[str, tuple[str, Any]] = {
    "feature_tables": ("feature_tables", features.table_rows),
    "models": ("models", lambda s: registry.models_table(s.warehouse)),
    "model_versions": ("models", lambda s: registry.versions_table(s.warehouse)),
    "trials": ("models", lambda s: registry.trials_table(s.warehouse)),
}


# first words of statements no server client may run, whatever the role
CLIENTS_NEVER = {"INSTALL", "FORCE", "LOAD", "ATTACH", "DETACH", "EXPORT", "IMPORT"}
# DuckDB functions no server client may call: they scan Python objects by address, run SQL or
# serialized plans past lakesql, copy or import databases, or change the engine's logging
CLIENT_FUNCTIONS_NEVER = frozenset(
    {
        "arrow_scan",
        "arrow_scan_dumb",
        "pandas_scan",
        "python_map_function",
        "json_execute_serialized_sql",
        "query",
        "copy_database",
        "import_database",
        "add_parquet_key",
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "enable_profiling",
        "enable_profile",
        "disable_checkpoint_on_shutdown",
        "enable_checkpoint_on_shutdown",
        "enable_object_cache",
        "disable_object_cache",
    }
)
ROLE_NAMES = {p: name for name, p in ROLES.items()}


def _privilege_of(role: str | None) -> Privilege | None:
    if role is None:
        return None
    try:
        return ROLES[role.lower()]
    except KeyError:
        raise E.OptionError(
            f"unknown role {role!r}", hint="valid roles: " + ", ".join(ROLES)
        ) from None


def _many_values(sql: str, params: Any) -> bool:
    """A multi-row INSERT ... VALUES (?, ...), (?, ...) worth running from an Arrow table (its
    text is not parsed whole: pandas' method="multi" sends thousands of parameters)."""
    return (
        isinstance(params, (list, tuple))
        and len(params) >= _MANY_PARAMETERS
        and classify(sql).first == "INSERT"
    )


_MANY_PARAMETERS = 64


def _refuse_unread_create_table(kind: Classified, error: E.ParseError | None) -> None:
    """A CREATE TABLE lakesql cannot read must fail, not become a DuckDB in-memory table.

    Handing it to DuckDB would create a table that lives in this session only: its rows would
    never reach the warehouse, silently.
    """
    if not kind.creates_table:
        return
    detail = f" ({error.message})" if error is not None else ""
    raise E.NotSupportedError(
        "this CREATE TABLE uses a form lakesql cannot store as a Delta table" + detail,
        span=error.span if error is not None else None,
        hint="Delta tables take column types, NOT NULL, PARTITIONED BY and COMMENT; "
        "CREATE TEMP TABLE makes a DuckDB table that lives in this session",
    )
