"""BEGIN ... COMMIT / ROLLBACK on real Delta tables.

The table a transaction writes is a TEMP copy of the version it read until COMMIT, which writes
it in one Delta commit (conflicting with any commit made to the table meanwhile); ROLLBACK drops
the copy. Other cursors and sessions see nothing before COMMIT.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Wh

import lakesql


def test_commit_writes_the_transaction_in_one_version(wh: Wh) -> None:
    wh.run("CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER CHECK (balance >= 0))")
    wh.run("INSERT INTO acct VALUES (1, 100), (2, 0)")
    version = wh.version("acct")
    other = lakesql.connect(str(wh.root)).cursor()
    wh.run("BEGIN TRANSACTION")
    wh.run("UPDATE acct SET balance = balance - 30 WHERE id = 1")
    wh.run("UPDATE main.acct SET balance = balance + 30 WHERE id = 2")
    wh.run("INSERT INTO acct VALUES (3, 5)")
    with pytest.raises(lakesql.IntegrityError, match="CHECK constraint"):
        wh.run("UPDATE acct SET balance = balance - 1000 WHERE id = 1")
    assert wh.rows("SELECT * FROM acct ORDER BY id") == [(1, 70), (2, 30), (3, 5)]
    assert other.execute("SELECT * FROM acct ORDER BY id").fetchall() == [(1, 100), (2, 0)]
    assert wh.version("acct") == version  # nothing committed yet
    wh.run("COMMIT")
    assert wh.version("acct") == version + 1
    assert other.execute("SELECT * FROM acct ORDER BY id").fetchall() == [(1, 70), (2, 30), (3, 5)]
    history = wh.rows("DESCRIBE HISTORY acct")[0]
    assert history[2] == "COMMIT"
    assert history[5].count(";\n") == 2  # the three statements that succeeded


def test_rollback_and_created_tables(wh: Wh) -> None:
    wh.run("CREATE TABLE t (a INTEGER)")
    wh.run("INSERT INTO t VALUES (1)")
    version = wh.version("t")
    wh.run("BEGIN")
    wh.run("DELETE FROM t")
    wh.run("CREATE TABLE fresh (x TIME PRIMARY KEY)")
    wh.run("INSERT INTO fresh VALUES ('01:00:00')")
    assert wh.rows("SELECT count(*) FROM t") == [(0,)]
    wh.run("ROLLBACK")
    assert wh.rows("SELECT count(*) FROM t") == [(1,)]
    assert wh.version("t") == version
    assert not (wh.root / "main" / "fresh").exists()
    wh.run("START TRANSACTION")
    wh.run("CREATE TABLE fresh AS SELECT range AS i FROM range(3)")
    wh.run("INSERT INTO fresh VALUES (10)")
    wh.run("END")
    assert wh.version("fresh") == 0  # created with its rows in one commit
    assert wh.rows("SELECT * FROM fresh ORDER BY i") == [(0,), (1,), (2,), (10,)]


def test_conflict_at_commit_commits_nothing(wh: Wh) -> None:
    wh.run("CREATE TABLE c (a INTEGER)")
    wh.run("INSERT INTO c VALUES (1)")
    wh.run("BEGIN")
    wh.run("UPDATE c SET a = 2")
    other = lakesql.connect(str(wh.root)).cursor()
    other.execute("INSERT INTO c VALUES (5)")  # a blind append: as if it ran after the COMMIT
    wh.run("COMMIT")
    assert wh.rows("SELECT * FROM c ORDER BY a") == [(2,), (5,)]
    wh.run("BEGIN")
    wh.run("UPDATE c SET a = a + 1")
    other.execute("DELETE FROM c WHERE a = 5")  # rewrote the rows the transaction read
    version = wh.version("c")
    with pytest.raises(lakesql.ConflictError):
        wh.run("COMMIT")
    assert wh.version("c") == version
    assert wh.rows("SELECT * FROM c ORDER BY a") == [(2,)]
    with pytest.raises(lakesql.ProgrammingError, match="no transaction is active"):
        wh.run("COMMIT")


def test_refused_inside_a_transaction(wh: Wh) -> None:
    wh.run("CREATE TABLE a (x INTEGER)")
    wh.run("CREATE TABLE b (x INTEGER)")
    wh.run("BEGIN")
    with pytest.raises(lakesql.ProgrammingError, match="within a transaction"):
        wh.run("BEGIN")
    for sql in ("DROP TABLE a", "ALTER TABLE a ADD COLUMN y INTEGER", "OPTIMIZE a"):
        with pytest.raises(lakesql.NotSupportedError, match="inside a transaction"):
            wh.run(sql)
    wh.run("INSERT INTO a VALUES (1)")
    wh.run("INSERT INTO b VALUES (2)")
    with pytest.raises(lakesql.NotSupportedError, match="several tables"):
        wh.run("COMMIT")  # Delta cannot commit two tables at once: rolled back
    assert wh.rows("SELECT count(*) FROM a") == [(0,)]
    assert wh.rows("SELECT count(*) FROM b") == [(0,)]
    assert wh.version("a") == 0 and wh.version("b") == 0
    wh.run("INSERT INTO a VALUES (3)")  # autocommit again
    assert wh.version("a") == 1


def test_connection_commit_and_rollback_end_transactions(wh: Wh) -> None:
    wh.run("CREATE TABLE t (a INTEGER)")
    wh.run("BEGIN")
    wh.run("INSERT INTO t VALUES (1)")
    wh.con.rollback()
    assert wh.rows("SELECT count(*) FROM t") == [(0,)]
    wh.run("BEGIN")
    wh.run("INSERT INTO t VALUES (2)")
    wh.con.commit()
    assert wh.rows("SELECT * FROM t") == [(2,)]
    cur = wh.con.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO t VALUES (3)")
    cur.close()  # an open transaction ends uncommitted with its cursor
    assert wh.rows("SELECT * FROM t") == [(2,)]
    assert wh.version("t") == 1


def test_read_modify_write_loses_no_update(tmp_path: Path) -> None:
    """A commits nothing it computed from a version another writer replaced since A's BEGIN."""
    root = str(tmp_path / "wh")
    with lakesql.connect(root) as a, lakesql.connect(root) as b:
        ca, cb = a.cursor(), b.cursor()
        ca.execute("CREATE TABLE acc AS SELECT 100 AS balance")
        ca.execute("BEGIN")
        read = ca.execute("SELECT balance FROM acc").fetchone()[0]
        cb.execute("UPDATE acc SET balance = balance - 30")
        with pytest.raises(lakesql.ConflictError, match="since this transaction began"):
            ca.execute(f"UPDATE acc SET balance = {read - 30}")
        ca.execute("ROLLBACK")
        ca.execute("BEGIN")
        ca.execute("UPDATE acc SET balance = balance - 30")
        ca.execute("COMMIT")
        assert cb.execute("SELECT balance FROM acc").fetchall() == [(40,)]
