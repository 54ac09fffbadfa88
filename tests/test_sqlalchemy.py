"""The `lakesql://` SQLAlchemy dialect: URLs, DDL, reflection, pandas, executemany batching."""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")
pd = pytest.importorskip("pandas")

import lakesql  # noqa: E402
from lakesql.sqlalchemy import LakeSQLDialect  # noqa: E402


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    eng = sa.create_engine(f"lakesql:///{tmp_path}/wh")
    yield eng
    eng.dispose()


def _statements(engine: Any) -> list[str]:
    seen: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda c, cur, stmt, *a: seen.append(stmt.strip())
    )
    return seen


def test_urls_name_warehouse_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialect = LakeSQLDialect()
    url = sa.engine.make_url
    assert dialect.create_connect_args(url("lakesql:///rel/wh")) == (["rel/wh"], {})
    assert dialect.create_connect_args(url("lakesql:////abs/wh?threads=2")) == (
        ["/abs/wh"],
        {"threads": "2"},
    )
    assert dialect.create_connect_args(url("lakesql:///")) == ([None], {})
    with pytest.raises(sa.exc.ArgumentError):
        dialect.create_connect_args(url("lakesql://host:1/wh"))
    monkeypatch.chdir(tmp_path)
    relative = sa.create_engine("lakesql:///here")
    with relative.connect() as con:
        con.exec_driver_sql("CREATE TABLE t AS SELECT 1 AS x")
    relative.dispose()
    assert (tmp_path / "here" / "main" / "t" / "_delta_log").is_dir()


def test_core_roundtrip_without_begin(engine: Any) -> None:
    seen = _statements(engine)
    md = sa.MetaData()
    people = sa.Table(
        "people",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40), index=True),
        sa.Column("score", sa.Float),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("at", sa.DateTime),
        sa.Column("ok", sa.Boolean),
        sa.Column("key", sa.Uuid),
        comment="people we know",
    )
    md.create_all(engine)
    key = uuid.uuid4()
    row = dict(id=1, name="ada", score=9.5, price=decimal.Decimal("1.25"),
               at=dt.datetime(2024, 1, 2, 3, 4, 5), ok=True, key=key)  # fmt: skip
    with engine.begin() as con:
        con.execute(people.insert(), [row, {**row, "id": 2, "name": "alan", "key": uuid.uuid4()}])
    with engine.connect() as con:
        got = con.execute(sa.select(people).where(people.c.id == 1)).one()
        assert got._asdict() == row
        assert con.execute(people.update().where(people.c.id == 2).values(score=1.0)).rowcount == 1
        con.rollback()  # nothing to undo: the UPDATE committed when it ran
        assert con.execute(sa.select(people.c.score).where(people.c.id == 2)).scalar() == 1.0
        assert con.execute(people.delete().where(people.c.id == 2)).rowcount == 1
        con.commit()
    assert not [s for s in seen if s.upper().startswith(("BEGIN", "START", "SAVEPOINT"))]
    assert not [s for s in seen if "INDEX" in s.upper()]  # Delta tables have no indexes
    md.drop_all(engine)
    assert sa.inspect(engine).get_table_names() == []


def test_executemany_is_batched_into_few_commits(engine: Any) -> None:
    md = sa.MetaData()
    t = sa.Table("big", md, sa.Column("id", sa.Integer), sa.Column("label", sa.String))
    md.create_all(engine)
    rows = [{"id": i, "label": f"row {i}"} for i in range(6000)]
    started = time.monotonic()
    with engine.begin() as con:
        con.execute(t.insert(), rows)
    assert time.monotonic() - started < 20
    with engine.connect() as con:
        assert con.execute(sa.select(sa.func.count(), sa.func.sum(t.c.id))).one() == (
            6000,
            sum(range(6000)),
        )
        history = con.exec_driver_sql("DESCRIBE HISTORY big").fetchall()
    assert len(history) <= 3  # CREATE plus one commit per 5000-row page


def test_pandas_to_sql_and_read_sql(engine: Any) -> None:
    frame = pd.DataFrame(
        {
            "a": range(3000),
            "b": [f"x{i}" for i in range(3000)],
            "c": [i / 4 for i in range(3000)],
            "d": pd.date_range("2024-01-01", periods=3000, freq="min"),
        }
    )
    started = time.monotonic()
    frame.to_sql("frame", engine, index=False)
    frame.to_sql("indexed", engine)  # with the index column (and its CREATE INDEX, skipped)
    assert time.monotonic() - started < 30
    back = pd.read_sql("SELECT * FROM frame ORDER BY a", engine)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    small = pd.read_sql(
        sa.text("SELECT a, b FROM indexed WHERE a < :n ORDER BY a"), engine, params={"n": 3}
    )
    assert small["b"].tolist() == ["x0", "x1", "x2"]
    frame.head(5).to_sql("frame", engine, if_exists="append", index=False)
    frame.head(5).to_sql("indexed", engine, if_exists="replace", index=False)
    assert pd.read_sql("SELECT count(*) AS n FROM frame", engine)["n"][0] == 3005
    assert pd.read_sql_table("indexed", engine).shape == (5, 4)


