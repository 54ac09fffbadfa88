"""Transactions over the wire are lakesql transactions: read-modify-write by two psycopg clients
loses no update (the loser gets SQLSTATE 40001), ROLLBACK and a disconnect commit nothing, and the
writes of one table up to a Sync (an executemany) are one Delta commit."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_server import _connect, _dsn, _start, _stop

import lakesql
from lakesql.server import Server

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wire_tx")


@pytest.fixture(scope="module")
def server(warehouse: Path) -> Iterator[Server]:
    srv = _start(warehouse)
    yield srv
    _stop(srv)


def commits(warehouse: Path, table: str) -> int:
    """Delta versions of main.`table` (its _delta_log commit files)."""
    log = warehouse / "main" / table / "_delta_log"
    return sum(1 for n in os.listdir(log) if n.endswith(".json"))


def read_modify_write(server: Server, warehouse: Path, runs: int) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE acct AS SELECT 1 AS id, 100000 AS balance")
    start = commits(warehouse, "acct")
    read_done = threading.Barrier(2)
    begin = threading.Barrier(2)
    outcomes: list[list[str]] = [[], []]
    problems: list[str] = []

    def client(k: int) -> None:
        try:
            with psycopg.connect(_dsn(server), connect_timeout=30) as con:
                for _ in range(runs):
                    begin.wait(timeout=60)
                    try:
                        (balance,) = con.execute("SELECT balance FROM acct WHERE id = 1").fetchone()
                        read_done.wait(timeout=60)  # both read before either writes
                        con.execute("UPDATE acct SET balance = %s WHERE id = 1", [balance - 30])
                        con.commit()
                        outcomes[k].append("won")
                    except psycopg.errors.SerializationFailure as e:
                        assert e.sqlstate == "40001"
                        con.rollback()
                        outcomes[k].append("lost")
        except Exception as e:
            problems.append(f"client {k}: {type(e).__name__}: {e}")
            begin.abort()
            read_done.abort()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not problems, problems
    won = outcomes[0].count("won") + outcomes[1].count("won")
    for run in range(runs):  # exactly one of the two wins each run: the other gets 40001
        assert sorted([outcomes[0][run], outcomes[1][run]]) == ["lost", "won"], run
    with _connect(server) as con:
        assert con.execute("SELECT balance FROM acct").fetchone() == (100000 - 30 * won,)
    assert commits(warehouse, "acct") == start + won  # one Delta version per winning COMMIT


def test_read_modify_write_by_two_clients_loses_no_update(server: Server, warehouse: Path) -> None:
    read_modify_write(server, warehouse, 10)


@pytest.mark.slow
def test_read_modify_write_100_runs(server: Server, warehouse: Path) -> None:
    read_modify_write(server, warehouse, 100)


def test_a_commit_since_begin_is_40001_at_the_write(server: Server, warehouse: Path) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE pot AS SELECT 10 AS v")
    with psycopg.connect(_dsn(server), connect_timeout=30) as a, _connect(server) as b:
        assert a.execute("SELECT v FROM pot").fetchone() == (10,)  # BEGIN, then a read
        b.execute("UPDATE pot SET v = v + 1")  # commits meanwhile
        with pytest.raises(psycopg.errors.SerializationFailure, match="concurrent update"):
            a.execute("UPDATE pot SET v = 10 + 5")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            a.execute("SELECT 1")
        a.rollback()
        a.execute("UPDATE pot SET v = v + 5")  # a new transaction sees b's commit
        a.commit()
        assert b.execute("SELECT v FROM pot").fetchone() == (16,)


def test_rollback_and_disconnect_commit_nothing(server: Server, warehouse: Path) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE kept AS SELECT range AS i FROM range(3)")
    before = commits(warehouse, "kept")
    with psycopg.connect(_dsn(server), connect_timeout=30) as con:
        con.execute("INSERT INTO kept VALUES (%s)", [10])
        con.execute("DELETE FROM kept WHERE i = 0")
        assert con.execute("SELECT count(*) FROM kept").fetchone() == (3,)
        con.rollback()
        assert con.execute("SELECT count(*) FROM kept").fetchone() == (3,)
        con.rollback()
    con = psycopg.connect(_dsn(server), connect_timeout=30)
    con.execute("INSERT INTO kept VALUES (11)")
    con.pgconn.finish()  # the client goes away inside the transaction: no COMMIT
    with _connect(server) as other:
        assert other.execute("SELECT count(*), max(i) FROM kept").fetchone() == (3, 2)
    with lakesql.connect(str(warehouse)) as direct:
        assert direct.execute("SELECT count(*) FROM kept").fetchone() == (3,)
    assert commits(warehouse, "kept") == before


def test_begin_commit_over_the_wire_is_one_version(server: Server, warehouse: Path) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE block (i INT)")
        before = commits(warehouse, "block")
        con.execute("BEGIN")
        for i in range(5):
            con.execute("INSERT INTO block VALUES (%s)", [i])
        con.execute("UPDATE block SET i = i * 10")
        con.execute("COMMIT")
        assert con.execute("SELECT sum(i) FROM block").fetchone() == (100,)
    assert commits(warehouse, "block") == before + 1


def test_executemany_is_one_commit_and_a_failure_rolls_all_back(
    server: Server, warehouse: Path
) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE many (id INT NOT NULL, name VARCHAR)")
        before = commits(warehouse, "many")
        cur = con.cursor()
        cur.executemany("INSERT INTO many VALUES (%s, %s)", [(i, f"n{i}") for i in range(50)])
        assert cur.rowcount == 50
        assert commits(warehouse, "many") == before + 1
        history = con.execute("DESCRIBE HISTORY many").fetchall()
        assert len(history) == before + 1
        rows = [(i, "x") for i in range(100, 125)] + [(None, "bad")] + [(200, "never")]
        with pytest.raises(psycopg.errors.NotNullViolation):
            cur.executemany("INSERT INTO many VALUES (%s, %s)", rows)
        assert con.execute("SELECT count(*), max(id) FROM many").fetchone() == (50, 49)
        assert commits(warehouse, "many") == before + 1
        cur.executemany("INSERT INTO many VALUES (%s, %s)", [(60, "a"), (61, "b")])
        assert con.execute("SELECT count(*), max(id) FROM many").fetchone() == (52, 61)
        con.execute("DELETE FROM many WHERE id >= 60")
        before += 2
        con.execute("INSERT INTO many VALUES (%s, %s)", [300, "alone"])  # one statement
        assert commits(warehouse, "many") == before + 2
        cur.executemany("UPDATE many SET name = %s WHERE id = %s", [("u", 1), ("v", 2)])
        assert commits(warehouse, "many") == before + 3
        assert con.execute("SELECT name FROM many WHERE id IN (1, 2) ORDER BY id").fetchall() == [
            ("u",),
            ("v",),
        ]


def test_a_pipeline_writing_two_tables_commits_each(server: Server, warehouse: Path) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE left_t (i INT)")
        con.execute("CREATE OR REPLACE TABLE right_t (i INT)")
        with con.pipeline():
            cur = con.cursor()
            cur.execute("INSERT INTO left_t VALUES (%s)", [1])
            cur.execute("INSERT INTO left_t VALUES (%s)", [2])
            cur.execute("INSERT INTO right_t VALUES (%s)", [3])
            cur.execute("SELECT 1")
        assert con.execute("SELECT count(*) FROM left_t").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM right_t").fetchone() == (1,)


def test_a_simple_query_writing_one_table_twice_is_one_commit(
    server: Server, warehouse: Path
) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE script_t (i INT NOT NULL)")
        before = commits(warehouse, "script_t")
        con.execute("INSERT INTO script_t VALUES (1); INSERT INTO script_t VALUES (2)")
        assert commits(warehouse, "script_t") == before + 1
        with pytest.raises(psycopg.errors.NotNullViolation):
            con.execute("INSERT INTO script_t VALUES (3); INSERT INTO script_t VALUES (NULL)")
        assert con.execute("SELECT sum(i) FROM script_t").fetchone() == (3,)
        assert commits(warehouse, "script_t") == before + 1
        con.execute("INSERT INTO script_t VALUES (4); INSERT INTO script_t VALUES (5)")
        assert con.execute("SELECT sum(i) FROM script_t").fetchone() == (12,)  # after a failure
        assert commits(warehouse, "script_t") == before + 2


def test_savepoints(server: Server) -> None:
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE sp (i INT)")
    with psycopg.connect(_dsn(server), connect_timeout=30) as con:
        with con.transaction():
            con.execute("INSERT INTO sp VALUES (1)")
            with pytest.raises(psycopg.errors.InvalidTextRepresentation), con.transaction():
                con.execute("SELECT CAST('x' AS INT)")  # nothing written since the savepoint
            con.execute("INSERT INTO sp VALUES (2)")
        assert con.execute("SELECT sum(i) FROM sp").fetchone() == (3,)
        con.commit()
        with pytest.raises(psycopg.errors.DivisionByZero), con.transaction():
            with con.transaction():  # its ROLLBACK TO SAVEPOINT is refused: the block fails
                con.execute("INSERT INTO sp VALUES (4)")
                raise psycopg.errors.DivisionByZero("undo the savepoint")
        assert con.execute("SELECT sum(i) FROM sp").fetchone() == (3,)
        con.rollback()
    with _connect(server) as con:
        con.execute("BEGIN")
        con.execute("SAVEPOINT a")
        con.execute("INSERT INTO sp VALUES (5)")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="rolls back whole"):
            con.execute("ROLLBACK TO SAVEPOINT a")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            con.execute("SELECT 1")
        con.execute("ROLLBACK")
        assert con.execute("SELECT sum(i) FROM sp").fetchone() == (3,)


def test_other_sessions_are_unaffected(server: Server) -> None:
    values: list[Any] = []
    with _connect(server) as con:
        con.execute("CREATE OR REPLACE TABLE seen (i INT)")
    with psycopg.connect(_dsn(server), connect_timeout=30) as writer, _connect(server) as reader:
        writer.execute("INSERT INTO seen VALUES (1)")
        values.append(reader.execute("SELECT count(*) FROM seen").fetchone())
        writer.commit()
        values.append(reader.execute("SELECT count(*) FROM seen").fetchone())
    assert values == [(0,), (1,)]
