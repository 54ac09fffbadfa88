"""What the tools people point at a database send (issue 16), through lakesql.connect(): the types
SQLAlchemy's postgres dialect and pandas write in DDL, executemany / pandas.to_sql batches (one
Delta commit each), dbt's DML (qualified column references, ALTER TABLE ... RENAME on a view),
and ML.* forms any SQL parser reads."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
import sqlglot
from helpers import Wh
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

import lakesql
from lakesql.dialect.batch import parameter_rows

# -- types in DDL ---------------------------------------------------------------------------------

POSTGRES_TYPES: list[Any] = [
    sa.Float(precision=53),
    sa.Float(precision=23),
    sa.Float(),
    postgresql.REAL(),
    postgresql.DOUBLE_PRECISION(),
    sa.String(10),
    sa.String(),
    sa.Text(),
    sa.Unicode(20),
    sa.BigInteger(),
    sa.SmallInteger(),
    sa.Integer(),
    sa.Boolean(),
    sa.DateTime(),
    sa.DateTime(timezone=True),
    postgresql.TIMESTAMP(precision=6),
    postgresql.TIMESTAMP(timezone=True, precision=3),
    sa.Date(),
    sa.Time(),
    sa.Time(timezone=True),
    postgresql.TIME(precision=6),
    sa.Numeric(10, 2),
    sa.Numeric(),
    sa.LargeBinary(),
    postgresql.BYTEA(),
    sa.JSON(),
    postgresql.JSONB(),
    sa.Uuid(),
    postgresql.UUID(),
    sa.Interval(),
    postgresql.INTERVAL(fields="DAY TO SECOND"),
    postgresql.ARRAY(sa.Integer()),
    postgresql.ARRAY(sa.String(30)),
    postgresql.ARRAY(sa.Float(precision=53), dimensions=2),
    sa.CHAR(3),
    postgresql.BIT(3),
]


def _postgres_ddl(name: str, *types: Any, not_null: bool = False) -> str:
    columns = [sa.Column(f"c{i}", t, nullable=not not_null) for i, t in enumerate(types)]
    table = sa.Table(name, sa.MetaData(), *columns)
    return str(CreateTable(table).compile(dialect=postgresql.dialect()))


def _duckdb_types(ddl: str, table: str) -> list[str] | type[Exception]:
    con = duckdb.connect()
    try:
        con.execute(ddl)
    except duckdb.Error as e:
        return type(e)
    return [str(r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


@pytest.mark.parametrize("sa_type", POSTGRES_TYPES, ids=lambda t: repr(t))
def test_postgres_ddl_types_are_duckdbs(wh: Wh, sa_type: Any) -> None:
    """CREATE TABLE as SQLAlchemy's postgres dialect writes it: the Delta table's columns have
    the types DuckDB gives the same DDL; a type DuckDB refuses is refused (and nothing made)."""
    ddl = _postgres_ddl("t", sa_type, sa_type, not_null=False)
    expected = _duckdb_types(ddl, "t")
    if not isinstance(expected, list):
        with pytest.raises(lakesql.Error):
            wh.run(ddl)
        assert not (wh.root / "main" / "t").exists()
        return
    wh.run(ddl)
    assert [r[1] for r in wh.rows("DESCRIBE t")] == expected
    # ALTER TABLE ... ADD COLUMN reads the type as written too
    wh.run(f"ALTER TABLE t ADD COLUMN extra {sa_type.compile(dialect=postgresql.dialect())}")
    assert wh.rows("DESCRIBE t")[-1][1] == expected[0]


def test_float_n_as_duckdb_reads_it(wh: Wh) -> None:
    wh.run(
        "CREATE TABLE f (a FLOAT(53) NOT NULL, b FLOAT(24), c REAL, d DOUBLE PRECISION, "
        "e FLOAT(53) DEFAULT 1.5, g FLOAT(53)[])"
    )
    assert [r[1] for r in wh.rows("DESCRIBE f")] == [
        "DOUBLE",
        "FLOAT",
        "FLOAT",
        "DOUBLE",
        "DOUBLE",
        "DOUBLE[]",
    ]
    wh.run("INSERT INTO f (a) VALUES (0.1)")
    assert wh.rows("SELECT a, e FROM f") == [(0.1, 1.5)]
    wh.run("CREATE TABLE g (x FLOAT(53), y TIMESTAMP WITHOUT TIME ZONE) AS SELECT 1, '2020-01-01'")
    assert wh.types("SELECT * FROM g") == ["DOUBLE", "TIMESTAMP"]
    assert wh.rows("SELECT * FROM g") == [(1.0, dt.datetime(2020, 1, 1))]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "f64": [0.1, None, 3.25],
            "f32": pd.Series([1.5, 2.5, None], dtype="float32"),
            "i64": [1, 2, 3],
            "i32": pd.Series([4, 5, 6], dtype="int32"),
            "i16": pd.Series([7, 8, 9], dtype="int16"),
            "flag": [True, False, True],
            "text": ["a", None, "c'c"],
            "ts": pd.to_datetime(
                ["2020-01-01 10:00", "2021-06-30 23:59:59.5", None], format="ISO8601"
            ),
            "tstz": pd.to_datetime(
                ["2020-01-01 10:00", "2021-06-30 00:00", "2022-12-31 00:00"], utc=True
            ),
            "day": [dt.date(2020, 1, 1), dt.date(1999, 12, 31), None],
        }
    )


def _pandas_types(frame: pd.DataFrame) -> list[Any]:
    """The SQLAlchemy types pandas.to_sql declares for `frame`'s columns."""
    from pandas.io.sql import SQLTable

    stub = SimpleNamespace(dtype=None)
    return [SQLTable._sqlalchemy_type(stub, frame[c]) for c in frame.columns]  # type: ignore[arg-type]