def test_reflection(engine: Any, tmp_path: Path) -> None:
    with lakesql.connect(f"{tmp_path}/wh") as con:
        cur = con.cursor()
        cur.execute("CREATE SCHEMA sales")
        cur.execute(
            "CREATE TABLE sales.orders (id BIGINT NOT NULL, amount DECIMAL(12,2), tags VARCHAR[], "
            "at TIMESTAMPTZ, flag BOOLEAN, tiny TINYINT, blob BLOB, meta STRUCT(k INTEGER)) "
            "COMMENT 'all orders'"
        )
        cur.execute(
            "INSERT INTO sales.orders VALUES (1, 10.5, ['a'], now(), true, 1, 'x', {'k': 1})"
        )
        cur.execute(
            "CREATE FEATURE TABLE customer_stats PRIMARY KEY (customer) TIMESTAMP KEY (ts) "
            "COMMENT 'per customer' AS SELECT 1 AS customer, TIMESTAMP '2024-01-01' AS ts, 3.5 AS spend"
        )
    inspector = sa.inspect(engine)
    assert {"main", "sales", "lakesql"} <= set(inspector.get_schema_names())
    assert inspector.get_table_names(schema="sales") == ["orders"]
    assert "customer_stats" in inspector.get_table_names()
    assert "feature_tables" in inspector.get_table_names(schema="lakesql")
    assert inspector.has_table("orders", schema="sales") and not inspector.has_table("orders")
    cols = {c["name"]: c for c in inspector.get_columns("orders", schema="sales")}
    assert list(cols) == ["id", "amount", "tags", "at", "flag", "tiny", "blob", "meta"]
    assert isinstance(cols["id"]["type"], sa.BigInteger) and cols["id"]["nullable"] is False
    assert isinstance(cols["amount"]["type"], sa.Numeric)
    assert (cols["amount"]["type"].precision, cols["amount"]["type"].scale) == (12, 2)
    assert isinstance(cols["tags"]["type"], sa.ARRAY)
    assert cols["at"]["type"].timezone is True
    assert isinstance(cols["flag"]["type"], sa.Boolean)
    assert isinstance(cols["blob"]["type"], sa.LargeBinary)
    assert cols["meta"]["type"].get_col_spec() == "STRUCT(k INTEGER)"
    assert inspector.get_table_comment("orders", schema="sales") == {"text": "all orders"}
    assert inspector.get_pk_constraint("orders", schema="sales")["constrained_columns"] == []
    pk = inspector.get_pk_constraint("customer_stats")
    assert pk["constrained_columns"] == ["customer", "ts"]
    assert inspector.get_table_comment("customer_stats")["text"] == "per customer"
    assert inspector.get_foreign_keys("orders", schema="sales") == []
    assert inspector.get_indexes("orders", schema="sales") == []
    with engine.connect() as con:
        con.exec_driver_sql("CREATE VIEW big_orders AS SELECT * FROM sales.orders WHERE amount > 5")
        views = sa.inspect(con).get_view_names()
        assert views == ["big_orders"]
        assert "amount > 5" in sa.inspect(con).get_view_definition("big_orders")
    orders = sa.Table("orders", sa.MetaData(), schema="sales", autoload_with=engine)
    with engine.connect() as con:
        assert con.execute(sa.select(orders.c.amount)).scalar() == decimal.Decimal("10.50")
    with pytest.raises(sa.exc.NoSuchTableError):
        sa.Table("missing", sa.MetaData(), autoload_with=engine)


def test_ddl_for_delta_tables(engine: Any) -> None:
    md = sa.MetaData()
    sa.Table(
        "parted",
        md,
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("v", sa.Integer),
        sa.Column("w", sa.Integer, sa.ForeignKey("parted.v")),
        sa.UniqueConstraint("v"),
        lakesql_partitioned_by=["day"],
        comment="it's partitioned",
    )
    ddl = str(sa.schema.CreateTable(md.tables["parted"]).compile(dialect=engine.dialect))
    assert "PARTITIONED BY (day)" in ddl and "COMMENT 'it''s partitioned'" in ddl
    assert "UNIQUE" not in ddl and "FOREIGN" not in ddl and "NOT NULL" in ddl
    md.create_all(engine)
    assert sa.inspect(engine).get_table_comment("parted")["text"] == "it's partitioned"
    with pytest.raises(sa.exc.ArgumentError):
        engine.connect().execution_options(isolation_level="SERIALIZABLE").exec_driver_sql(
            "SELECT 1"
        )


def test_lakesql_errors_surface_as_dbapi_errors(engine: Any) -> None:
    with engine.connect() as con:
        with pytest.raises(sa.exc.ProgrammingError) as info:
            con.exec_driver_sql("SELECT * FROM nowhere")
        assert isinstance(info.value.orig, lakesql.UnknownObjectError)
        with pytest.raises(sa.exc.NotSupportedError):
            con.exec_driver_sql("CREATE TABLE nested_union (u UNION(a INTEGER)[])")
