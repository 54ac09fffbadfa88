"""Enough of Postgres' ``pg_catalog`` and ``information_schema`` for psql and BI tools.

Statements that mention the Postgres catalog (``pg_catalog``, ``pg_class``, ``::regclass``,
``version()``, ``current_setting()`` ...) are rewritten with sqlglot (read as Postgres, written as
DuckDB) to read tables of a hidden schema ``__pg`` of the client's DuckDB database. Those tables
describe the warehouse as Postgres would: Delta tables are relations of kind ``r``, session views
of kind ``v``, columns carry Postgres type OIDs, feature tables have primary keys, and table
comments are descriptions. They are rebuilt when the warehouse or the session's objects change.
Every other statement reaches lakesql exactly as the client wrote it.

Size: about 930 lines, over the house's 800: the catalog tables' declarations (data) take a third.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

import lakesql
from lakesql.dialect.tokens import drop_catalog
from lakesql.server import types as T

SCHEMA = "__pg"
PG_CATALOG_OID = 11
INFORMATION_SCHEMA_OID = 13183
OWNER_OID = 10

_TRIGGER = re.compile(
    r"pg_catalog|\bpg_[a-z_]+|information_schema|\bversion\s*\(|current_setting|set_config|"
    r"current_schemas|\breg(class|type|proc|namespace|role)\b|::\s*oid\b|format_type|"
    r"obj_description|col_description|has_\w+_privilege|txid_current|current_database|"
    r"\bcurrent_user\b|\bsession_user\b|\buser\b\s*$|quote_ident|to_regclass|array_upper|"
    r"array_lower|to_regtype|\bto_timestamp\s*\(|\bto_char\s*\(|current_catalog|=\s*ANY\s*\(",
    re.I,
)
_JSON_BUILD = re.compile(r"\bJSON_BUILD_(OBJECT|ARRAY)\(", re.I)
_OPERATOR = re.compile(r"OPERATOR\s*\(\s*pg_catalog\s*\.\s*([~!*<>=@#%^&|`?+-]+)\s*\)", re.I)

I64, I32, I16 = pa.int64(), pa.int32(), pa.int16()
S, B, F = pa.string(), pa.bool_(), pa.float32()


def _information_schema_type(duck: str) -> str:
    """information_schema.columns.data_type as PostgreSQL gives it for a DuckDB type: the type's
    name without modifiers (numeric, character varying), ARRAY for arrays."""
    pg = T.pg_type(duck)
    if pg.oid in T.ELEMENT_OF:
        return "ARRAY"
    return T.format_type(pg.oid).split("(")[0]


def stable_oid(*parts: str) -> int:
    """A stable OID for a named object (the same in every session and process)."""
    return 16384 + zlib.crc32("\x00".join(parts).encode()) % (2**31 - 16385)


# Postgres catalog tables: name -> [(column, arrow type)]. Only the columns clients read.
TABLES: dict[str, list[tuple[str, pa.DataType]]] = {
    "pg_namespace": [("oid", I64), ("nspname", S), ("nspowner", I64), ("nspacl", pa.list_(S))],
    "pg_class": [
        ("oid", I64), ("relname", S), ("relnamespace", I64), ("reltype", I64),
        ("reloftype", I64), ("relowner", I64), ("relam", I64), ("relfilenode", I64),
        ("reltablespace", I64), ("relpages", I32), ("reltuples", F), ("relallvisible", I32),
        ("reltoastrelid", I64), ("relhasindex", B), ("relisshared", B), ("relpersistence", S),
        ("relkind", S), ("relnatts", I16), ("relchecks", I16), ("relhasrules", B),
        ("relhastriggers", B), ("relhassubclass", B), ("relrowsecurity", B),
        ("relforcerowsecurity", B), ("relispopulated", B), ("relreplident", S),
        ("relispartition", B), ("relrewrite", I64), ("relfrozenxid", I64), ("relminmxid", I64),
        ("relacl", pa.list_(S)), ("reloptions", pa.list_(S)), ("relpartbound", S),
    ],
    "pg_attribute": [
        ("attrelid", I64), ("attname", S), ("atttypid", I64), ("attstattarget", I32),
        ("attlen", I16), ("attnum", I16), ("attndims", I32), ("attcacheoff", I32),
        ("atttypmod", I32), ("attbyval", B), ("attalign", S), ("attstorage", S),
        ("attcompression", S), ("attnotnull", B), ("atthasdef", B), ("atthasmissing", B),
        ("attidentity", S), ("attgenerated", S), ("attisdropped", B), ("attislocal", B),
        ("attinhcount", I32), ("attcollation", I64), ("attacl", pa.list_(S)),
        ("attoptions", pa.list_(S)), ("attfdwoptions", pa.list_(S)), ("attmissingval", S),
    ],
    "pg_type": [
        ("oid", I64), ("typname", S), ("typnamespace", I64), ("typowner", I64), ("typlen", I16),
        ("typbyval", B), ("typtype", S), ("typcategory", S), ("typispreferred", B),
        ("typisdefined", B), ("typdelim", S), ("typrelid", I64), ("typsubscript", S),
        ("typelem", I64), ("typarray", I64), ("typinput", S), ("typoutput", S),
        ("typreceive", S), ("typsend", S), ("typmodin", S), ("typmodout", S), ("typanalyze", S),
        ("typalign", S), ("typstorage", S), ("typnotnull", B), ("typbasetype", I64),
        ("typtypmod", I32), ("typndims", I32), ("typcollation", I64), ("typdefaultbin", S),
        ("typdefault", S), ("typacl", pa.list_(S)),
    ],
    "pg_constraint": [
        ("oid", I64), ("conname", S), ("connamespace", I64), ("contype", S),
        ("condeferrable", B), ("condeferred", B), ("convalidated", B), ("conrelid", I64),
        ("contypid", I64), ("conindid", I64), ("conparentid", I64), ("confrelid", I64),
        ("confupdtype", S), ("confdeltype", S), ("confmatchtype", S), ("conislocal", B),
        ("coninhcount", I32), ("connoinherit", B), ("conkey", pa.list_(I16)),
        ("confkey", pa.list_(I16)), ("conpfeqop", pa.list_(I64)), ("conppeqop", pa.list_(I64)),
        ("conffeqop", pa.list_(I64)), ("confdelsetcols", pa.list_(I16)),
        ("conexclop", pa.list_(I64)), ("conbin", S), ("condef", S),
    ],
    "pg_index": [
        ("indexrelid", I64), ("indrelid", I64), ("indnatts", I16), ("indnkeyatts", I16),
        ("indisunique", B), ("indnullsnotdistinct", B), ("indisprimary", B),
        ("indisexclusion", B), ("indimmediate", B), ("indisclustered", B), ("indisvalid", B),
        ("indcheckxmin", B), ("indisready", B), ("indislive", B), ("indisreplident", B),
        ("indkey", pa.list_(I16)), ("indcollation", pa.list_(I64)), ("indclass", pa.list_(I64)),
        ("indoption", pa.list_(I16)), ("indexprs", S), ("indpred", S),
    ],
    "pg_description": [("objoid", I64), ("classoid", I64), ("objsubid", I32), ("description", S)],
    "pg_shdescription": [("objoid", I64), ("classoid", I64), ("description", S)],
    "pg_am": [("oid", I64), ("amname", S), ("amhandler", S), ("amtype", S)],
    "pg_database": [
        ("oid", I64), ("datname", S), ("datdba", I64), ("encoding", I32),
        ("datlocprovider", S), ("datistemplate", B), ("datallowconn", B),
        ("datconnlimit", I32), ("datfrozenxid", I64), ("datminmxid", I64),
        ("dattablespace", I64), ("datcollate", S), ("datctype", S), ("daticulocale", S),
        ("datcollversion", S), ("datacl", pa.list_(S)),
    ],
    "pg_roles": [
        ("oid", I64), ("rolname", S), ("rolsuper", B), ("rolinherit", B), ("rolcreaterole", B),
        ("rolcreatedb", B), ("rolcanlogin", B), ("rolreplication", B), ("rolconnlimit", I32),
        ("rolpassword", S), ("rolvaliduntil", S), ("rolbypassrls", B),
        ("rolconfig", pa.list_(S)),
    ],
    "pg_auth_members": [
        ("oid", I64), ("roleid", I64), ("member", I64), ("grantor", I64), ("admin_option", B),
        ("inherit_option", B), ("set_option", B),
    ],
    "pg_user": [
        ("usename", S), ("usesysid", I64), ("usecreatedb", B), ("usesuper", B),
        ("userepl", B), ("usebypassrls", B), ("passwd", S), ("valuntil", S),
        ("useconfig", pa.list_(S)),
    ],
    "pg_settings": [
        ("name", S), ("setting", S), ("unit", S), ("category", S), ("short_desc", S),
        ("extra_desc", S), ("context", S), ("vartype", S), ("source", S), ("min_val", S),
        ("max_val", S), ("enumvals", pa.list_(S)), ("boot_val", S), ("reset_val", S),
        ("sourcefile", S), ("sourceline", I32), ("pending_restart", B),
    ],
    "pg_tables": [
        ("schemaname", S), ("tablename", S), ("tableowner", S), ("tablespace", S),
        ("hasindexes", B), ("hasrules", B), ("hastriggers", B), ("rowsecurity", B),
    ],
    "pg_views": [("schemaname", S), ("viewname", S), ("viewowner", S), ("definition", S)],
    "pg_matviews": [
        ("schemaname", S), ("matviewname", S), ("matviewowner", S), ("tablespace", S),
        ("hasindexes", B), ("ispopulated", B), ("definition", S),
    ],
    "pg_indexes": [
        ("schemaname", S), ("tablename", S), ("indexname", S), ("tablespace", S),
        ("indexdef", S),
    ],
    "pg_proc": [
        ("oid", I64), ("proname", S), ("pronamespace", I64), ("proowner", I64),
        ("prolang", I64), ("procost", F), ("prorows", F), ("provariadic", I64),
        ("prosupport", S), ("prokind", S), ("prosecdef", B), ("proleakproof", B),
        ("proisstrict", B), ("proretset", B), ("provolatile", S), ("proparallel", S),
        ("pronargs", I16), ("pronargdefaults", I16), ("prorettype", I64),
        ("proargtypes", pa.list_(I64)), ("proallargtypes", pa.list_(I64)),
        ("proargmodes", pa.list_(S)), ("proargnames", pa.list_(S)), ("proargdefaults", S),
        ("protrftypes", pa.list_(I64)), ("prosrc", S), ("probin", S), ("prosqlbody", S),
        ("proconfig", pa.list_(S)), ("proacl", pa.list_(S)),
    ],
    "pg_inherits": [("inhrelid", I64), ("inhparent", I64), ("inhseqno", I32), ("inhdetachpending", B)],
    "pg_attrdef": [("oid", I64), ("adrelid", I64), ("adnum", I16), ("adbin", S)],
    "pg_collation": [
        ("oid", I64), ("collname", S), ("collnamespace", I64), ("collowner", I64),
        ("collprovider", S), ("collisdeterministic", B), ("collencoding", I32),
        ("collcollate", S), ("collctype", S),
    ],
    "pg_sequence": [
        ("seqrelid", I64), ("seqtypid", I64), ("seqstart", I64), ("seqincrement", I64),
        ("seqmax", I64), ("seqmin", I64), ("seqcache", I64), ("seqcycle", B),
    ],
    "pg_trigger": [
        ("oid", I64), ("tgrelid", I64), ("tgparentid", I64), ("tgname", S), ("tgfoid", I64),
        ("tgtype", I16), ("tgenabled", S), ("tgisinternal", B), ("tgconstrrelid", I64),
        ("tgconstrindid", I64), ("tgconstraint", I64), ("tgdeferrable", B),
        ("tginitdeferred", B), ("tgnargs", I16),
    ],
    "pg_rewrite": [
        ("oid", I64), ("rulename", S), ("ev_class", I64), ("ev_type", S), ("ev_enabled", S),
        ("is_instead", B),
    ],
    "pg_policy": [
        ("oid", I64), ("polname", S), ("polrelid", I64), ("polcmd", S), ("polpermissive", B),
        ("polroles", pa.list_(I64)), ("polqual", S), ("polwithcheck", S),
    ],
    "pg_statistic_ext": [
        ("oid", I64), ("stxrelid", I64), ("stxname", S), ("stxnamespace", I64),
        ("stxowner", I64), ("stxstattarget", I32), ("stxkeys", pa.list_(I16)),
        ("stxkind", pa.list_(S)), ("stxexprs", S),
    ],
    "pg_publication": [
        ("oid", I64), ("pubname", S), ("pubowner", I64), ("puballtables", B), ("pubinsert", B),
        ("pubupdate", B), ("pubdelete", B), ("pubtruncate", B), ("pubviaroot", B),
    ],
    "pg_publication_rel": [
        ("oid", I64), ("prpubid", I64), ("prrelid", I64), ("prqual", S), ("prattrs", pa.list_(I16)),
    ],
    "pg_publication_namespace": [("oid", I64), ("pnpubid", I64), ("pnnspid", I64)],
    "pg_partitioned_table": [
        ("partrelid", I64), ("partstrat", S), ("partnatts", I16), ("partdefid", I64),
        ("partattrs", pa.list_(I16)), ("partexprs", S),
    ],
    "pg_foreign_table": [("ftrelid", I64), ("ftserver", I64), ("ftoptions", pa.list_(S))],
    "pg_extension": [
        ("oid", I64), ("extname", S), ("extowner", I64), ("extnamespace", I64),
        ("extrelocatable", B), ("extversion", S),
    ],
    "pg_enum": [("oid", I64), ("enumtypid", I64), ("enumsortorder", F), ("enumlabel", S)],
    "pg_range": [("rngtypid", I64), ("rngsubtype", I64), ("rngmultitypid", I64)],
    "pg_depend": [
        ("classid", I64), ("objid", I64), ("objsubid", I32), ("refclassid", I64),
        ("refobjid", I64), ("refobjsubid", I32), ("deptype", S),
    ],
    "pg_tablespace": [("oid", I64), ("spcname", S), ("spcowner", I64)],
    "pg_language": [("oid", I64), ("lanname", S), ("lanowner", I64), ("lanispl", B)],
    "pg_opclass": [
        ("oid", I64), ("opcmethod", I64), ("opcname", S), ("opcnamespace", I64),
        ("opcowner", I64), ("opcfamily", I64), ("opcintype", I64), ("opcdefault", B),
        ("opckeytype", I64),
    ],
    "pg_event_trigger": [("oid", I64), ("evtname", S), ("evtevent", S), ("evtenabled", S)],
    "pg_stat_activity": [
        ("datid", I64), ("datname", S), ("pid", I32), ("usename", S),
        ("application_name", S), ("client_addr", S), ("state", S), ("query", S),
    ],
    "pg_cursors": [
        ("name", S), ("statement", S), ("is_holdable", B), ("is_binary", B),
        ("is_scrollable", B),
    ],
    "pg_locks": [("locktype", S), ("pid", I32), ("mode", S), ("granted", B)],
    "pg_timezone_names": [("name", S), ("abbrev", S), ("utc_offset", S), ("is_dst", B)],
}  # fmt: skip
ALIASES = {"pg_authid": "pg_roles", "pg_shadow": "pg_user"}
INFORMATION_SCHEMA = {"tables", "columns", "schemata", "views"}

# Postgres functions, as DuckDB macros in __pg (each `name: [(params, body)]` overload).
MACROS: dict[str, list[tuple[str, str]]] = {
    "pg_get_userbyid": [("o", "(SELECT __r.rolname FROM __pg.pg_roles __r WHERE __r.oid = o)")],
    "pg_table_is_visible": [
        ("o", "(SELECT count(*) > 0 FROM __pg.pg_class __c WHERE __c.oid = o "
              "AND __c.relnamespace IN (SELECT __s.oid FROM __pg.__search_path __s))"),
    ],
    "pg_type_is_visible": [("o", "true")],
    "pg_function_is_visible": [("o", "true")],
    "pg_collation_is_visible": [("o", "true")],
    "format_type": [("t, m", "__pg.__format_type(t, m)")],
    "pg_get_expr": [("e, r", "e"), ("e, r, p", "e")],
    "pg_get_constraintdef": [
        ("o", "(SELECT __k.condef FROM __pg.pg_constraint __k WHERE __k.oid = o)"),
        ("o, p", "(SELECT __k.condef FROM __pg.pg_constraint __k WHERE __k.oid = o)"),
    ],
    "pg_get_indexdef": [("o", "''"), ("o, c, p", "''")],
    "pg_get_viewdef": [
        ("o", "(SELECT __v.definition FROM __pg.__views __v WHERE __v.oid = o)"),
        ("o, p", "(SELECT __v.definition FROM __pg.__views __v WHERE __v.oid = o)"),
    ],
    "pg_get_triggerdef": [("o", "''"), ("o, p", "''")],
    "pg_get_ruledef": [("o", "''"), ("o, p", "''")],
    "pg_get_partkeydef": [("o", "NULL::VARCHAR")],
    "pg_get_statisticsobjdef_columns": [("o", "NULL::VARCHAR")],
    "pg_get_serial_sequence": [("t, c", "NULL::VARCHAR")],
    "pg_get_function_result": [("o", "NULL::VARCHAR")],
    "pg_get_function_arguments": [("o", "NULL::VARCHAR")],
    "pg_get_function_identity_arguments": [("o", "NULL::VARCHAR")],
    "pg_encoding_to_char": [("e", "'UTF8'")],
    "pg_relation_is_publishable": [("o", "false")],
    "pg_get_publication_tables": [("p", "NULL::BIGINT")],
    "pg_char_to_encoding": [("e", "6")],
    "pg_postmaster_start_time": [("", "now()")],
    "pg_conf_load_time": [("", "now()")],
    "inet_server_addr": [("", "NULL::VARCHAR")],
    "inet_server_port": [("", "NULL::INTEGER")],
    "inet_client_addr": [("", "NULL::VARCHAR")],
    "pg_relation_size": [("o", "0::BIGINT"), ("o, f", "0::BIGINT")],
    "pg_total_relation_size": [("o", "0::BIGINT")],
    "pg_table_size": [("o", "0::BIGINT")],
    "pg_indexes_size": [("o", "0::BIGINT")],
    "pg_database_size": [("o", "0::BIGINT")],
    "pg_tablespace_location": [("o", "''")],
    "pg_is_in_recovery": [("", "false")],
    "pg_backend_pid": [("", "(SELECT pid FROM __pg.__session)")],
    "pg_my_temp_schema": [("", "0::BIGINT")],
    "txid_current": [("", "1::BIGINT")],
    "obj_description": [
        ("o", "(SELECT __d.description FROM __pg.pg_description __d WHERE __d.objoid = o AND __d.objsubid = 0)"),
        ("o, c", "(SELECT __d.description FROM __pg.pg_description __d WHERE __d.objoid = o AND __d.objsubid = 0)"),
    ],
    "shobj_description": [("o, c", "NULL::VARCHAR")],
    "col_description": [
        ("o, n", "(SELECT __d.description FROM __pg.pg_description __d WHERE __d.objoid = o AND __d.objsubid = n)"),
    ],
    "has_table_privilege": [("a, b", "true"), ("a, b, c", "true")],
    "has_schema_privilege": [("a, b", "true"), ("a, b, c", "true")],
    "has_database_privilege": [("a, b", "true"), ("a, b, c", "true")],
    "has_column_privilege": [("a, b, c", "true"), ("a, b, c, d", "true")],
    "has_function_privilege": [("a, b", "true"), ("a, b, c", "true")],
    "has_sequence_privilege": [("a, b", "true"), ("a, b, c", "true")],
    "has_any_column_privilege": [("a, b", "true"), ("a, b, c", "true")],
    "pg_has_role": [("a, b", "true"), ("a, b, c", "true")],
    "current_setting": [
        ("n", "(SELECT __g.setting FROM __pg.pg_settings __g WHERE __g.name = lower(n))"),
        ("n, m", "(SELECT __g.setting FROM __pg.pg_settings __g WHERE __g.name = lower(n))"),
    ],
    "set_config": [("n, v, l", "v")],
    "version": [("", "(SELECT version FROM __pg.__session)")],
    "current_database": [("", "(SELECT database FROM __pg.__session)")],
    "current_user_name": [("", "(SELECT username FROM __pg.__session)")],
    "current_schemas": [("b", "['main']")],
    "quote_ident": [
        ("s", "CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_]*') THEN s "
              "ELSE '\"' || replace(s, '\"', '\"\"') || '\"' END"),
    ],
    "regclass_oid": [("s", "__pg.__regclass(s)")],
    "to_regclass": [("s", "__pg.__regclass(s)")],
    "to_regtype": [("s", "__pg.regtype_oid(s)")],
    "regclass_name": [("o", "coalesce((SELECT __c.relname FROM __pg.pg_class __c WHERE __c.oid = o), o::VARCHAR)")],
    "regtype_oid": [("s", "(SELECT __t.oid FROM __pg.pg_type __t WHERE __t.typname = s OR __pg.__format_type(__t.oid, -1) = s LIMIT 1)")],
    "regtype_name": [("o", "__pg.__format_type(o, -1)")],
    "regnamespace_name": [("o", "(SELECT __n.nspname FROM __pg.pg_namespace __n WHERE __n.oid = o)")],
    "regproc_name": [("o", "(SELECT __p.proname FROM __pg.pg_proc __p WHERE __p.oid = o)")],
    "array_upper": [("a, d", "len(a)")],
    "array_lower": [("a, d", "CASE WHEN len(a) > 0 THEN 1 END")],
}  # fmt: skip

# Function classes sqlglot parses into typed expressions, to replace by __pg macros.
_TYPED_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.CurrentVersion: "version",
    exp.CurrentDatabase: "current_database",
    exp.CurrentUser: "current_user_name",
    exp.CurrentCatalog: "current_database",
}
_REG_TYPES = {"REGCLASS": "regclass", "REGTYPE": "regtype", "REGNAMESPACE": "regnamespace", "REGPROC": "regproc", "REGPROCEDURE": "regproc", "REGROLE": "regrole"}  # fmt: skip


class Catalog:
    """The emulated Postgres catalog of one client connection."""

    def __init__(self, con: Any, user: str, database: str, gucs: dict[str, str]):
        self.con = con
        self.user = user
        self.database = database
        self.gucs = gucs
        self.pid = 0
        self._key: Any = None
        self._ready = False
        self._settings_stale = True
        self._nullability: dict[tuple[str, int], dict[str, bool]] = {}
        self.cursor_names: Any = lambda: []  # the client's open cursors (pg_cursors)
        self._had_cursors = False

    # -- public --------------------------------------------------------------------------------
    def settings_changed(self) -> None:
        self._settings_stale = True

    def needs_rewrite(self, sql: str) -> bool:
        return bool(_TRIGGER.search(sql))

    def rewrite(self, sql: str) -> str:
        """`sql` with Postgres catalog references replaced; `sql` itself when there are none.

        The client's database names the warehouse: `db.schema.table` is read as `schema.table`.
        """
        sql = drop_catalog(sql, self.database)
        if not self.needs_rewrite(sql):
            return sql
        text = _OPERATOR.sub(lambda m: m.group(1), sql)
        try:
            trees = sqlglot.parse(text, read="postgres")
        except sqlglot.errors.SqlglotError:
            return sql
        if len(trees) != 1 or trees[0] is None:
            return sql
        tree = trees[0]
        changed = [False]
        tree = tree.transform(lambda node: self._transform(node, changed))
        if not changed[0]:
            return sql
        for select in tree.find_all(exp.Select):
            select.set("expressions", [_name_projection(p) for p in select.expressions])
        self.refresh()
        text = tree.sql(dialect="duckdb")
        return _JSON_BUILD.sub(lambda m: "json_" + m.group(1).lower() + "(", text)

    # -- the rewrite ---------------------------------------------------------------------------
    def _transform(self, node: exp.Expr, changed: list[bool]) -> exp.Expr:
        if isinstance(node, exp.Table) and not node.args.get("catalog"):
            db = node.db.lower() if node.db else ""
            name = node.name.lower()
            name = ALIASES.get(name, name)
            target = None
            if db in ("", "pg_catalog") and name in TABLES:
                target = name
            elif db == "information_schema" and name in INFORMATION_SCHEMA:
                target = f"information_schema_{name}"
            if target is not None:
                changed[0] = True
                alias = node.args.get("alias")
                if alias is None and node.name.lower() != target:
                    alias = exp.TableAlias(this=exp.to_identifier(node.name))
                new = exp.Table(
                    this=exp.to_identifier(target), db=exp.to_identifier(SCHEMA), alias=alias
                )
                return new
            if db == "pg_catalog":  # a table function such as generate_series
                changed[0] = True
                node.set("db", None)
                alias = node.args.get("alias")
                if alias is not None and not alias.columns:  # Postgres: the alias names the value
                    alias.set("columns", [exp.to_identifier(alias.name)])
            return node
        if isinstance(node, exp.Column) and node.args.get("db") is not None:
            if node.db.lower() in ("pg_catalog", "information_schema"):
                changed[0] = True
                table = node.table.lower()
                table = ALIASES.get(table, table)
                return exp.Column(this=node.args["this"], table=exp.to_identifier(node.table))
            return node
        if isinstance(node, exp.Dot) and isinstance(node.expression, (exp.Anonymous, exp.Func)):
            left = node.this
            if (
                isinstance(left, (exp.Identifier, exp.Var, exp.Column))
                and left.name.lower() == "pg_catalog"
            ):
                changed[0] = True
                return self._sub(node.expression, changed)
            return node
        if isinstance(node, exp.Anonymous):
            name = str(node.this).lower()
            if name in MACROS:
                changed[0] = True
                return _call(name, [self._sub(a, changed) for a in node.expressions])
            return node
        for cls, macro in _TYPED_FUNCTIONS.items():
            if type(node) is cls:
                changed[0] = True
                return _call(macro, [])
        if isinstance(node, (exp.StrToTime, exp.TimeToStr)):
            # to_timestamp(text, format) / to_char(ts, format): sqlglot read the Postgres format
            # and writes DuckDB's strptime / strftime
            changed[0] = True
            return node
        if isinstance(node, exp.EQ) and isinstance(node.expression, exp.Any):
            inner = node.expression.this
            if not isinstance(inner, (exp.Subquery, exp.Select, exp.Placeholder, exp.Parameter)):
                # x = ANY(array column): DuckDB reads ANY as a subquery, which a LEFT JOIN's
                # condition cannot hold (Superset's index query); the list test is the same
                changed[0] = True
                return exp.func(
                    "list_contains", self._sub(inner, changed), self._sub(node.this, changed)
                )
        if isinstance(node, exp.Collate):
            changed[0] = True
            return self._sub(node.this, changed)
        if isinstance(node, exp.Cast):
            return self._cast(node, changed)
        return node

    def _sub(self, node: exp.Expr, changed: list[bool]) -> exp.Expr:
        """`node` transformed (sqlglot does not descend into a node a transform replaced)."""
        return node.transform(lambda n: self._transform(n, changed), copy=False)

    def _cast(self, node: exp.Cast, changed: list[bool]) -> exp.Expr:
        to = node.args.get("to")
        kind = _reg_kind(to)
        inner = node.this
        if kind is not None:
            changed[0] = True
            if isinstance(inner, (exp.Placeholder, exp.Parameter)) and kind == "regclass":
                return _call(
                    "regclass_oid", [exp.Cast(this=inner, to=exp.DataType.build("VARCHAR"))]
                )
            if isinstance(inner, exp.Literal) and inner.is_string:
                if kind == "regclass":
                    return _call("regclass_oid", [inner])
                if kind == "regtype":
                    return _call("regtype_oid", [inner])
                return exp.Literal.number(0)
            return self._sub(inner, changed)
        if _type_name(to) in ("text", "varchar", "name", "character varying"):
            inner_kind = _reg_kind(inner.args.get("to")) if isinstance(inner, exp.Cast) else None
            if inner_kind is not None:
                changed[0] = True
                value = inner.this
                if isinstance(value, exp.Literal) and value.is_string:
                    return value
                return _call(f"{inner_kind}_name", [self._sub(value, changed)])
        name = _type_name(to)
        base, dims = name, 0
        while base.endswith("[]"):
            base, dims = base[:-2], dims + 1
        user_defined = isinstance(to, exp.DataType) and any(
            d.this == exp.DType.USERDEFINED for d in to.find_all(exp.DataType)
        )
        if base in _TYPE_REPLACEMENTS or user_defined:
            changed[0] = True
            replacement = _TYPE_REPLACEMENTS.get(base, base) + "[]" * dims
            return exp.Cast(
                this=self._sub(inner, changed),
                to=exp.DataType.build(replacement, dialect="duckdb"),
            )
        return node

    # -- the tables ------------------------------------------------------------------------------
    def _duck(self) -> Any:
        return self.con.session.engine.con

    def _state_key(self) -> Any:
        session = self.con.session
        session.sync()
        wh = session.warehouse
        tables = tuple((t.schema, t.name, wh.log_stamp(t)) for t in wh.all_tables())
        duck = self._duck()
        views = tuple(
            duck.execute(
                "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal "
                "AND NOT temporary AND database_name = 'memory' ORDER BY 1, 2"
            ).fetchall()
        )
        base = tuple(
            duck.execute(
                "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
                "WHERE NOT temporary AND database_name = 'memory' AND schema_name <> '__pg' "
                "ORDER BY 1, 2"
            ).fetchall()
        )
        docs = tuple(sorted(wh.docs("feature_tables")))
        return (tuple(wh.schemas()), tables, views, base, docs)

    def refresh(self) -> None:
        """Rebuild the catalog tables when the warehouse or the session's objects changed."""
        duck = self._duck()
        if not self._ready:
            duck.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            self._build_static(duck)
            self._ready = True
        key = self._state_key()
        if key != self._key:
            self._build_relations(duck)
            self._key = key
        if self._settings_stale:
            self._build_settings(duck)
            self._settings_stale = False
        names = list(self.cursor_names())
        if names or self._had_cursors:
            self._put(duck, "pg_cursors", [
                {"name": n, "statement": "", "is_holdable": False, "is_binary": False,
                 "is_scrollable": False} for n in names
            ])  # fmt: skip
        self._had_cursors = bool(names)

    def _put(self, duck: Any, name: str, rows: list[dict[str, Any]]) -> None:
        schema = pa.schema(TABLES[name]) if name in TABLES else None
        if schema is not None:
            full = [{c: r.get(c) for c in schema.names} for r in rows]
            table = pa.Table.from_pylist(full, schema=schema)
        else:
            table = pa.Table.from_pylist(rows)
        view = f"__lakesql_pg_{name}"
        duck.register(view, table)
        try:
            duck.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{name} AS SELECT * FROM {view}")
        finally:
            duck.unregister(view)

    def _build_static(self, duck: Any) -> None:
        types = []
        for name, oid, array, size, category, _fmt in T.PG_TYPES:
            common = {
                "typnamespace": PG_CATALOG_OID, "typowner": OWNER_OID, "typbyval": 0 < size <= 8,
                "typtype": "b", "typisdefined": True, "typdelim": ",", "typrelid": 0,
                "typbasetype": 0, "typtypmod": -1, "typndims": 0, "typnotnull": False,
                "typalign": "i", "typstorage": "p" if size > 0 else "x", "typcollation": 0,
                "typinput": f"{name}in", "typoutput": f"{name}out",
            }  # fmt: skip
            types.append({**common, "oid": oid, "typname": name, "typlen": size, "typcategory": category,
                          "typispreferred": name in ("text", "float8", "bool"), "typelem": 0, "typarray": array})  # fmt: skip
            if array:
                types.append({**common, "oid": array, "typname": "_" + name, "typlen": -1, "typcategory": "A",
                              "typispreferred": False, "typelem": oid, "typarray": 0, "typstorage": "x"})  # fmt: skip
        self._put(duck, "pg_type", types)
        fmt = {int(r["oid"]): T.format_type(int(r["oid"])) for r in types}  # type: ignore[call-overload]
        self._put_plain(duck, "__type_names", [{"oid": k, "name": v} for k, v in fmt.items()])
        self._put(duck, "pg_am", [
            {"oid": 2, "amname": "heap", "amhandler": "heap_tableam_handler", "amtype": "t"},
            {"oid": 403, "amname": "btree", "amhandler": "bthandler", "amtype": "i"},
        ])  # fmt: skip
        self._put(duck, "pg_database", [{
            "oid": 16384, "datname": self.database, "datdba": OWNER_OID, "encoding": 6,
            "datlocprovider": "c", "datistemplate": False, "datallowconn": True,
            "datconnlimit": -1, "datfrozenxid": 0, "datminmxid": 1, "dattablespace": 1663,
            "datcollate": "C", "datctype": "C",
        }])  # fmt: skip
        self._put(duck, "pg_roles", [{
            "oid": OWNER_OID, "rolname": self.user, "rolsuper": False, "rolinherit": True,
            "rolcreaterole": False, "rolcreatedb": False, "rolcanlogin": True,
            "rolreplication": False, "rolconnlimit": -1, "rolpassword": "********",
            "rolbypassrls": False,
        }])  # fmt: skip
        self._put(duck, "pg_user", [{
            "usename": self.user, "usesysid": OWNER_OID, "usecreatedb": False, "usesuper": False,
            "userepl": False, "usebypassrls": False, "passwd": "********",
        }])  # fmt: skip
        self._put(duck, "pg_tablespace", [
            {"oid": 1663, "spcname": "pg_default", "spcowner": OWNER_OID},
        ])  # fmt: skip
        self._put(duck, "pg_language", [
            {"oid": 14, "lanname": "sql", "lanowner": OWNER_OID, "lanispl": False},
        ])  # fmt: skip
        for name in TABLES:
            if name not in {
                "pg_type",
                "pg_am",
                "pg_database",
                "pg_roles",
                "pg_user",
                "pg_tablespace",
                "pg_language",
            }:
                self._put(duck, name, [])
        version = (
            f"PostgreSQL 15.0 (lakesql {lakesql.__version__}, DuckDB "
            f"{duck.execute('SELECT version()').fetchone()[0]}) on x86_64-pc-linux-gnu, "
            "compiled by lakesql, 64-bit"
        )
        self._put_plain(duck, "__session", [{
            "pid": self.pid, "version": version, "database": self.database, "username": self.user,
        }])  # fmt: skip
        duck.execute(
            f"CREATE OR REPLACE MACRO {SCHEMA}.__format_type(t, m) AS CASE "
            "WHEN t = 1700 AND m > 4 THEN 'numeric(' || ((m - 4) >> 16) || ',' || ((m - 4) & 65535) || ')' "
            f"ELSE coalesce((SELECT __y.name FROM {SCHEMA}.__type_names __y WHERE __y.oid = t), '-') END"
        )
        self._put_plain(duck, "__catalog_oids", [
            {"name": n, "oid": o} for n, o in (
                ("pg_class", 1259), ("pg_constraint", 2606), ("pg_namespace", 2615),
                ("pg_proc", 1255), ("pg_type", 1247), ("pg_attribute", 1249),
                ("pg_database", 1262), ("pg_index", 2610), ("pg_description", 2609),
                ("pg_trigger", 2620), ("pg_am", 2601), ("pg_authid", 1260),
            )
        ])  # fmt: skip
        for name in ("__views", "__search_path"):
            self._put_plain(duck, name, [{"oid": 0, "definition": ""}])
        duck.execute(
            f"CREATE OR REPLACE MACRO {SCHEMA}.__regclass(s) AS CASE "
            "WHEN regexp_full_match(CAST(s AS VARCHAR), '[0-9]+') THEN CAST(s AS BIGINT) ELSE coalesce("
            f"(SELECT __o.oid FROM {SCHEMA}.__catalog_oids __o WHERE __o.name = "
            "replace(lower(replace(CAST(s AS VARCHAR), '\"', '')), 'pg_catalog.', '')), "
            f"(SELECT __c.oid FROM {SCHEMA}.pg_class __c "
            f"JOIN {SCHEMA}.pg_namespace __n ON __n.oid = __c.relnamespace WHERE CASE WHEN contains(s, '.') "
            "THEN __n.nspname || '.' || __c.relname = lower(replace(s, '\"', '')) "
            "ELSE __c.relname = lower(replace(s, '\"', '')) AND __n.nspname = 'main' END LIMIT 1)) END"
        )
        pending = dict(MACROS)
        while pending:  # a macro can only use macros created before it
            failed: dict[str, list[tuple[str, str]]] = {}
            error: Exception | None = None
            for name, overloads in pending.items():
                body = ", ".join(f"({params}) AS {expr}" for params, expr in overloads)
                try:
                    duck.execute(f"CREATE OR REPLACE MACRO {SCHEMA}.{name}{body}")
                except Exception as e:
                    failed[name], error = overloads, e
            if len(failed) == len(pending):
                raise RuntimeError(f"cannot define the pg_catalog functions: {error}")
            pending = failed

    def _put_plain(self, duck: Any, name: str, rows: list[dict[str, Any]]) -> None:
        self._put(duck, name, rows)

    def _build_settings(self, duck: Any) -> None:
        rows = [
            {"name": k, "setting": v, "context": "user", "vartype": "string", "source": "session",
             "boot_val": v, "reset_val": v, "pending_restart": False}
            for k, v in sorted(self.gucs.items())
        ]  # fmt: skip
        rows.append({"name": "session_authorization", "setting": self.user, "context": "user",
                     "vartype": "string", "source": "session", "pending_restart": False})  # fmt: skip
        self._put(duck, "pg_settings", rows)

    def _not_null(self, schema: str, table: str) -> dict[str, bool]:
        from lakesql.storage import delta

        wh = self.con.session.warehouse
        ref = wh.ref(schema, table)
        stamp = wh.log_stamp(ref) or 0
        key = (ref.path, stamp)
        if key not in self._nullability:
            try:
                snap = delta.snapshot(ref.path)
                self._nullability[key] = {f.name: not f.nullable for f in snap.schema}
            except Exception:
                self._nullability[key] = {}
        return self._nullability[key]

    def _table_comment(self, schema: str, table: str) -> str | None:
        from lakesql.storage import delta

        try:
            return delta.snapshot(self.con.session.warehouse.ref(schema, table).path).comment
        except Exception:
            return None

    def _build_relations(self, duck: Any) -> None:
        session = self.con.session
        wh = session.warehouse
        schema_names = set(wh.schemas())
        schema_names.update(
            r[0]
            for r in duck.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'memory'"
            ).fetchall()
        )
        schema_names = {s for s in schema_names if not s.startswith("__")}
        namespaces = [
            {"oid": PG_CATALOG_OID, "nspname": "pg_catalog", "nspowner": OWNER_OID},
            {"oid": INFORMATION_SCHEMA_OID, "nspname": "information_schema", "nspowner": OWNER_OID},
        ]
        ns_oid = {s: stable_oid("schema", s) for s in sorted(schema_names)}
        namespaces += [{"oid": o, "nspname": s, "nspowner": OWNER_OID} for s, o in ns_oid.items()]
        self._put(duck, "pg_namespace", namespaces)
        self._put_plain(duck, "__search_path", [{"oid": ns_oid.get("main", 0)}])

        warehouse = {(t.schema, t.name) for t in wh.all_tables()}
        relations: list[tuple[str, str, str]] = [(s, n, "r") for s, n in sorted(warehouse)]
        for s, n in duck.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary "
            "AND database_name = 'memory' ORDER BY 1, 2"
        ).fetchall():
            if s in ns_oid and not n.startswith("__"):
                relations.append((s, n, "r"))
        view_sql: dict[tuple[str, str], str] = {}
        for s, n, sql in duck.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal "
            "AND NOT temporary AND database_name = 'memory' ORDER BY 1, 2"
        ).fetchall():
            if s in ns_oid and not n.startswith("__") and (s, n) not in warehouse:
                relations.append((s, n, "v"))
                view_sql[(s, n)] = sql
        columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for s, t, c, typ in duck.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = 'memory' ORDER BY schema_name, table_name, column_index"
        ).fetchall():
            columns.setdefault((s, t), []).append((c, typ))
        features = {(d.get("schema"), d.get("name")): d for d in wh.docs("feature_tables").values()}
        classes, attributes, constraints, descriptions, views, tables_view = [], [], [], [], [], []
        for schema, name, kind in relations:
            oid = stable_oid("relation", schema, name)
            cols = columns.get((schema, name), [])
            not_null = self._not_null(schema, name) if (schema, name) in warehouse else {}
            feature = features.get((schema, name))
            classes.append({
                "oid": oid, "relname": name, "relnamespace": ns_oid[schema], "reltype": 0,
                "reloftype": 0, "relowner": OWNER_OID, "relam": 2 if kind == "r" else 0,
                "relfilenode": oid, "reltablespace": 0, "relpages": 0, "reltuples": -1.0,
                "relallvisible": 0, "reltoastrelid": 0, "relhasindex": False, "relisshared": False,
                "relpersistence": "p", "relkind": kind, "relnatts": len(cols), "relchecks": 0,
                "relhasrules": kind == "v", "relhastriggers": False, "relhassubclass": False,
                "relrowsecurity": False, "relforcerowsecurity": False, "relispopulated": True,
                "relreplident": "d", "relispartition": False, "relrewrite": 0,
                "relfrozenxid": 0, "relminmxid": 0,
            })  # fmt: skip
            positions = {}
            for i, (col, typ) in enumerate(cols, start=1):
                pg = T.pg_type(typ)
                positions[col] = i
                keyed = feature is not None and col in (
                    [*(feature.get("keys") or []), feature.get("timestamp_key")]
                )
                attributes.append({
                    "attrelid": oid, "attname": col, "atttypid": pg.oid, "attstattarget": -1,
                    "attlen": pg.size, "attnum": i, "attndims": 1 if pg.oid in T.ELEMENT_OF else 0,
                    "attcacheoff": -1, "atttypmod": pg.typmod, "attbyval": 0 < pg.size <= 8,
                    "attalign": "i", "attstorage": "x", "attcompression": "",
                    "attnotnull": bool(not_null.get(col)) or keyed, "atthasdef": False,
                    "atthasmissing": False, "attidentity": "", "attgenerated": "",
                    "attisdropped": False, "attislocal": True, "attinhcount": 0,
                    "attcollation": 0,
                })  # fmt: skip
            if kind == "r" and (schema, name) in warehouse:
                comment = self._table_comment(schema, name)
                if comment is None and feature is not None:
                    comment = feature.get("comment")
                if comment:
                    descriptions.append(
                        {"objoid": oid, "classoid": 1259, "objsubid": 0, "description": comment}
                    )
                tables_view.append({
                    "schemaname": schema, "tablename": name, "tableowner": self.user,
                    "hasindexes": False, "hasrules": False, "hastriggers": False,
                    "rowsecurity": False,
                })  # fmt: skip
            if feature is not None:
                keys = [
                    k for k in [*(feature.get("keys") or []), feature.get("timestamp_key")] if k
                ]
                conkey = [positions[k] for k in keys if k in positions]
                quoted = ", ".join(_quote(k) for k in keys)
                constraints.append({
                    "oid": stable_oid("constraint", schema, name), "conname": f"{name}_pkey",
                    "connamespace": ns_oid[schema], "contype": "p", "condeferrable": False,
                    "condeferred": False, "convalidated": True, "conrelid": oid, "contypid": 0,
                    "conindid": 0, "conparentid": 0, "confrelid": 0, "confupdtype": " ",
                    "confdeltype": " ", "confmatchtype": " ", "conislocal": True,
                    "coninhcount": 0, "connoinherit": True, "conkey": conkey,
                    "condef": f"PRIMARY KEY ({quoted})",
                })  # fmt: skip
            if kind == "v":
                views.append({"oid": oid, "schemaname": schema, "viewname": name,
                              "viewowner": self.user, "definition": view_sql[(schema, name)]})  # fmt: skip
        self._put(duck, "pg_class", classes)
        self._put(duck, "pg_attribute", attributes)
        self._put(duck, "pg_constraint", constraints)
        self._put(duck, "pg_description", descriptions)
        self._put(duck, "pg_tables", tables_view)
        self._put(duck, "pg_views", [{k: v for k, v in r.items() if k != "oid"} for r in views])
        self._put_plain(duck, "__views", [{"oid": r["oid"], "definition": r["definition"]} for r in views]
                        or [{"oid": 0, "definition": ""}])  # fmt: skip
        self._put_plain(
            duck,
            "__warehouse",
            [{"schema": s, "name": n} for s, n in sorted(warehouse)]
            or [{"schema": "", "name": ""}],
        )
        nn = [
            {"schema": s, "name": n, "column": c}
            for (s, n) in sorted(warehouse)
            for c, v in self._not_null(s, n).items()
            if v
        ]
        self._put_plain(duck, "__not_null", nn or [{"schema": "", "name": "", "column": ""}])
        duck_types = sorted({typ for cols in columns.values() for _, typ in cols})
        self._put_plain(
            duck,
            "__data_types",
            [{"duck": t, "pg": _information_schema_type(t)} for t in duck_types]
            or [{"duck": "", "pg": ""}],
        )
        self._build_information_schema(duck)

    def _build_information_schema(self, duck: Any) -> None:
        db = self.database.replace("'", "''")
        hidden = "table_schema NOT LIKE '\\_\\_%' ESCAPE '\\'"
        duck.execute(
            f"CREATE OR REPLACE VIEW {SCHEMA}.information_schema_tables AS "
            f"SELECT '{db}' AS table_catalog, table_schema, table_name, "
            f"CASE WHEN (table_schema, table_name) IN (SELECT (schema, name) FROM {SCHEMA}.__warehouse) "
            "THEN 'BASE TABLE' WHEN table_type = 'LOCAL TEMPORARY' THEN 'LOCAL TEMPORARY' ELSE table_type END AS table_type, "
            "self_referencing_column_name, reference_generation, user_defined_type_catalog, "
            "user_defined_type_schema, user_defined_type_name, is_insertable_into, is_typed, "
            "commit_action, TABLE_COMMENT AS table_comment "
            f"FROM information_schema.tables WHERE table_catalog IN ('memory', 'temp') AND {hidden}"
        )
        duck.execute(
            f"CREATE OR REPLACE VIEW {SCHEMA}.information_schema_columns AS "
            f"SELECT * REPLACE ('{db}' AS table_catalog, CASE WHEN (table_schema, table_name, column_name) IN "
            f"(SELECT (schema, name, \"column\") FROM {SCHEMA}.__not_null) THEN 'NO' ELSE is_nullable END AS is_nullable, "
            f"coalesce((SELECT __t.pg FROM {SCHEMA}.__data_types __t WHERE __t.duck = data_type), "
            "lower(data_type)) AS data_type) "
            f"FROM information_schema.columns WHERE table_catalog IN ('memory', 'temp') AND {hidden}"
        )
        duck.execute(
            f"CREATE OR REPLACE VIEW {SCHEMA}.information_schema_schemata AS "
            f"SELECT * REPLACE ('{db}' AS catalog_name) FROM information_schema.schemata "
            "WHERE catalog_name = 'memory' AND schema_name NOT LIKE '\\_\\_%' ESCAPE '\\' "
            "UNION ALL SELECT * REPLACE ('"
            + db
            + "' AS catalog_name) FROM information_schema.schemata "
            "WHERE catalog_name = 'system' AND schema_name IN ('information_schema', 'pg_catalog')"
        )
        duck.execute(
            f"CREATE OR REPLACE VIEW {SCHEMA}.information_schema_views AS "
            f"SELECT * REPLACE ('{db}' AS table_catalog) FROM information_schema.views "
            f"WHERE table_catalog = 'memory' AND {hidden} AND (table_schema, table_name) NOT IN "
            f"(SELECT (schema, name) FROM {SCHEMA}.__warehouse)"
        )