def _history_ops(con: Any, table: str) -> list[str]:
    cur = con.execute(f"DESCRIBE HISTORY {table}")
    at = [d[0] for d in cur.description].index("operation")
    return [r[at] for r in cur.fetchall()]


def test_pandas_frame_through_postgres_ddl(tmp_path: Path) -> None:
    """pandas' column types compiled by SQLAlchemy's postgres dialect (FLOAT(53), TIMESTAMP WITHOUT
    TIME ZONE, ...) create the table; to_sql then appends the frame in one commit per call."""
    frame = _frame()
    columns = [sa.Column(c, t) for c, t in zip(frame.columns, _pandas_types(frame), strict=True)]
    ddl = str(
        CreateTable(sa.Table("frame", sa.MetaData(), *columns)).compile(
            dialect=postgresql.dialect()
        )
    )
    assert "FLOAT(53)" in ddl and "TIMESTAMP WITHOUT TIME ZONE" in ddl
    con = lakesql.connect(str(tmp_path / "wh"))
    con.execute(ddl)
    assert [r[1] for r in con.execute("DESCRIBE frame").fetchall()] == _duckdb_types(ddl, "frame")
    engine = sa.create_engine(f"lakesql:///{tmp_path / 'wh'}")
    for method in (None, "multi"):
        frame.to_sql("frame", engine, index=False, if_exists="append", method=method)
    assert _history_ops(con, "frame") == ["INSERT", "INSERT", "CREATE TABLE"]
    rows = con.execute("SELECT * FROM frame").fetchall()
    utc = dt.UTC
    expected = [
        (
            0.1,
            1.5,
            1,
            4,
            7,
            True,
            "a",
            dt.datetime(2020, 1, 1, 10),
            dt.datetime(2020, 1, 1, 10, tzinfo=utc),
            dt.date(2020, 1, 1),
        ),
        (
            None,
            2.5,
            2,
            5,
            8,
            False,
            None,
            dt.datetime(2021, 6, 30, 23, 59, 59, 500000),
            dt.datetime(2021, 6, 30, tzinfo=utc),
            dt.date(1999, 12, 31),
        ),
        (3.25, None, 3, 6, 9, True, "c'c", None, dt.datetime(2022, 12, 31, tzinfo=utc), None),
    ]
    assert [(*r[:8], r[8].astimezone(utc), r[9]) for r in rows] == expected * 2
    engine.dispose()
    con.close()


