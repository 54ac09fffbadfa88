"""The point-in-time lookup: one SQL builder used by ML.FEATURES_AT_TIME, training and inference.

For each spine row, each feature table contributes the row with the same primary key whose
timestamp key is the latest one <= the spine row's time (DuckDB ``ASOF LEFT JOIN``); NULL when none,
or when older than the TTL. A feature table without a timestamp key is a plain key lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lakesql import errors as E
from lakesql.catalog.warehouse import FEATURE_TABLES, feature_doc_name
from lakesql.engine.duckdb import quote

KIND = FEATURE_TABLES


@dataclass(frozen=True)
class FeatureTable:
    """A feature table's definition as stored in the catalog."""

    schema: str
    name: str
    keys: tuple[str, ...]
    timestamp_key: str | None
    ttl: str | None  # a DuckDB INTERVAL expression, e.g. INTERVAL '30 days'
    query: str
    comment: str | None
    columns: tuple[str, ...]  # all columns, keys and timestamp key included
    doc: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def features(self) -> list[str]:
        skip = {*self.keys, self.timestamp_key}
        return [c for c in self.columns if c not in skip]

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> FeatureTable:
        return FeatureTable(
            schema=doc["schema"],
            name=doc["name"],
            keys=tuple(doc["keys"]),
            timestamp_key=doc.get("timestamp_key"),
            ttl=doc.get("ttl"),
            query=doc["query"],
            comment=doc.get("comment"),
            columns=tuple(doc["columns"]),
            doc=doc,
        )


doc_name = feature_doc_name


def point_in_time_sql(
    spine_sql: str,
    spine_columns: Sequence[str],
    tables: Sequence[FeatureTable],
    *,
    time_column: str | None = None,
    ttl: str | None = None,
    relations: dict[str, str] | None = None,
) -> str:
    """SQL of the spine's rows with every feature of `tables` as of each row's time.

    Args:
        spine_sql: a query (or table name) giving the spine rows.
        spine_columns: the spine's column names (to check keys and name clashes).
        tables: feature tables to look up (their views are named schema.name).
        time_column: the spine's time column; default: the column named like the feature
            tables' timestamp key.
        ttl: an INTERVAL expression overriding the tables' own TTL.
        relations: per feature table (qualified name), the relation to read instead of its view,
            e.g. a pinned `t VERSION AS OF n`.

    Returns:
        A SELECT statement's text (usable as a sub-query).

    Raises:
        ProgrammingError: a missing key or time column, or a feature name shared by two sources.
    """
    lower = {c.lower(): c for c in spine_columns}
    owner: dict[str, str] = {c.lower(): "the spine" for c in spine_columns}
    select = ["__spine.*"]
    joins = []
    for i, ft in enumerate(tables):
        alias = f"__f{i}"
        for key in ft.keys:
            if key.lower() not in lower:
                raise E.ProgrammingError(
                    f"the spine has no column {key!r}, a primary key of feature table {ft.qualified!r}",
                    hint=f"the spine's columns are: {', '.join(spine_columns)}",
                )
        for feat in ft.features:
            other = owner.get(feat.lower())
            if other is not None:
                raise E.ProgrammingError(
                    f"feature {feat!r} of {ft.qualified!r} clashes with a column of {other}",
                    hint=f"rename it in one definition (e.g. SELECT {feat} AS {ft.name}_{feat}) or in the spine",
                )
            owner[feat.lower()] = repr(ft.qualified)
        on = [f"__spine.{quote(lower[k.lower()])} = {alias}.{quote(k)}" for k in ft.keys]
        table_ttl = ttl or ft.ttl
        if ft.timestamp_key is not None:
            tcol = time_column or lower.get(ft.timestamp_key.lower())
            if tcol is None or tcol.lower() not in lower:
                raise E.ProgrammingError(
                    f"cannot tell which spine column holds the lookup time for {ft.qualified!r}",
                    hint="pass time_column => 'column'",
                )
            spine_time = f"__spine.{quote(lower[tcol.lower()])}"
            on.append(f"{spine_time} >= {alias}.{quote(ft.timestamp_key)}")
            join = "ASOF LEFT JOIN"
        else:
            spine_time = None
            join = "LEFT JOIN"
        for feat in ft.features:
            value = f"{alias}.{quote(feat)}"
            if table_ttl and spine_time is not None:
                value = f"CASE WHEN {spine_time} - {alias}.{quote(ft.timestamp_key or '')} <= {table_ttl} THEN {value} END"
            select.append(f"{value} AS {quote(feat)}")
        view = (relations or {}).get(ft.qualified) or f"{quote(ft.schema)}.{quote(ft.name)}"
        joins.append(f"{join} {view} AS {alias} ON {' AND '.join(on)}")
    return f"SELECT {', '.join(select)} FROM ({spine_sql}) AS __spine {' '.join(joins)}"