def _name_projection(node: exp.Expr) -> exp.Expr:
    """A function call in a select list named like Postgres names it (by the function)."""
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
        if isinstance(node.this, exp.Identifier) and node.this.name == SCHEMA:
            name = str(node.expression.this)
            name = {"current_user_name": "current_user", "regclass_oid": "regclass",
                    "regtype_oid": "regtype"}.get(name, name)  # fmt: skip
            if name.endswith("_name") and name[:-5] in _REG_TYPES.values():
                name = "text"
            return exp.alias_(node, name, quoted=True)
    if isinstance(node, exp.CurrentSchema):
        return exp.alias_(node, "current_schema", quoted=True)
    return node


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _call(name: str, args: list[exp.Expr]) -> exp.Expr:
    return exp.Dot(
        this=exp.to_identifier(SCHEMA),
        expression=exp.Anonymous(this=name, expressions=args),
    )


_TYPE_REPLACEMENTS = {
    "name": "VARCHAR", "text": "VARCHAR", "oid": "BIGINT", "int2vector": "SMALLINT[]",
    "oidvector": "BIGINT[]", "char": "VARCHAR", '"char"': "VARCHAR", "bpchar": "VARCHAR",
    "int4": "INTEGER", "int8": "BIGINT", "int2": "SMALLINT", "float8": "DOUBLE",
    "float4": "REAL", "bool": "BOOLEAN", "xid": "BIGINT", "regrole": "BIGINT",
}  # fmt: skip


def _type_name(to: Any) -> str:
    if to is None:
        return ""
    text = to.sql(dialect="postgres") if isinstance(to, exp.Expr) else str(to)
    return text.strip().lower().replace("pg_catalog.", "")


def _reg_kind(to: Any) -> str | None:
    if to is None:
        return None
    text = to.sql(dialect="postgres").upper() if isinstance(to, exp.Expr) else str(to).upper()
    text = text.replace("PG_CATALOG.", "")
    return _REG_TYPES.get(text)