# -- batches --------------------------------------------------------------------------------------


@pytest.fixture
def batch(wh: Wh) -> Wh:
    wh.run(
        "CREATE TABLE b (id INTEGER NOT NULL, name VARCHAR DEFAULT 'none', score DOUBLE, day DATE)"
    )
    return wh


def test_executemany_of_an_insert_is_one_commit(batch: Wh) -> None:
    version = batch.version("b")
    rows = [(i, f"n{i}", i / 2, dt.date(2020, 1, 1 + i % 28)) for i in range(500)]
    batch.cur.executemany("INSERT INTO b VALUES (?, ?, ?, ?)", rows)
    assert batch.cur.rowcount == 500
    assert batch.version("b") == version + 1
    assert batch.rows("SELECT * FROM b ORDER BY id") == rows
    history = batch.history("b")[0]
    assert history["operation"] == "INSERT"


def test_executemany_keeps_duckdbs_insert_semantics(batch: Wh) -> None:
    """Missing columns take their defaults, values are cast to the column types as DuckDB casts
    parameters, numbered parameters may repeat and reorder; a NOT NULL violation in any row
    commits none of them."""
    version = batch.version("b")
    batch.cur.executemany("INSERT INTO b (id, day) VALUES (?, ?)", [(1, "2020-02-03"), (2, None)])
    batch.cur.executemany(
        "INSERT INTO b (score, id, name) VALUES ($2, $1, $2);", [[3, "3.5"], [4, "4"]]
    )
    assert batch.cur.rowcount == 2
    assert batch.rows("SELECT * FROM b ORDER BY id") == [
        (1, "none", None, dt.date(2020, 2, 3)),
        (2, "none", None, None),
        (3, "3.5", 3.5, None),
        (4, "4", 4.0, None),
    ]
    assert batch.version("b") == version + 2
    with pytest.raises(lakesql.IntegrityError, match="NOT NULL"):
        batch.cur.executemany("INSERT INTO b (id) VALUES (?)", [(5,), (None,), (6,)])
    with pytest.raises(lakesql.Error):
        batch.cur.executemany(
            "INSERT INTO b (id, day) VALUES (?, ?)", [(7, "2020-01-01"), (8, "x")]
        )
    assert batch.version("b") == version + 2
    assert batch.rows("SELECT count(*) FROM b") == [(4,)]


def test_executemany_compared_with_duckdb(batch: Wh) -> None:
    """The rows a batch inserts are the rows DuckDB's own executemany inserts."""
    rows = [(1, None, 1, None), (2, "x", 2.5, dt.date(2021, 3, 4)), (3, "", None, "2022-01-01")]
    sql = "INSERT INTO b VALUES (?, ?, ?, ?)"
    batch.cur.executemany(sql, rows)
    duck = duckdb.connect()
    duck.execute(
        "CREATE TABLE b (id INTEGER NOT NULL, name VARCHAR DEFAULT 'none', score DOUBLE, day DATE)"
    )
    duck.executemany(sql, rows)
    query = "SELECT * FROM b ORDER BY id"
    assert batch.rows(query) == duck.execute(query).fetchall()


def test_executemany_loops_where_it_cannot_batch(batch: Wh) -> None:
    """Values of mixed types in a column (DuckDB binds each row's own), and statements other than
    INSERT ... VALUES (parameters), run once per parameter row as before."""
    version = batch.version("b")
    batch.cur.executemany("INSERT INTO b (id, name) VALUES (?, ?)", [(1, "a"), (2, 5)])
    assert batch.cur.rowcount == 2
    assert batch.version("b") == version + 2
    batch.cur.executemany("UPDATE b SET score = ? WHERE id = ?", [(1.0, 1), (2.0, 2)])
    assert batch.cur.rowcount == 2
    assert batch.version("b") == version + 4
    assert batch.rows("SELECT id, name, score FROM b ORDER BY id") == [(1, "a", 1.0), (2, "5", 2.0)]
    batch.cur.executemany("INSERT INTO b (id) VALUES (?)", [])
    assert batch.cur.rowcount == 0
    assert batch.version("b") == version + 4


