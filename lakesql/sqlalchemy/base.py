"""The ``lakesql://`` SQLAlchemy dialect: DuckDB SQL over a lakesql warehouse.

URLs follow SQLite's convention: ``lakesql:///relative/path``, ``lakesql:////absolute/path``,
``lakesql:///`` for the default warehouse (``LAKESQL_WAREHOUSE`` or ``./lakehouse``); query
parameters are session settings (``?threads=2``).

lakesql commits every statement on its own, so the dialect never emits ``BEGIN``: SQLAlchemy's
commit and rollback call the DB-API's, which have nothing to do. Reflection reads the warehouse
(schemas, Delta tables, feature-table keys, table comments) and DuckDB's catalog functions for
session objects (views, TEMP tables).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import exc
from sqlalchemy import schema as sa_schema
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import default, reflection
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.sql import compiler

from lakesql.sqlalchemy.types import HUGEINT, TINYINT, UNSIGNED, parse_type

# DuckDB's reserved keywords (duckdb_keywords() where keyword_category = 'reserved').
RESERVED_WORDS = {
    *compiler.RESERVED_WORDS,
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
    "case", "cast", "check", "collate", "column", "constraint", "create", "default",
    "deferrable", "desc", "describe", "distinct", "do", "else", "end", "except", "false",
    "fetch", "for", "foreign", "from", "group", "having", "in", "initially", "intersect",
    "into", "lambda", "lateral", "leading", "limit", "not", "null", "offset", "on", "only",
    "or", "order", "pivot", "pivot_longer", "pivot_wider", "placing", "primary", "qualify",
    "references", "returning", "select", "show", "some", "summarize", "symmetric", "table",
    "then", "to", "trailing", "true", "union", "unique", "unpivot", "using", "variadic",
    "when", "where", "window", "with",
    # keywords DuckDB does not accept as bare column names in every position
    "anti", "asof", "at", "authorization", "between", "bigint", "binary", "bit", "boolean", "by",
    "char", "character", "coalesce", "collation", "columns", "concurrently", "cross", "dec",
    "decimal", "exists", "extract", "float", "freeze", "full", "generated", "glob", "grouping",
    "grouping_id", "ilike", "inner", "inout", "int", "integer", "interval", "is", "isnull", "join",
    "left", "like", "map", "national", "natural", "nchar", "none", "notnull", "nullif", "numeric",
    "out", "outer", "overlaps", "overlay", "position", "positional", "precision", "real", "right",
    "row", "semi", "setof", "similar", "smallint", "struct", "substring", "tablesample", "time",
    "timestamp", "treat", "trim", "try_cast", "unpack", "values", "varchar", "verbose",
}  # fmt: skip

_HIDDEN_SCHEMAS = {"information_schema", "pg_catalog"}


def _is_hidden(name: str) -> bool:
    return name.startswith("__") or name in _HIDDEN_SCHEMAS


def _is_temp(table: Any) -> bool:
    return any(p.upper() in ("TEMP", "TEMPORARY") for p in getattr(table, "_prefixes", ()) or ())


class LakeSQLTypeCompiler(compiler.GenericTypeCompiler):
    """DuckDB type names (the ones Delta can store where there is a choice)."""

    def visit_float(self, type_: Any, **kw: Any) -> str:
        precision = getattr(type_, "precision", None)
        return "REAL" if precision is not None and precision <= 24 else "DOUBLE"

    def visit_FLOAT(self, type_: Any, **kw: Any) -> str:
        return self.visit_float(type_, **kw)

    def visit_DOUBLE_PRECISION(self, type_: Any, **kw: Any) -> str:
        return "DOUBLE"

    def visit_NUMERIC(self, type_: Any, **kw: Any) -> str:
        if type_.precision is None:
            return "DECIMAL(38, 10)"
        return f"DECIMAL({type_.precision}, {type_.scale or 0})"

    def visit_DECIMAL(self, type_: Any, **kw: Any) -> str:
        return self.visit_NUMERIC(type_, **kw)

    def visit_TINYINT(self, type_: Any, **kw: Any) -> str:
        return "TINYINT"

    def visit_HUGEINT(self, type_: Any, **kw: Any) -> str:
        return "HUGEINT"

    def visit_UNSIGNED(self, type_: Any, **kw: Any) -> str:
        return str(type_.name)

    def _string(self, type_: Any) -> str:
        return "VARCHAR"  # DuckDB ignores lengths and has one string type

    def visit_VARCHAR(self, type_: Any, **kw: Any) -> str:
        return self._string(type_)

    def visit_CHAR(self, type_: Any, **kw: Any) -> str:
        return self._string(type_)

    def visit_NCHAR(self, type_: Any, **kw: Any) -> str:
        return self._string(type_)

    def visit_NVARCHAR(self, type_: Any, **kw: Any) -> str:
        return self._string(type_)

    def visit_TEXT(self, type_: Any, **kw: Any) -> str:
        return self._string(type_)

    def visit_CLOB(self, type_: Any, **kw: Any) -> str:
        return self._string(type_)

    def visit_NCLOB(self, type_: Any, **kw: Any) -> str:
        return self._string(type_)

    def visit_BINARY(self, type_: Any, **kw: Any) -> str:
        return "BLOB"

    def visit_VARBINARY(self, type_: Any, **kw: Any) -> str:
        return "BLOB"

    def visit_DATETIME(self, type_: Any, **kw: Any) -> str:
        return self.visit_TIMESTAMP(type_, **kw)

    def visit_TIMESTAMP(self, type_: Any, **kw: Any) -> str:
        return "TIMESTAMP WITH TIME ZONE" if getattr(type_, "timezone", False) else "TIMESTAMP"

    def visit_INTERVAL(self, type_: Any, **kw: Any) -> str:
        return "INTERVAL"

    def visit_interval(self, type_: Any, **kw: Any) -> str:
        return "INTERVAL"

    def visit_JSON(self, type_: Any, **kw: Any) -> str:
        return "JSON"

    def visit_ARRAY(self, type_: Any, **kw: Any) -> str:
        inner = self.process(type_.item_type, **kw)
        return inner + "[]" * (type_.dimensions or 1)


class LakeSQLCompiler(compiler.SQLCompiler):
    """DuckDB SQL."""

    def for_update_clause(self, select: Any, **kw: Any) -> str:
        return ""  # no row locks: each statement is atomic on its own

    def limit_clause(self, select: Any, **kw: Any) -> str:
        text = ""
        if select._limit_clause is not None:
            text += "\n LIMIT " + self.process(select._limit_clause, **kw)
        if select._offset_clause is not None:
            text += "\n OFFSET " + self.process(select._offset_clause, **kw)
        return text

    def visit_regexp_match_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        return self._regexp("regexp_matches", binary, **kw)

    def visit_not_regexp_match_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        return "NOT " + self._regexp("regexp_matches", binary, **kw)

    def _regexp(self, fn: str, binary: Any, **kw: Any) -> str:
        flags = binary.modifiers.get("flags")
        args = [self.process(binary.left, **kw), self.process(binary.right, **kw)]
        if flags is not None:
            args.append(self.render_literal_value(flags, sqltypes.STRINGTYPE))
        return f"{fn}({', '.join(args)})"

    def visit_regexp_replace_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        flags = binary.modifiers.get("flags")
        pattern, replacement = binary.right.clauses
        args = [
            self.process(binary.left, **kw),
            self.process(pattern, **kw),
            self.process(replacement, **kw),
            self.render_literal_value("g" + (flags or ""), sqltypes.STRINGTYPE),
        ]
        return f"regexp_replace({', '.join(args)})"

    def visit_json_getitem_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        return (
            f"json_extract({self.process(binary.left, **kw)}, {self.process(binary.right, **kw)})"
        )

    def visit_json_path_getitem_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        return self.visit_json_getitem_op_binary(binary, operator, **kw)


class LakeSQLDDLCompiler(compiler.DDLCompiler):
    """CREATE TABLE for Delta tables: columns, NOT NULL, PARTITIONED BY and COMMENT.

    Delta tables hold no constraints besides NOT NULL and no indexes, so table constraints
    (primary, foreign, unique, check) and CREATE/DROP INDEX are left out for them; TEMP tables
    (DuckDB's own) keep all of them.
    """

    def create_table_constraints(
        self, table: Any, _include_foreign_key_constraints: Any = None, **kw: Any
    ) -> Any:
        if _is_temp(table):
            return super().create_table_constraints(table, _include_foreign_key_constraints, **kw)
        return ""

    def post_create_table(self, table: Any) -> str:
        if _is_temp(table):
            return ""
        text = ""
        partitioned = table.dialect_options["lakesql"]["partitioned_by"]
        if partitioned:
            cols = ", ".join(
                self.preparer.quote(c if isinstance(c, str) else c.name) for c in partitioned
            )
            text += f"\n PARTITIONED BY ({cols})"
        if table.comment:
            text += "\n COMMENT " + self.sql_compiler.render_literal_value(
                table.comment, sqltypes.String()
            )
        return text

    def get_column_specification(self, column: Any, **kw: Any) -> str:
        spec = (
            f"{self.preparer.format_column(column)} "
            + self.dialect.type_compiler_instance.process(column.type, type_expression=column)
        )
        default = self.get_column_default_string(column)
        if default is not None:
            spec += " DEFAULT " + default
        if not column.nullable:
            spec += " NOT NULL"
        return spec

    def visit_create_index(
        self, create: Any, include_schema: Any = False, include_table_schema: Any = True, **kw: Any
    ) -> Any:
        if _is_temp(create.element.table):
            return super().visit_create_index(create, include_schema, include_table_schema, **kw)
        return ""  # an empty statement: Delta tables have no indexes

    def visit_drop_index(self, drop: Any, **kw: Any) -> str:
        if _is_temp(drop.element.table):
            return str(super().visit_drop_index(drop, **kw))
        return ""

    def visit_set_table_comment(self, create: Any, **kw: Any) -> str:
        raise exc.CompileError("lakesql sets a table's comment only in CREATE TABLE ... COMMENT")

    def visit_set_column_comment(self, create: Any, **kw: Any) -> str:
        raise exc.CompileError("lakesql tables have no column comments")


class LakeSQLIdentifierPreparer(compiler.IdentifierPreparer):
    reserved_words = RESERVED_WORDS


class LakeSQLExecutionContext(default.DefaultExecutionContext):
    pass


class LakeSQLDialect(default.DefaultDialect):
    """SQLAlchemy dialect for lakesql (``lakesql:///path/to/warehouse``)."""

    name = "lakesql"
    driver = "lakesql"
    default_paramstyle = "qmark"
    supports_statement_cache = True

    statement_compiler = LakeSQLCompiler
    ddl_compiler = LakeSQLDDLCompiler
    type_compiler_cls = LakeSQLTypeCompiler
    preparer = LakeSQLIdentifierPreparer
    execution_ctx_cls = LakeSQLExecutionContext

    max_identifier_length = 128
    supports_alter = False
    supports_comments = True
    inline_comments = True
    supports_native_boolean = True
    supports_native_decimal = True
    supports_native_enum = False
    supports_native_uuid = False  # Delta stores UUIDs as strings
    supports_sequences = False
    supports_identity_columns = False
    supports_default_values = True
    supports_default_metavalue = True
    supports_empty_insert = False
    supports_multivalues_insert = True
    supports_is_distinct_from = True
    supports_simple_order_by_label = True
    tuple_in_values = True
    supports_server_side_cursors = False
    postfetch_lastrowid = False
    implicit_returning = False
    insert_returning = False
    update_returning = False
    delete_returning = False
    div_is_floordiv = False
    supports_sane_rowcount = True
    supports_sane_multi_rowcount = False
    # executemany() of an INSERT without RETURNING goes to the DB-API's executemany, which runs
    # it once for all the rows (one Delta commit per call: pandas.to_sql, ORM bulk inserts);
    # SQLAlchemy's pages of multi-row INSERTs would commit once per page.
    use_insertmanyvalues = True
    use_insertmanyvalues_wo_returning = False
    insertmanyvalues_page_size = 5000
    insertmanyvalues_max_parameters = 30000

    _json_serializer = None
    _json_deserializer = None

    colspecs: dict[Any, Any] = {}
    ischema_names = {
        "TINYINT": TINYINT,
        "HUGEINT": HUGEINT,
        "UBIGINT": UNSIGNED,
    }

    construct_arguments = [
        (sa_schema.Table, {"partitioned_by": None}),
    ]

    @classmethod
    def import_dbapi(cls) -> Any:
        import lakesql

        return lakesql

    def create_connect_args(self, url: Any) -> tuple[list[Any], dict[str, Any]]:
        if url.host or url.port or url.username:
            raise exc.ArgumentError(
                "lakesql URLs name a warehouse folder: lakesql:///relative/path or "
                "lakesql:////absolute/path (no host, port or user)"
            )
        database = url.database or None
        settings: dict[str, Any] = dict(url.query)
        if database is not None:
            database = os.path.expanduser(database)
        return [database], settings

    # -- transactions: every statement commits on its own --------------------------------------
    def do_begin(self, dbapi_connection: Any) -> None:
        pass

    def get_isolation_level_values(self, dbapi_connection: Any) -> Any:
        return ["AUTOCOMMIT"]

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        return "AUTOCOMMIT"

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        if level != "AUTOCOMMIT":
            raise exc.ArgumentError(
                f"lakesql commits every statement on its own; isolation level {level!r} "
                "is not available (only AUTOCOMMIT)"
            )

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        import lakesql

        return tuple(int(p) for p in lakesql.__version__.split(".") if p.isdigit())

    def _get_default_schema_name(self, connection: Any) -> str:
        return "main"

    # -- reflection ----------------------------------------------------------------------------
    @staticmethod
    def _session(connection: Any) -> Any:
        return connection.connection.dbapi_connection.session

    @staticmethod
    def _rows(connection: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(connection.exec_driver_sql(sql, params).fetchall())

    def _warehouse_tables(self, connection: Any, schema: str) -> list[str]:
        session = self._session(connection)
        session.sync()
        return list(session.warehouse.tables(schema))

    def _duck_objects(self, connection: Any, schema: str, kind: str, temp: bool) -> list[str]:
        fn, col = (
            ("duckdb_tables()", "table_name")
            if kind == "table"
            else ("duckdb_views()", "view_name")
        )
        extra = "" if kind == "table" else " AND NOT internal"
        if temp:
            rows = self._rows(
                connection,
                f"SELECT {col} FROM {fn} WHERE temporary{extra} ORDER BY 1",
            )
        else:
            rows = self._rows(
                connection,
                f"SELECT {col} FROM {fn} WHERE NOT temporary AND database_name = 'memory' "
                f"AND schema_name = ?{extra} ORDER BY 1",
                (schema,),
            )
        return [r[0] for r in rows if not r[0].startswith("__")]

    def _is_warehouse_table(self, connection: Any, schema: str | None, name: str) -> bool:
        session = self._session(connection)
        return name.lower() in session.warehouse.tables((schema or "main").lower())

    @reflection.cache
    def get_schema_names(self, connection: Any, **kw: Any) -> list[str]:
        session = self._session(connection)
        names = set(session.warehouse.schemas())
        rows = self._rows(
            connection, "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'memory'"
        )
        names.update(r[0] for r in rows)
        return sorted(n for n in names if not _is_hidden(n))

    def has_schema(self, connection: Any, schema_name: str, **kw: Any) -> bool:
        return schema_name.lower() in {s.lower() for s in self.get_schema_names(connection, **kw)}

    @reflection.cache
    def get_table_names(self, connection: Any, schema: str | None = None, **kw: Any) -> list[str]:
        schema = schema or "main"
        names = set(self._warehouse_tables(connection, schema))
        names.update(self._duck_objects(connection, schema, "table", temp=False))
        return sorted(names)

    @reflection.cache
    def get_view_names(self, connection: Any, schema: str | None = None, **kw: Any) -> list[str]:
        schema = schema or "main"
        tables = set(self._warehouse_tables(connection, schema))
        return [
            v for v in self._duck_objects(connection, schema, "view", temp=False) if v not in tables
        ]

    @reflection.cache
    def get_temp_table_names(
        self, connection: Any, schema: str | None = None, **kw: Any
    ) -> list[str]:
        return self._duck_objects(connection, "main", "table", temp=True)

    @reflection.cache
    def get_temp_view_names(
        self, connection: Any, schema: str | None = None, **kw: Any
    ) -> list[str]:
        return self._duck_objects(connection, "main", "view", temp=True)

    def get_sequence_names(
        self, connection: Any, schema: str | None = None, **kw: Any
    ) -> list[str]:
        return []

    def has_table(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> bool:
        self._ensure_has_table_connection(connection)
        if self._is_warehouse_table(connection, schema, table_name):
            return True
        return self._duck_relation(connection, schema, table_name) is not None

    def has_index(
        self,
        connection: Any,
        table_name: str,
        index_name: str,
        schema: str | None = None,
        **kw: Any,
    ) -> bool:
        return any(
            i["name"] == index_name
            for i in self.get_indexes(connection, table_name, schema=schema, **kw)
        )

    def _duck_relation(
        self, connection: Any, schema: str | None, name: str
    ) -> tuple[str, str, str] | None:
        """(database, schema, kind) of a DuckDB table or view, TEMP ones first when no schema."""
        rows = self._rows(
            connection,
            "SELECT database_name, schema_name, 'table', temporary FROM duckdb_tables() "
            "WHERE lower(table_name) = lower(?) "
            "UNION ALL SELECT database_name, schema_name, 'view', temporary FROM duckdb_views() "
            "WHERE lower(view_name) = lower(?) AND NOT internal",
            (name, name),
        )
        for db, sch, kind, temporary in sorted(rows, key=lambda r: not r[3]):
            if schema is None and (temporary or sch == "main") and db in ("memory", "temp"):
                return db, sch, kind
            if schema is not None and db == "memory" and sch.lower() == schema.lower():
                return db, sch, kind
        return None

    def _require_duck_relation(
        self, connection: Any, schema: str | None, name: str
    ) -> tuple[str, str, str]:
        found = self._duck_relation(connection, schema, name)
        if found is None:
            raise exc.NoSuchTableError(f"{schema}.{name}" if schema else name)
        return found

    @reflection.cache
    def get_columns(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[ReflectedColumn]:
        columns: list[ReflectedColumn] = []
        if self._is_warehouse_table(connection, schema, table_name):
            target = self.identifier_preparer.quote(table_name)
            if schema:
                target = self.identifier_preparer.quote_schema(schema) + "." + target
            for name, type_name, null, _key, default_, _extra in self._rows(
                connection, f"DESCRIBE {target}"
            ):
                columns.append(
                    {
                        "name": name,
                        "type": self._type(type_name, name),
                        "nullable": null != "NO",
                        "default": default_,
                        "autoincrement": False,
                    }
                )
            return columns
        db, sch, _kind = self._require_duck_relation(connection, schema, table_name)
        for name, type_name, nullable, default_, comment in self._rows(
            connection,
            "SELECT column_name, data_type, is_nullable, column_default, comment "
            "FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
            "AND lower(table_name) = lower(?) ORDER BY column_index",
            (db, sch, table_name),
        ):
            column: ReflectedColumn = {
                "name": name,
                "type": self._type(type_name, name),
                "nullable": bool(nullable),
                "default": default_,
                "autoincrement": False,
            }
            if comment:
                column["comment"] = comment
            columns.append(column)
        return columns

    def _type(self, type_name: str, column: str) -> sqltypes.TypeEngine[Any]:
        return parse_type(type_name)

    def _feature_doc(self, connection: Any, schema: str | None, name: str) -> dict[str, Any] | None:
        session = self._session(connection)
        schema = (schema or "main").lower()
        for doc in session.warehouse.docs("feature_tables").values():
            if doc.get("schema") == schema and doc.get("name") == name.lower():
                return dict(doc)
        return None

    def _constraints(
        self, connection: Any, schema: str | None, table_name: str, kind: str
    ) -> list[Any]:
        if self._is_warehouse_table(connection, schema, table_name):
            return []
        db, sch, _ = self._require_duck_relation(connection, schema, table_name)
        return self._rows(
            connection,
            "SELECT constraint_name, constraint_column_names, expression, referenced_table, "
            "referenced_column_names FROM duckdb_constraints() WHERE database_name = ? "
            "AND schema_name = ? AND lower(table_name) = lower(?) AND constraint_type = ? "
            "ORDER BY constraint_index",
            (db, sch, table_name, kind),
        )

    @reflection.cache
    def get_pk_constraint(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        if self._is_warehouse_table(connection, schema, table_name):
            doc = self._feature_doc(connection, schema, table_name)
            if doc is None:
                return {"constrained_columns": [], "name": None}
            cols = list(doc.get("keys") or [])
            if doc.get("timestamp_key"):
                cols.append(doc["timestamp_key"])
            return {"constrained_columns": cols, "name": f"{table_name.lower()}_pkey"}
        rows = self._constraints(connection, schema, table_name, "PRIMARY KEY")
        if not rows:
            return {"constrained_columns": [], "name": None}
        return {"constrained_columns": list(rows[0][1]), "name": None}

    @reflection.cache
    def get_foreign_keys(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        out = []
        for _name, cols, _expr, ref_table, ref_cols in self._constraints(
            connection, schema, table_name, "FOREIGN KEY"
        ):
            out.append(
                {
                    "name": None,
                    "constrained_columns": list(cols),
                    "referred_schema": None,
                    "referred_table": ref_table,
                    "referred_columns": list(ref_cols or []),
                    "options": {},
                }
            )
        return out

    @reflection.cache
    def get_indexes(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return []  # Delta tables have no indexes; DuckDB does not list index columns

    @reflection.cache
    def get_unique_constraints(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return [
            {"name": None, "column_names": list(cols)}
            for _name, cols, _e, _rt, _rc in self._constraints(
                connection, schema, table_name, "UNIQUE"
            )
        ]

    @reflection.cache
    def get_check_constraints(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return [
            {"name": None, "sqltext": expr}
            for _name, _cols, expr, _rt, _rc in self._constraints(
                connection, schema, table_name, "CHECK"
            )
        ]

    @reflection.cache
    def get_table_comment(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        if self._is_warehouse_table(connection, schema, table_name):
            from lakesql.storage import delta

            session = self._session(connection)
            ref = session.warehouse.ref(schema, table_name)
            text = delta.snapshot(ref.path).comment
            if text is None:
                doc = self._feature_doc(connection, schema, table_name)
                text = doc.get("comment") if doc else None
            return {"text": text}
        db, sch, kind = self._require_duck_relation(connection, schema, table_name)
        fn, col = (
            ("duckdb_tables()", "table_name")
            if kind == "table"
            else ("duckdb_views()", "view_name")
        )
        rows = self._rows(
            connection,
            f"SELECT comment FROM {fn} WHERE database_name = ? AND schema_name = ? "
            f"AND lower({col}) = lower(?)",
            (db, sch, table_name),
        )
        return {"text": rows[0][0] if rows else None}

    @reflection.cache
    def get_view_definition(
        self, connection: Any, view_name: str, schema: str | None = None, **kw: Any
    ) -> str:
        db, sch, kind = self._require_duck_relation(connection, schema, view_name)
        if kind != "view":
            raise exc.NoSuchTableError(view_name)
        rows = self._rows(
            connection,
            "SELECT sql FROM duckdb_views() WHERE database_name = ? AND schema_name = ? "
            "AND lower(view_name) = lower(?)",
            (db, sch, view_name),
        )
        return str(rows[0][0])


dialect = LakeSQLDialect
