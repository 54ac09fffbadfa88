"""PEP 249 compliance: the classic `dbapi20` suite, plus value-level checks of our own.

Each test gets a fresh warehouse in its own temporary directory.
"""

from __future__ import annotations

import datetime as dt
import decimal
import tempfile
import unittest

import dbapi20
import pyarrow as pa
import pytest

import lakesql


class TestLakesqlDBAPI20(dbapi20.DatabaseAPI20Test):
    """The dbapi20 suite, through its documented hooks only."""

    driver = lakesql
    connect_args = ()  # set per test in setUp: (warehouse folder,)
    connect_kw_args = {}
    table_prefix = "dbapi20test_"
    ddl1 = f"create table {table_prefix}booze (name varchar(20))"
    ddl2 = f"create table {table_prefix}barflys (name varchar(20), drink varchar(30))"
    xddl1 = f"drop table {table_prefix}booze"
    xddl2 = f"drop table {table_prefix}barflys"

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lakesql-dbapi20-")
        self.connect_args = (self._tmp.name,)

    def tearDown(self) -> None:
        try:
            super().tearDown()  # drops the tables through xddl1 / xddl2
        finally:
            self._tmp.cleanup()

    def test_nextset(self) -> None:
        # The suite requires drivers to override this test. nextset() only makes sense with
        # statements that return several result sets (stored procedures); lakesql has none.
        con = self._connect()
        try:
            if not hasattr(con.cursor(), "nextset"):
                self.skipTest("optional: lakesql has no stored procedures, so Cursor.nextset is not offered")
        finally:
            con.close()
        self.fail("Cursor.nextset exists: replace this skip with a real test")

    def test_setoutputsize(self) -> None:
        # Driver-dependent per the suite: lakesql accepts and ignores setoutputsize, so a
        # small size must not truncate a large column value.
        con = self._connect()
        try:
            cur = con.cursor()
            cur.setoutputsize(3)
            cur.setoutputsize(3, 0)
            self.executeDDL1(cur)
            cur.execute(f"insert into {self.table_prefix}booze values (?)", ("Victoria Bitter",))
            cur.execute(f"select name from {self.table_prefix}booze")
            self.assertEqual(cur.fetchall(), [("Victoria Bitter",)])
        finally:
            con.close()