def test_executemany_in_a_transaction_and_from_a_generator(batch: Wh) -> None:
    version = batch.version("b")
    batch.run("BEGIN")
    batch.cur.executemany("INSERT INTO b (id) VALUES (?)", ((i,) for i in range(10)))
    batch.cur.executemany("INSERT INTO b (id, score) VALUES (?, ?)", [(10, decimal.Decimal("1.5"))])
    batch.run("COMMIT")
    assert batch.version("b") == version + 1
    assert batch.rows("SELECT count(*), max(score) FROM b") == [(11, 1.5)]


def test_multi_row_values_of_parameters_is_one_statement(batch: Wh) -> None:
    version = batch.version("b")
    n = 300
    params = [v for i in range(n) for v in (i, f"r{i}")]
    batch.run("INSERT INTO b (id, name) VALUES " + ", ".join(["(?, ?)"] * n), params)
    assert batch.cur.rowcount == n
    assert batch.version("b") == version + 1
    assert batch.rows("SELECT count(*), min(name), max(id) FROM b") == [(n, "r0", n - 1)]


@pytest.mark.parametrize("method", [None, "multi"])
def test_pandas_to_sql_is_one_commit(tmp_path: Path, method: str | None) -> None:
    """Before: the default method committed once per SQLAlchemy page (3,000 rows of 10 columns);
    through the Postgres wire, once per row."""
    n = 7_000
    frame = pd.DataFrame({f"c{i}": [float(j * i) for j in range(n)] for i in range(9)})
    frame["k"] = range(n)
    engine = sa.create_engine(f"lakesql:///{tmp_path / 'wh'}")
    frame.to_sql("t", engine, index=False, method=method)
    frame.to_sql("t", engine, index=False, method=method, if_exists="append")
    con = lakesql.connect(str(tmp_path / "wh"))
    assert _history_ops(con, "t") == ["INSERT", "INSERT", "CREATE TABLE"]
    assert con.execute("SELECT count(*), sum(k), sum(c8) FROM t").fetchall() == [
        (2 * n, 2 * sum(range(n)), 2 * sum(float(j * 8) for j in range(n)))
    ]
    engine.dispose()
    con.close()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('INSERT INTO "main".t (a, "b c") VALUES (?, ?)', [[0, 1]]),
        ("insert into t values ($2, $1), ($1, $2);", [[1, 0], [0, 1]]),
        ("INSERT INTO t VALUES (?1, ?2)", [[0, 1]]),
        ("INSERT INTO t /* VALUES */ VALUES (?), (?)", [[0], [1]]),
        ("INSERT INTO t VALUES (?, 1)", None),
        ("INSERT INTO t VALUES (?) ON CONFLICT DO NOTHING", None),
        ("INSERT INTO t VALUES (?) RETURNING *", None),
        ("INSERT INTO t SELECT ?", None),
        ("INSERT OR REPLACE INTO t VALUES (?)", None),
        ("INSERT INTO t VALUES (?, $1)", None),
        ("INSERT INTO t VALUES ($name)", None),
        ("UPDATE t SET a = ?", None),
    ],
)
def test_parameter_rows_reads_only_parameter_values(sql: str, expected: Any) -> None:
    shape = parameter_rows(sql)
    assert (shape.tuples if shape is not None else None) == expected


# -- dbt's DML ------------------------------------------------------------------------------------

