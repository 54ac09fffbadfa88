"""DuckDB-specific SQL gives the same results through lakesql as through plain DuckDB.

The same small data set is loaded into a lakesql warehouse (as Delta tables, through
CREATE TABLE AS) and into an in-memory DuckDB database (as regular tables with the same
names). Each query then runs on both, and the rows must be equal, in order.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

import lakesql
from lakesql.storage import delta

# name -> query whose rows become the table (the same text on both sides).
DATA: dict[str, str] = {
    "emp": """
        SELECT * FROM (VALUES
            (1, 'Ada',   'eng',   NULL, 120.5, DATE '2020-01-15'),
            (2, 'Bob',   'eng',   1,    100.0, DATE '2021-03-01'),
            (3, 'Cy',    'sales', 1,    90.25, DATE '2019-07-30'),
            (4, 'Dee',   'sales', 3,    90.25, DATE '2022-11-11'),
            (5, 'Eve',   'ops',   2,    75.0,  DATE '2023-05-05'),
            (6, 'Fayé',  'eng',   2,    NULL,  DATE '2024-02-29')
        ) v(id, name, dept, manager_id, salary, hired)
    """,
    "sales": """
        SELECT * FROM (VALUES
            ('north', 2023, 'q1', 10), ('north', 2023, 'q2', 12), ('north', 2024, 'q1', 15),
            ('south', 2023, 'q1', 7),  ('south', 2024, 'q2', 9),  ('south', 2024, 'q1', 3)
        ) v(region, year, quarter, amount)
    """,
    "wide": """
        SELECT * FROM (VALUES ('a', 1, 2, 3), ('b', 4, NULL, 6)) v(k, jan, feb, mar)
    """,
    "trades": """
        SELECT * FROM (VALUES
            ('X', TIMESTAMP '2024-01-01 10:00:05', 100),
            ('X', TIMESTAMP '2024-01-01 10:00:15', 200),
            ('Y', TIMESTAMP '2024-01-01 10:00:07', 300),
            ('Y', TIMESTAMP '2024-01-01 09:59:00', 400)
        ) v(sym, ts, qty)
    """,
    "quotes": """
        SELECT * FROM (VALUES
            ('X', TIMESTAMP '2024-01-01 10:00:00', 1.5),
            ('X', TIMESTAMP '2024-01-01 10:00:10', 1.75),
            ('Y', TIMESTAMP '2024-01-01 10:00:01', 9.0)
        ) v(sym, ts, price)
    """,
    "items": """
        SELECT * FROM (VALUES
            (1, ['red', 'blue'], [1, 2, 3], {'name': 'bolt', 'weight': 1.5},
             MAP {'size': 10, 'depth': 2}),
            (2, [], [4, 5], {'name': 'nut', 'weight': NULL}, MAP {'size': 3}),
            (3, ['green'], NULL, NULL, NULL)
        ) v(id, tags, nums, info, attrs)
    """,
}

# (id, query): every query has a deterministic row order.
QUERIES: list[tuple[str, str]] = [
    (
        "qualify",
        "SELECT dept, name FROM emp QUALIFY row_number() OVER (PARTITION BY dept ORDER BY id DESC) = 1 ORDER BY dept",
    ),
    (
        "group_by_all",
        "SELECT dept, count(*) AS n, sum(salary) AS total FROM emp GROUP BY ALL ORDER BY dept",
    ),
    ("order_by_all", "SELECT dept, name FROM emp ORDER BY ALL"),
    ("order_by_all_desc", "SELECT region, year, amount FROM sales ORDER BY ALL DESC"),
    ("pivot", "PIVOT sales ON quarter USING sum(amount) GROUP BY region ORDER BY region"),
    (
        "pivot_in",
        "SELECT * FROM (PIVOT sales ON year IN (2023, 2024) USING sum(amount) GROUP BY region) ORDER BY region",
    ),
    ("unpivot", "UNPIVOT wide ON jan, feb, mar INTO NAME month VALUE amount ORDER BY k, month"),
    (
        "unpivot_columns",
        "SELECT * FROM (UNPIVOT wide ON COLUMNS(* EXCLUDE (k)) INTO NAME m VALUE v) ORDER BY ALL",
    ),
    (
        "asof_join",
        "SELECT t.sym, t.ts, t.qty, q.price FROM trades t ASOF JOIN quotes q ON t.sym = q.sym AND t.ts >= q.ts ORDER BY t.ts",
    ),
    (
        "asof_left_join",
        "SELECT t.sym, t.ts, q.price FROM trades t ASOF LEFT JOIN quotes q ON t.sym = q.sym AND t.ts >= q.ts ORDER BY t.ts",
    ),
    ("list_transform", "SELECT id, list_transform(nums, x -> x * 10) FROM items ORDER BY id"),
    ("list_filter", "SELECT id, list_filter(nums, x -> x % 2 = 1) FROM items ORDER BY id"),
    ("list_comprehension", "SELECT id, [x * 2 FOR x IN nums IF x > 1] FROM items ORDER BY id"),
    (
        "list_functions",
        "SELECT id, len(tags), list_sort(tags), list_contains(tags, 'red'), tags[1], nums[-1] FROM items ORDER BY id",
    ),
    ("list_reduce_unnest", "SELECT id, unnest(nums) AS n FROM items ORDER BY id, n"),
    (
        "list_literal_agg",
        "SELECT dept, list(name ORDER BY name) FROM emp GROUP BY dept ORDER BY dept",
    ),
    (
        "struct_fields",
        "SELECT id, info.name, info['weight'], struct_extract(info, 'name') FROM items ORDER BY id",
    ),
    ("struct_star", "SELECT id, info.* FROM items WHERE info IS NOT NULL ORDER BY id"),
    ("struct_build", "SELECT {'id': id, 'who': name} AS s FROM emp ORDER BY id"),
    (
        "map_access",
        "SELECT id, attrs['size'], element_at(attrs, 'depth'), cardinality(attrs) FROM items ORDER BY id",
    ),
    ("map_keys_values", "SELECT id, map_keys(attrs), map_values(attrs) FROM items ORDER BY id"),
    (
        "map_build",
        "SELECT map_from_entries([(dept, count(*))]) FROM emp GROUP BY dept ORDER BY dept",
    ),
    ("exclude", "SELECT * EXCLUDE (hired, manager_id) FROM emp ORDER BY id"),
    (
        "replace",
        "SELECT * REPLACE (upper(name) AS name, salary * 2 AS salary) FROM emp ORDER BY id",
    ),
    ("columns_regex", "SELECT COLUMNS('^(id|name)$') FROM emp ORDER BY id"),
    ("columns_star_agg", "SELECT max(COLUMNS(* EXCLUDE (name, dept, hired))) FROM emp"),
    ("columns_lambda", "SELECT COLUMNS(c -> c LIKE '%a%') FROM wide ORDER BY k"),
    (
        "windows",
        """SELECT id, dept, salary,
                  rank() OVER (PARTITION BY dept ORDER BY salary DESC NULLS LAST) AS r,
                  sum(salary) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS rolling,
                  lag(name) OVER (ORDER BY id) AS prev,
                  first_value(name) OVER w AS first_in_dept,
                  ntile(2) OVER (ORDER BY id) AS tile
           FROM emp WINDOW w AS (PARTITION BY dept ORDER BY id) ORDER BY id""",
    ),
    (
        "window_filter",
        "SELECT id, count(*) FILTER (WHERE salary > 80) OVER (ORDER BY id) FROM emp ORDER BY id",
    ),
    (
        "recursive_cte",
        """WITH RECURSIVE chain(id, name, depth, path) AS (
               SELECT id, name, 0, [name] FROM emp WHERE manager_id IS NULL
               UNION ALL
               SELECT e.id, e.name, c.depth + 1, list_append(c.path, e.name)
               FROM emp e JOIN chain c ON e.manager_id = c.id
           ) SELECT * FROM chain ORDER BY depth, id""",
    ),
    (
        "recursive_series",
        "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5) SELECT sum(n) FROM s",
    ),
    (
        "strings",
        """SELECT name, upper(name), lower(name), length(name), reverse(name), name || '!' ,
                  left(name, 2), lpad(name, 6, '*'), replace(name, 'e', 'E'), strip_accents(name),
                  regexp_replace(name, '[aeiou]', '_', 'g'), regexp_matches(name, '^[A-C]'),
                  starts_with(name, 'D'), contains(name, 'y'), format('{}-{}', id, dept),
                  printf('%05.1f', salary), string_split(dept || ',x', ','), concat_ws('/', dept, name)
           FROM emp ORDER BY id""",
    ),
    (
        "string_agg",
        "SELECT dept, string_agg(name, ';' ORDER BY name) FROM emp GROUP BY dept ORDER BY dept",
    ),
    (
        "string_slicing",
        "SELECT name[1:2], name[-1:], split_part(dept, 'a', 1) FROM emp ORDER BY id",
    ),
    ("from_first", "FROM emp SELECT name, salary WHERE salary > 90 ORDER BY name"),
    ("from_only", "FROM sales ORDER BY region, year, quarter"),
    ("summarize", "SUMMARIZE emp"),
    ("summarize_query", "SUMMARIZE SELECT amount FROM sales"),
    (
        "dates",
        "SELECT id, date_trunc('month', hired), year(hired), hired + INTERVAL 1 DAY, datediff('day', hired, DATE '2025-01-01') FROM emp ORDER BY id",
    ),
    (
        "timestamps",
        "SELECT sym, strftime(ts, '%H:%M:%S'), epoch(ts), time_bucket(INTERVAL '10 seconds', ts) FROM trades ORDER BY ts",
    ),
    (
        "grouping_sets",
        "SELECT region, year, sum(amount) FROM sales GROUP BY ROLLUP (region, year) ORDER BY region NULLS LAST, year NULLS LAST",
    ),
    (
        "distinct_on",
        "SELECT DISTINCT ON (dept) dept, name FROM emp ORDER BY dept, salary DESC NULLS LAST",
    ),
    (
        "positional_join",
        "SELECT e.id, w.k FROM (SELECT id FROM emp ORDER BY id LIMIT 2) e POSITIONAL JOIN (SELECT k FROM wide ORDER BY k) w ORDER BY e.id",
    ),
    ("lateral", "SELECT e.id, x.v FROM emp e, LATERAL (SELECT e.id * 2 AS v) x ORDER BY e.id"),
    (
        "union_by_name",
        "SELECT id, name FROM emp WHERE id < 3 UNION ALL BY NAME SELECT name, id FROM emp WHERE id > 5 ORDER BY id",
    ),
    ("pragma_table_info", "PRAGMA table_info('emp')"),
    (
        "describe_query",
        "DESCRIBE SELECT emp.id, name, info FROM emp, items WHERE emp.id = items.id",
    ),
    (
        "any_value_arg_max",
        "SELECT dept, arg_max(name, salary), max_by(id, hired) FROM emp GROUP BY dept ORDER BY dept",
    ),
]


def _normalize(rows: list[tuple]) -> list[tuple]:
    return [tuple(r) for r in rows]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory):
    """(lakesql cursor, duckdb connection) holding the same tables."""
    root = tmp_path_factory.mktemp("fidelity")
    con = lakesql.connect(str(root / "wh"))
    duck = duckdb.connect()
    cur = con.cursor()
    for name, query in DATA.items():
        cur.execute(f"CREATE TABLE {name} AS {query}")
        duck.execute(f"CREATE TABLE {name} AS {query}")
    yield cur, duck, root
    con.close()
    duck.close()


def test_tables_are_delta_tables(both) -> None:
    cur, duck, root = both
    for name in DATA:
        path = root / "wh" / "main" / name
        assert delta.is_table(path)
        assert delta.snapshot(str(path)).version == 0
        cur.execute(f"SELECT count(*) FROM {name}")
        assert cur.fetchall() == duck.execute(f"SELECT count(*) FROM {name}").fetchall()


@pytest.mark.parametrize("sql", [q for _, q in QUERIES], ids=[i for i, _ in QUERIES])
def test_same_rows_as_duckdb(both, sql: str) -> None:
    cur, duck, _ = both
    expected = duck.execute(sql).fetchall()
    cur.execute(sql)
    got = cur.fetchall()
    assert _normalize(got) == _normalize(expected)
    assert expected, "the query should return rows, or the comparison proves little"
    # Same column names too.
    names = [d[0] for d in duck.execute(sql).description]
    assert [d[0] for d in cur.description] == names


def test_describe_table_matches(both) -> None:
    cur, duck, _ = both
    for name in DATA:
        cur.execute(f"DESCRIBE {name}")
        got = [(r[0], r[1]) for r in cur.fetchall()]
        expected = [(r[0], r[1]) for r in duck.execute(f"DESCRIBE {name}").fetchall()]
        assert got == expected, name


def test_explain_returns_a_plan(both) -> None:
    cur, _, _ = both
    cur.execute("EXPLAIN SELECT dept, count(*) FROM emp WHERE salary > 80 GROUP BY dept")
    rows = cur.fetchall()
    assert rows
    plan = "\n".join(str(c) for r in rows for c in r)
    assert "physical_plan" in plan
    assert "AGGREGATE" in plan.upper()


def test_explain_analyze_returns_a_plan(both) -> None:
    cur, _, _ = both
    cur.execute("EXPLAIN ANALYZE SELECT count(*) FROM sales")
    rows = cur.fetchall()
    assert rows and "analyzed_plan" in "\n".join(str(c) for r in rows for c in r)


def test_set_and_current_setting(both) -> None:
    cur, duck, _ = both
    for target in (cur, duck):
        target.execute("SET threads = 2")
        target.execute("SET default_order = 'desc'")
    sql = "SELECT current_setting('threads'), current_setting('default_order')"
    cur.execute(sql)
    got = cur.fetchall()
    assert got == duck.execute(sql).fetchall()
    assert [(n, o.lower()) for n, o in got] == [(2, "desc")]
    # A setting changes query results in both the same way.
    sql = "SELECT id FROM emp ORDER BY id"
    cur.execute(sql)
    assert cur.fetchall() == duck.execute(sql).fetchall() == [(i,) for i in range(6, 0, -1)]
    for target in (cur, duck):
        target.execute("RESET default_order")
    sql = "SELECT current_setting('default_order')"
    cur.execute(sql)
    assert cur.fetchall() == duck.execute(sql).fetchall()
    cur.execute("SELECT id FROM emp ORDER BY id LIMIT 1")
    assert cur.fetchall() == [(1,)]


def test_pragma(both) -> None:
    cur, duck, _ = both
    cur.execute("PRAGMA version")
    assert cur.fetchall() == duck.execute("PRAGMA version").fetchall()
    cur.execute("PRAGMA threads = 1")
    cur.execute("SELECT current_setting('threads')")
    assert cur.fetchall() == [(1,)]


def test_copy_query_to_csv_then_read_csv(both, tmp_path: Path) -> None:
    cur, duck, _ = both
    out_l = tmp_path / "l.csv"
    out_d = tmp_path / "d.csv"
    sql = "COPY (SELECT id, name, salary FROM emp WHERE dept = 'eng' ORDER BY id) TO '{}' (HEADER)"
    cur.execute(sql.format(out_l))
    duck.execute(sql.format(out_d))
    assert out_l.read_text() == out_d.read_text()
    with out_l.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "name", "salary"]
    assert [r[1] for r in rows[1:]] == ["Ada", "Bob", "Fayé"]
    cur.execute(f"SELECT * FROM read_csv('{out_l}') ORDER BY id")
    assert cur.fetchall() == [(1, "Ada", 120.5), (2, "Bob", 100.0), (6, "Fayé", None)]


def test_copy_table_to_parquet(both, tmp_path: Path) -> None:
    cur, duck, _ = both
    out = tmp_path / "emp.parquet"
    cur.execute(f"COPY emp TO '{out}' (FORMAT parquet)")
    back = duck.execute(f"SELECT * FROM read_parquet('{out}') ORDER BY id").fetchall()
    assert back == duck.execute("SELECT * FROM emp ORDER BY id").fetchall()
    # The nested table too.
    out2 = tmp_path / "items.parquet"
    cur.execute(f"COPY items TO '{out2}'")
    cur.execute(f"SELECT * FROM '{out2}' ORDER BY id")
    assert cur.fetchall() == duck.execute("SELECT * FROM items ORDER BY id").fetchall()


def test_copy_from_csv_into_lakesql_table(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id,name,score\n10,ten,1.5\n11,eleven,\n12,twelve,3.25\n")
    con = lakesql.connect(str(tmp_path / "wh"))
    cur = con.cursor()
    cur.execute("CREATE TABLE scores (id INTEGER NOT NULL, name VARCHAR, score DOUBLE)")
    cur.execute("INSERT INTO scores VALUES (1, 'one', 0.5)")
    path = str(tmp_path / "wh" / "main" / "scores")
    before = delta.snapshot(path).version
    cur.execute(f"COPY scores FROM '{src}' (HEADER)")
    assert cur.rowcount == 3
    assert delta.snapshot(path).version == before + 1
    cur.execute("SELECT * FROM scores ORDER BY id")
    assert cur.fetchall() == [
        (1, "one", 0.5),
        (10, "ten", 1.5),
        (11, "eleven", None),
        (12, "twelve", 3.25),
    ]
    cur.execute("DESCRIBE HISTORY scores")
    newest = cur.fetchall()[0]
    assert newest[2] == "COPY"
    assert newest[5] == f"COPY scores FROM '{src}' (HEADER)"
    # The same statement in plain DuckDB gives the same rows.
    duck = duckdb.connect()
    duck.execute("CREATE TABLE scores (id INTEGER NOT NULL, name VARCHAR, score DOUBLE)")
    duck.execute("INSERT INTO scores VALUES (1, 'one', 0.5)")
    duck.execute(f"COPY scores FROM '{src}' (HEADER)")
    assert duck.execute("SELECT * FROM scores ORDER BY id").fetchall() == [
        (1, "one", 0.5),
        (10, "ten", 1.5),
        (11, "eleven", None),
        (12, "twelve", 3.25),
    ]
    duck.close()
    con.close()


# -- time travel joined with the current version -----------------------------------------------

# Each query is written with {v0} / {v1} placeholders: in lakesql they become
# `hist VERSION AS OF n`, in DuckDB the name of a table holding that version's rows.
TIME_TRAVEL: list[tuple[str, str]] = [
    (
        "join_current",
        "SELECT c.id, o.val AS old, c.val AS new FROM {v0} AS o JOIN hist AS c ON o.id = c.id "
        "WHERE o.val <> c.val ORDER BY c.id",
    ),
    (
        "cte",
        "WITH before AS (SELECT * FROM {v0}), after AS (SELECT * FROM hist) "
        "SELECT a.id, a.val, b.val FROM after a LEFT JOIN before b USING (id) ORDER BY a.id",
    ),
    (
        "cte_two_versions",
        "WITH x AS (SELECT id, val FROM {v0}), y AS (SELECT id, val FROM {v1}) "
        "SELECT (SELECT count(*) FROM x), (SELECT count(*) FROM y), (SELECT count(*) FROM hist)",
    ),
    ("subquery_in", "SELECT id, val FROM hist WHERE id NOT IN (SELECT id FROM {v0}) ORDER BY id"),
    (
        "subquery_from",
        "SELECT count(*), sum(val) FROM (SELECT * FROM {v1} EXCEPT SELECT * FROM hist) AS gone",
    ),
    ("scalar_subquery", "SELECT id, val - (SELECT max(val) FROM {v0}) FROM hist ORDER BY id"),
    (
        "exists",
        "SELECT id FROM {v1} AS o WHERE NOT EXISTS (SELECT 1 FROM hist c WHERE c.id = o.id) ORDER BY id",
    ),
]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("timetravel")
    con = lakesql.connect(str(root / "wh"))
    duck = duckdb.connect()
    cur = con.cursor()
    steps = [
        "CREATE TABLE hist AS SELECT * FROM (VALUES (1, 10), (2, 20), (3, 30)) v(id, val)",  # v0
        "UPDATE hist SET val = val + 1 WHERE id >= 2",  # v1
        "INSERT INTO hist VALUES (4, 40), (5, 50)",  # v2
        "DELETE FROM hist WHERE id = 1",  # v3
    ]
    for i, sql in enumerate(steps):
        cur.execute(sql)
        duck.execute(sql)
        duck.execute(f"CREATE TABLE hist_v{i} AS SELECT * FROM hist")
    assert delta.snapshot(str(root / "wh" / "main" / "hist")).version == 3
    yield cur, duck
    con.close()
    duck.close()


@pytest.mark.parametrize("template", [q for _, q in TIME_TRAVEL], ids=[i for i, _ in TIME_TRAVEL])
def test_time_travel_with_current(history, template: str) -> None:
    cur, duck = history
    lake_sql = template.format(v0="hist VERSION AS OF 0", v1="hist VERSION AS OF 1")
    duck_sql = template.format(v0="hist_v0", v1="hist_v1")
    expected = duck.execute(duck_sql).fetchall()
    cur.execute(lake_sql)
    assert cur.fetchall() == expected
    assert expected


def test_time_travel_values(history) -> None:
    cur, _ = history
    cur.execute(
        "WITH o AS (SELECT * FROM hist VERSION AS OF 0) "
        "SELECT c.id, o.val, c.val FROM hist c JOIN o ON o.id = c.id ORDER BY c.id"
    )
    assert cur.fetchall() == [(2, 20, 21), (3, 30, 31)]
    cur.execute("SELECT (SELECT count(*) FROM hist VERSION AS OF 2), count(*) FROM hist")
    assert cur.fetchall() == [(5, 4)]
