"""Feature tables and the point-in-time lookup, on real Delta tables."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakesql
from lakesql.storage import delta

T0 = dt.datetime(2024, 1, 1)


def ts_sql(hours: int | None) -> str:
    if hours is None:
        return "NULL::TIMESTAMP"
    return f"TIMESTAMP '{(T0 + dt.timedelta(hours=hours)).isoformat(sep=' ')}'"


@pytest.fixture
def cur(tmp_path: Path) -> Any:
    con = lakesql.connect(str(tmp_path / "wh"))
    yield con.cursor()
    con.close()


def rows(cur: Any, sql: str) -> list[tuple[Any, ...]]:
    return cur.execute(sql).fetchall()


# -- the property: ML.FEATURES_AT_TIME equals a brute-force reference -----------------------------

feature_rows = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 30), st.integers(-1000, 1000)),
    min_size=1,
    max_size=25,
    unique_by=lambda r: (r[0], r[1]),
)
spine_rows = st.lists(
    st.tuples(st.integers(0, 6), st.one_of(st.none(), st.integers(-2, 34))), min_size=1, max_size=25
)


def reference(
    feats: list[tuple[int, int, int]], spine: list[tuple[int, int | None]], ttl: int | None
) -> list[tuple[Any, ...]]:
    out = []
    for i, (key, t) in enumerate(spine):
        value = None
        if t is not None:
            seen = [f for f in feats if f[0] == key and f[1] <= t]
            if seen:
                best = max(seen, key=lambda f: f[1])
                if ttl is None or t - best[1] <= ttl:
                    value = best[2]
        out.append((i, key, value))
    return sorted(out)


@pytest.fixture(scope="module")
def shared_cur() -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        con = lakesql.connect(tmp)
        yield con.cursor()
        con.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(feats=feature_rows, spine=spine_rows, ttl=st.one_of(st.none(), st.integers(0, 10)))
def test_point_in_time_matches_brute_force(
    shared_cur: Any,
    feats: list[tuple[int, int, int]],
    spine: list[tuple[int, int | None]],
    ttl: int | None,
) -> None:
    if True:
        cur = shared_cur
        values = ", ".join(f"({k}, {ts_sql(h)}, {v})" for k, h, v in feats)
        cur.execute(
            f"CREATE OR REPLACE FEATURE TABLE f PRIMARY KEY (k) TIMESTAMP KEY (ts) AS SELECT * FROM (VALUES {values}) v(k, ts, val)"
        )
        spine_values = ", ".join(f"({i}, {k}, {ts_sql(h)})" for i, (k, h) in enumerate(spine))
        ttl_arg = f", ttl => INTERVAL {ttl} HOURS" if ttl is not None else ""
        got = rows(
            cur,
            f"SELECT id, k, val FROM ML.FEATURES_AT_TIME((SELECT * FROM (VALUES {spine_values}) s(id, k, seen_at)), "
            f"FEATURES f, time_column => 'seen_at'{ttl_arg}) ORDER BY id",
        )
        assert sorted(got) == reference(feats, spine, ttl)
        # never a value from the future
        leaks = rows(
            cur,
            f"SELECT count(*) FROM ML.FEATURES_AT_TIME((SELECT * FROM (VALUES {spine_values}) s(id, k, seen_at)), FEATURES f, time_column => 'seen_at') AS p "
            "JOIN f ON f.k = p.k AND f.val = p.val WHERE f.ts > p.seen_at AND NOT EXISTS "
            "(SELECT 1 FROM f AS g WHERE g.k = p.k AND g.val = p.val AND g.ts <= p.seen_at)",
        )
        assert leaks == [(0,)]


# -- statements ---------------------------------------------------------------------------------


def make_orders(cur: Any) -> None:
    cur.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES "
        "(1, TIMESTAMP '2024-01-01', 10.0), (1, TIMESTAMP '2024-01-05', 5.0), (2, TIMESTAMP '2024-01-03', 7.0)"
        ") v(cid, ts, amount)"
    )


FEATURE_SQL = (
    "CREATE FEATURE TABLE spend PRIMARY KEY (cid) TIMESTAMP KEY (ts) COMMENT 'running spend' AS "
    "SELECT cid, ts, sum(amount) OVER (PARTITION BY cid ORDER BY ts) AS total FROM orders"
)


def test_create_show_describe(cur: Any) -> None:
    make_orders(cur)
    cur.execute(FEATURE_SQL)
    assert rows(cur, "SELECT cid, total FROM spend ORDER BY ALL") == [(1, 10), (1, 15), (2, 7)]
    shown = rows(cur, "SHOW FEATURE TABLES LIKE 'sp%'")
    assert [(r[1], r[2], r[3], r[5]) for r in shown] == [("spend", ["cid"], "ts", ["total"])]
    assert rows(cur, "SHOW FEATURE TABLES LIKE 'nothing%'") == []
    desc = {r[0]: r for r in rows(cur, "DESCRIBE FEATURE TABLE spend")}
    assert desc["cid"][1] == "primary key" and desc["ts"][1] == "timestamp key"
    total = desc["total"]
    assert total[1] == "feature" and total[3] == 0.0 and total[4] == 3
    assert (total[5], total[6]) == ("7.0", "15.0") and total[7] == pytest.approx(32 / 3)
    assert "sum(amount)" in desc["query"][2]
    assert desc["source"][2] == "main.orders (version 0)"
    system = rows(cur, "SELECT name, primary_keys, comment, sources FROM lakesql.feature_tables")
    assert system == [("spend", ["cid"], "running spend", ["main.orders@v0"])]


def test_duplicate_and_null_keys_write_nothing(cur: Any, tmp_path: Path) -> None:
    make_orders(cur)
    with pytest.raises(lakesql.IntegrityError, match=r"duplicate key.*cid=1"):
        cur.execute("CREATE FEATURE TABLE f PRIMARY KEY (cid) AS SELECT cid, amount FROM orders")
    with pytest.raises(lakesql.IntegrityError, match="NULL in key"):
        cur.execute("CREATE FEATURE TABLE f PRIMARY KEY (cid) AS SELECT NULL::INT AS cid, 1 AS x")
    with pytest.raises(lakesql.ProgrammingError, match="key column 'nope'"):
        cur.execute("CREATE FEATURE TABLE f PRIMARY KEY (nope) AS SELECT cid FROM orders")
    assert not (tmp_path / "wh" / "main" / "f").exists()
    assert rows(cur, "SHOW FEATURE TABLES") == []


def test_refresh_equals_recreate_in_one_version(cur: Any, tmp_path: Path) -> None:
    make_orders(cur)
    cur.execute(FEATURE_SQL)
    path = str(tmp_path / "wh" / "main" / "spend")
    before = delta.snapshot(path).version
    cur.execute(
        "INSERT INTO orders VALUES (2, TIMESTAMP '2024-01-08', 1.0), (3, TIMESTAMP '2024-01-02', 4.0)"
    )
    cur.execute("DELETE FROM orders WHERE cid = 1 AND ts = TIMESTAMP '2024-01-05'")
    cur.execute("REFRESH FEATURE TABLE spend")
    assert delta.snapshot(path).version == before + 1
    refreshed = rows(cur, "SELECT * FROM spend ORDER BY ALL")
    recreated = rows(
        cur,
        "SELECT cid, ts, sum(amount) OVER (PARTITION BY cid ORDER BY ts) FROM orders ORDER BY ALL",
    )
    assert refreshed == recreated
    assert rows(cur, "SELECT version FROM lakesql.feature_tables") == [(before + 1,)]


def test_lookup_in_joins_ctes_and_ctas(cur: Any) -> None:
    make_orders(cur)
    cur.execute(FEATURE_SQL)
    cur.execute(
        "CREATE TABLE labels AS SELECT * FROM (VALUES (1, TIMESTAMP '2024-01-04', true), (2, TIMESTAMP '2024-01-02', false)) v(cid, ts, churned)"
    )
    cur.execute(
        "CREATE TABLE training AS SELECT * FROM ML.FEATURES_AT_TIME(TABLE labels, FEATURES spend)"
    )
    assert rows(cur, "SELECT cid, churned, total FROM training ORDER BY cid") == [
        (1, True, 10),
        (2, False, None),
    ]
    got = rows(
        cur,
        "WITH p AS (SELECT * FROM ML.FEATURES_AT_TIME(TABLE labels, FEATURES spend)) "
        "SELECT p.cid, p.total, o.amount FROM p JOIN orders o USING (cid) WHERE o.ts = TIMESTAMP '2024-01-01'",
    )
    assert got == [(1, 10, 10)]


def test_lookup_errors(cur: Any) -> None:
    make_orders(cur)
    cur.execute(FEATURE_SQL)
    cur.execute(
        "CREATE FEATURE TABLE spend2 PRIMARY KEY (cid) AS SELECT cid, max(amount) AS total FROM orders GROUP BY cid"
    )
    with pytest.raises(
        lakesql.ProgrammingError,
        match=r"'total' of 'main\.spend2' clashes with a column of 'main\.spend'",
    ):
        cur.execute("SELECT * FROM ML.FEATURES_AT_TIME(TABLE orders, FEATURES spend, spend2)")
    with pytest.raises(lakesql.ProgrammingError, match="no column 'cid'"):
        cur.execute(
            "SELECT * FROM ML.FEATURES_AT_TIME((SELECT 1 AS id, now() AS ts), FEATURES spend)"
        )
    with pytest.raises(lakesql.UnknownObjectError, match=r"feature table 'main\.spnd'"):
        cur.execute("SELECT * FROM ML.FEATURES_AT_TIME(TABLE orders, FEATURES spnd)")
    with pytest.raises(lakesql.ProgrammingError, match="unknown argument 'tll'"):
        cur.execute(
            "SELECT * FROM ML.FEATURES_AT_TIME(TABLE orders, FEATURES spend, tll => INTERVAL 1 DAY)"
        )


def test_plain_key_lookup_and_drop(cur: Any, tmp_path: Path) -> None:
    make_orders(cur)
    cur.execute(
        "CREATE FEATURE TABLE maxes PRIMARY KEY (cid) AS SELECT cid, max(amount) AS biggest FROM orders GROUP BY cid"
    )
    got = rows(
        cur,
        "SELECT cid, biggest FROM ML.FEATURES_AT_TIME((SELECT * FROM range(4) r(cid)), FEATURES maxes) ORDER BY cid",
    )
    assert got == [(0, None), (1, 10), (2, 7), (3, None)]
    with pytest.raises(lakesql.ProgrammingError, match="is a feature table"):
        cur.execute("DROP TABLE maxes")
    cur.execute("DROP FEATURE TABLE maxes")
    assert not (tmp_path / "wh" / "main" / "maxes").exists()
    with pytest.raises(lakesql.UnknownObjectError):
        cur.execute("DROP FEATURE TABLE maxes")
    cur.execute("DROP FEATURE TABLE IF EXISTS maxes")


def test_drop_refused_while_a_model_depends(cur: Any, tmp_path: Path) -> None:
    make_orders(cur)
    cur.execute(FEATURE_SQL)
    cur.execute(
        "CREATE TABLE labels AS SELECT 1 + (i % 2) AS cid, TIMESTAMP '2024-01-06' + INTERVAL (i) HOUR AS ts, "
        "(i % 3 = 0) AS churned, i::DOUBLE AS noise FROM range(60) r(i)"
    )
    cur.execute(
        "TRAIN AUTOML churn PREDICT churned FROM labels WITH FEATURES spend "
        "OPTIONS (time_budget = 2, max_trials = 2, estimators = ['lgbm'])"
    )
    assert rows(cur, "SELECT models FROM lakesql.feature_tables") == [(["churn"],)]
    with pytest.raises(lakesql.CatalogError, match="used by model"):
        cur.execute("DROP FEATURE TABLE spend")
    cur.execute("DROP FEATURE TABLE spend CASCADE")
    assert rows(cur, "SELECT count(*) FROM lakesql.models") == [(0,)]
    assert not (tmp_path / "wh" / "_models" / "churn").exists()