DBT_STATEMENTS = [
    'DELETE FROM "main"."t" USING tmp WHERE tmp.k = "main"."t".k',
    "UPDATE main.t SET v = 10 FROM tmp WHERE main.t.k = tmp.k",
    "UPDATE main.t SET v = v + 1 WHERE main.t.k IN (SELECT main.t.k FROM main.t WHERE main.t.v = 3)",
    "MERGE INTO main.t USING tmp ON main.t.k = tmp.k WHEN MATCHED THEN UPDATE SET v = main.t.v + 1 "
    "WHEN NOT MATCHED THEN INSERT VALUES (tmp.k, 99)",
]


@pytest.mark.parametrize("statement", DBT_STATEMENTS)
def test_qualified_column_references_of_the_target(wh: Wh, statement: str) -> None:
    """dbt's delete+insert (and UPDATE ... FROM, MERGE) qualify the target's columns with its
    schema: the rows are DuckDB's, in one commit."""
    duck = duckdb.connect()
    setup = [
        "CREATE TABLE t (k INTEGER, v INTEGER)",
        "INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)",
        "CREATE TABLE tmp AS SELECT * FROM (VALUES (2), (4)) s(k)",
    ]
    for sql in setup:
        wh.run(sql)
        duck.execute(sql)
    version = wh.version("t")
    count = duck.execute(statement).fetchall()[0][0]
    wh.run(statement)
    assert wh.cur.rowcount == count
    assert wh.version("t") == version + 1
    query = "SELECT * FROM t ORDER BY k"
    assert wh.rows(query) == duck.execute(query).fetchall()


