"""What BI tools, dbt and psql send to a Postgres, answered by `lakesql serve` (issue: the tools
people point at a Postgres): database-qualified names, catalog queries, Postgres functions."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakesql
from lakesql.server import Server

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("tools") / "wh"
    with lakesql.connect(str(root)) as con:
        cur = con.cursor()
        cur.execute(
            "CREATE TABLE orders AS SELECT range AS id, range * 1.5 AS amount, "
            "TIMESTAMP '2024-01-01' + INTERVAL (range) DAY AS ts FROM range(10)"
        )
        cur.execute("CREATE TABLE tmp AS SELECT 3 AS k UNION ALL SELECT 4")
    srv = Server(str(root), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv, root
    srv.shutdown()
    srv.server_close()


def _connect(server: Server, dbname: str = "wh") -> Any:
    return psycopg.connect(
        f"host=127.0.0.1 port={server.port} user=tester dbname={dbname}",
        autocommit=True,
        connect_timeout=60,
    )


def _rows(server: tuple[Server, Path], sql: str, params: Any = None, dbname: str = "wh") -> Any:
    with _connect(server[0], dbname) as con:
        return con.execute(sql, params).fetchall()


def test_database_qualified_names_name_the_warehouse(server: tuple[Server, Path]) -> None:
    assert _rows(server, 'SELECT count(*) FROM "wh"."main"."orders"') == [(10,)]
    assert _rows(server, "SELECT current_database(), current_catalog") == [("wh", "wh")]
    # another database name works the same for its own clients
    assert _rows(server, "SELECT count(*) FROM analytics.main.orders", dbname="analytics") == [
        (10,)
    ]


def test_dbt_delete_insert_names_and_nothing_lands_in_memory(server: tuple[Server, Path]) -> None:
    with _connect(server[0]) as con:
        con.execute('CREATE TABLE "wh"."main"."inc" AS SELECT range AS k FROM range(6)')
        con.execute(
            'DELETE FROM "wh"."main"."inc" USING "wh"."main"."tmp" '
            'WHERE "wh"."main"."tmp".k = "wh"."main"."inc".k'
        )
        assert con.execute('SELECT k FROM "wh"."main"."inc" ORDER BY k').fetchall() == [
            (0,),
            (1,),
            (2,),
            (5,),
        ]
        # the table is a Delta table of the warehouse, seen by any other connection
    with lakesql.connect(str(server[1])) as owner:
        assert owner.cursor().execute("SELECT count(*) FROM inc").fetchall() == [(4,)]
    with _connect(server[0]) as con, pytest.raises(psycopg.Error, match="memory"):
        con.execute("CREATE TABLE memory.main.lost AS SELECT 1 AS a")


def test_catalog_queries_of_psql_pgcli_and_superset(server: tuple[Server, Path]) -> None:
    # psql's \du
    du = _rows(
        server,
        "SELECT r.rolname, ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m "
        "JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) AS memberof "
        "FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1",
    )
    assert du == [("tester", [])]
    # pgcli: array parameters and regtype
    assert _rows(server, "SELECT count(*) FROM orders WHERE id = ANY(%s)", ([1, 2, 3],)) == [(3,)]
    assert _rows(server, "SELECT 'int4'::regtype::oid") == [(23,)]
    # Superset's index query: a LEFT JOIN on = ANY(array column)
    assert (
        _rows(
            server,
            "SELECT t.relname, i.relname, a.attname FROM pg_class t "
            "JOIN pg_index ix ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid "
            "LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(ix.indkey) "
            "WHERE t.relname = 'orders'",
        )
        == []
    )
    # Postgres type names where Postgres clients read types
    assert _rows(
        server,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'orders' ORDER BY ordinal_position",
    ) == [("id", "bigint"), ("amount", "numeric"), ("ts", "timestamp without time zone")]


def test_postgres_functions_bi_tools_generate(server: tuple[Server, Path]) -> None:
    assert _rows(server, "SELECT to_timestamp('2024-01-02 03:04:05', 'YYYY-MM-DD HH24:MI:SS')") == [
        (dt.datetime(2024, 1, 2, 3, 4, 5),)
    ]
    assert _rows(server, "SELECT to_char(ts, 'YYYY-MM') FROM orders WHERE id = 0") == [("2024-01",)]
    assert _rows(
        server,
        "SELECT date_trunc('month', ts) AS m, count(*) FROM orders "
        "WHERE ts >= to_timestamp('2024-01-03 00:00:00', 'YYYY-MM-DD HH24:MI:SS') GROUP BY 1",
    ) == [(dt.datetime(2024, 1, 1), 8)]
    assert _rows(server, "SELECT extract(epoch FROM ts) FROM orders WHERE id = 1") == [
        (1704153600.0,)
    ]
    assert _rows(server, "SELECT ts + interval '1 day' FROM orders WHERE id = 0") == [
        (dt.datetime(2024, 1, 2),)
    ]
