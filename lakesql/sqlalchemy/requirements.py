"""What the lakesql dialect supports, for SQLAlchemy's dialect compliance suite.

Every ``closed()`` below is a real limit of lakesql, not of the suite:

* Warehouse tables are Delta tables: no constraints besides NOT NULL (no primary, foreign,
  unique or check constraints; primary keys are reflected for feature tables only), no
  indexes, no column defaults, no identity/autoincrement columns or sequences, no column
  comments, no TIME or INTERVAL columns, no native UUID (stored as strings).
* Every statement commits on its own: no transactions, savepoints or isolation levels; a
  rollback undoes nothing.
* Views and TEMP tables live in the DuckDB session of one DB-API connection (TEMP tables even
  of one cursor), so they cannot be seen from the suite's other connections.
* No RETURNING (writes run against a staging table).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

_CLOSED = [
    # constraints, keys and indexes (Delta tables have none)
    "foreign_keys",
    "foreign_key_constraint_reflection",
    "foreign_key_constraint_name_reflection",
    "foreign_key_constraint_option_reflection_ondelete",
    "foreign_key_constraint_option_reflection_onupdate",
    "fk_constraint_option_reflection_ondelete_noaction",
    "fk_constraint_option_reflection_ondelete_restrict",
    "fk_constraint_option_reflection_onupdate_restrict",
    "self_referential_foreign_keys",
    "named_constraints",
    "implicitly_named_constraints",
    "unique_constraint_reflection",
    "unique_constraints_reflect_as_index",
    "unique_index_reflect_as_unique_constraints",
    "check_constraint_reflection",
    "primary_key_constraint_reflection",
    "reflects_pk_names",
    "index_reflection",
    "indexes_with_ascdesc",
    "indexes_with_expressions",
    "index_reflects_included_columns",
    "index_ddl_if_exists",
    "duplicate_key_raises_integrity_error",
    "cross_schema_fk_reflection",
    "foreign_keys_reflect_as_index",
    "on_update_cascade",
    "deferrable_fks",
    # defaults, identity, sequences
    "server_defaults",
    "computed_columns",
    "computed_columns_stored",
    "computed_columns_virtual",
    "computed_columns_default_persisted",
    "computed_columns_reflect_persisted",
    "identity_columns",
    "identity_columns_standard",
    "autoincrement_insert",
    "autoincrement_without_sequence",
    "sequences",
    "sequences_optional",
    "supports_lastrowid",
    "emulated_lastrowid",
    "emulated_lastrowid_even_with_sequences",
    "dbapi_lastrowid",
    "empty_inserts",
    "empty_inserts_executemany",
    # RETURNING
    "returning",
    "insert_returning",
    "update_returning",
    "delete_returning",
    "insert_executemany_returning",
    "insert_executemany_returning_sort_by_parameter_order",
    "full_returning",
    # transactions
    "savepoints",
    "two_phase_transactions",
    "isolation_level",
    "legacy_isolation_level",
    "get_isolation_level_values",
    "dbapi_autocommit",
    "supports_autocommit",
    # session-local objects
    "temp_table_reflection",
    "temp_table_reflect_indexes",
    "temp_table_names",
    "temporary_tables",
    "temporary_views",
    "views",
    "view_reflection",
    "view_column_reflection",
    "materialized_views",
    "materialized_views_reflect_pk",
    # types Delta cannot store
    "time",
    "time_microseconds",
    "time_timezone",
    "interval",
    "json_type",
    "json_array_indexes",
    "json_index_supplementary_unicode_element",
    "uuid_data_type",
    "array_type",
    # comments: tables have one, columns none
    "comment_reflection",
    "comment_reflection_full_unicode",
    "comment_reflection_with_true_column_comments",
    # schemas: the suite expects provisioned test schemas
    "schemas",
    "schema_reflection",
    "schema_create_delete",
    "cross_schema_fk_reflection",
    "default_schema_name_switch",
    "implicit_default_schema",
]


class Requirements(SuiteRequirements):
    """lakesql's answers to the suite's capability questions."""

    def __getattribute__(self, name: str) -> Any:
        if name in _CLOSED_SET:
            return exclusions.closed()
        return super().__getattribute__(name)

    @property
    def table_ddl_if_exists(self) -> Any:
        return exclusions.open()

    @property
    def datetime_timezone(self) -> Any:
        return exclusions.open()

    @property
    def sane_rowcount(self) -> Any:
        return exclusions.open()

    @property
    def sane_multi_rowcount(self) -> Any:
        return exclusions.closed()

    @property
    def precision_numerics_enotation_large(self) -> Any:
        return exclusions.open()

    @property
    def nullsordering(self) -> Any:
        return exclusions.open()

    @property
    def tuple_in(self) -> Any:
        return exclusions.open()

    @property
    def ctes(self) -> Any:
        return exclusions.open()

    @property
    def window_functions(self) -> Any:
        return exclusions.open()

    @property
    def fetch_first(self) -> Any:
        return exclusions.open()

    @property
    def fetch_offset(self) -> Any:
        return exclusions.open()


_CLOSED_SET = frozenset(_CLOSED)