def test_insert_on_conflict_with_a_qualified_reference(wh: Wh) -> None:
    wh.run("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
    wh.run("INSERT INTO t VALUES (1, 1), (2, 2)")
    wh.run(
        "INSERT INTO main.t VALUES (1, 5) ON CONFLICT (k) DO UPDATE SET v = main.t.v + excluded.v"
    )
    assert wh.rows("SELECT * FROM t ORDER BY k") == [(1, 6), (2, 2)]


def test_a_target_with_its_own_alias_is_duckdbs_error(wh: Wh) -> None:
    wh.run("CREATE TABLE t (k INTEGER)")
    wh.fails("UPDATE main.t AS x SET k = 2 WHERE main.t.k = 1", lakesql.Error, "main.t", "t")


def test_alter_table_rename_on_a_view(wh: Wh) -> None:
    """dbt renames views with ALTER TABLE (PostgreSQL takes it; DuckDB wants ALTER VIEW)."""
    wh.run("CREATE TABLE t (k INTEGER)")
    wh.run("INSERT INTO t VALUES (1)")
    wh.run("CREATE VIEW v__dbt_tmp AS SELECT k + 1 AS k FROM t")
    wh.run('ALTER TABLE "main"."v__dbt_tmp" RENAME TO "v"')
    assert wh.rows("SELECT * FROM v") == [(2,)]
    wh.run("ALTER VIEW v RENAME TO v2")
    assert wh.rows("SELECT * FROM main.v2") == [(2,)]
    wh.run("CREATE TEMP VIEW tv AS SELECT 3 AS k")
    wh.run("ALTER TABLE tv RENAME TO tv2")
    assert wh.rows("SELECT * FROM tv2") == [(3,)]
    with pytest.raises(lakesql.Error, match="does not exist"):
        wh.run("ALTER TABLE v RENAME TO v3")
    assert wh.rows("SHOW TABLES") == [("main", "t")]


def test_alter_view_on_a_delta_table_is_refused(wh: Wh) -> None:
    """It would rename the session's view of the table, which then no longer reads it."""
    wh.run("CREATE TABLE t (k INTEGER)")
    with pytest.raises(lakesql.ProgrammingError, match="is a Delta table, not a view"):
        wh.run("ALTER VIEW t RENAME TO t2")
    assert wh.rows("SELECT count(*) FROM t") == [(0,)]


# -- ML.* forms generic SQL parsers read ----------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    con = lakesql.connect(str(tmp_path_factory.mktemp("ml") / "wh"))
    cur = con.cursor()
    cur.execute(
        "CREATE TABLE t AS SELECT i, (i % 7)::DOUBLE AS x, (i % 5)::DOUBLE AS z, "
        "(i % 3 = 0 OR i % 7 = 0) AS y FROM range(200) r(i)"
    )
    for leaves in (4, 8):
        cur.execute(
            "TRAIN AUTOML m PREDICT y FROM t OPTIONS (time_budget = 2, max_trials = 1, "
            f"estimators = ['lgbm'], exclude = ['i'], seed = {leaves})"
        )
    cur.execute("ALTER MODEL m SET ALIAS champion VERSION 1")
    yield cur
    con.close()


GENERIC_FORMS = [
    ("ML.PREDICT(MODEL m, TABLE t)", "ML.PREDICT('m', 't')"),
    ("ML.PREDICT(MODEL m, TABLE t)", "ml_predict('m', 'main.t')"),
    ("ML.PREDICT(MODEL m, TABLE t)", "ml_predict('m', t)"),
    ("ML.PREDICT(MODEL m VERSION 1, TABLE t)", "ml_predict('m@1', 't')"),
    ("ML.PREDICT(MODEL m VERSION 1, TABLE t)", "ML.PREDICT('m', 't', version => 1)"),
    ("ML.PREDICT(MODEL m ALIAS champion, TABLE t)", "ml_predict('m@champion', 't')"),
    ("ML.PREDICT(MODEL m ALIAS champion, TABLE t)", "ml_predict('m', 't', alias => 'champion')"),
    (
        "ML.PREDICT(MODEL m, (SELECT * FROM t WHERE i < 50), threshold => 0.3)",
        "ML.PREDICT('m', (SELECT * FROM t WHERE i < 50), threshold => 0.3)",
    ),
    ("ML.EVALUATE(MODEL m, TABLE t)", "ml_evaluate('m', 't')"),
    ("ML.EVALUATE(MODEL m VERSION 1)", "ML.EVALUATE('m@1')"),
    ("ML.CONFUSION_MATRIX(MODEL m, TABLE t)", "ml_confusion_matrix('m', 't')"),
    ("ML.ROC_CURVE(MODEL m, TABLE t)", "ml_roc_curve('m', 't')"),
    ("ML.FEATURE_IMPORTANCE(MODEL m)", "ml_feature_importance('m')"),
    ("ML.TRIAL_INFO(MODEL m VERSION 1)", "ml_trial_info('m@1')"),
    (
        "ML.EXPLAIN_PREDICT(MODEL m, TABLE t, top_k_features => 2)",
        "ml_explain_predict('m', 't', top_k_features => 2)",
    ),
]


@pytest.mark.parametrize(("lakesql_form", "generic"), GENERIC_FORMS)
def test_generic_ml_forms_give_the_model_forms_rows(
    models: Any, lakesql_form: str, generic: str
) -> None:
    statement = f"SELECT * FROM {generic} AS r ORDER BY ALL"
    for dialect in ("postgres", "mysql", "trino", None):
        sqlglot.parse_one(statement, read=dialect)  # what tools that parse SQL first do
    with pytest.raises(sqlglot.errors.ParseError):
        sqlglot.parse_one(f"SELECT * FROM {lakesql_form}", read="postgres")
    expected = models.execute(f"SELECT * FROM {lakesql_form} AS r ORDER BY ALL").fetchall()
    assert expected
    assert models.execute(statement).fetchall() == expected


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        ("ml_predict('m', 'SELECT 1')", lakesql.ProgrammingError, "is not a table name"),
        ("ml_predict('m@1', 't', version => 2)", lakesql.ProgrammingError, "version twice"),
        ("ml_predict('m@', 't')", lakesql.ProgrammingError, "is not a model"),
        ("ml_predict('m', 't', version => 'x')", lakesql.Error, "version number"),
        ("ml_predict('nope', 't')", lakesql.Error, "nope"),
        ("ml_predict('m')", lakesql.Error, "needs the rows"),
        ("ml_feature_importance('m', 't')", lakesql.Error, "takes no rows"),
    ],
)
def test_generic_ml_form_errors(models: Any, call: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        models.execute(f"SELECT * FROM {call}")
