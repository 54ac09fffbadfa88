"""The text rewrites, input -> output, against golden files (as sqlglot's optimizer fixtures).

Each file of tests/fixtures/rewrites/ holds cases separated by blank lines:

    # title
    <statement as the user wrote it>
    ---
    <statement as DuckDB receives it>

The warehouse of the cases is built once (`wh` below). Set LAKESQL_UPDATE_SNAPSHOTS=1 to rewrite
the expected texts (then read the diff).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import UPDATE_SNAPSHOTS

import lakesql
from lakesql.context import Context
from lakesql.dialect.dialect import parse_statement
from lakesql.engine import bounds, rowid
from lakesql.engine.timetravel import rewrite_time_travel
from lakesql.server.catalog import Catalog

FIXTURES = Path(__file__).parent / "fixtures" / "rewrites"


def _cases(path: Path) -> list[tuple[str, str, str]]:
    """(title, input, expected) of each case of a golden file."""
    cases = []
    for block in re.split(r"\n\s*\n(?=# )", path.read_text().strip()):
        title, _, body = block.partition("\n")
        given, _, expected = body.partition("\n---\n")
        cases.append((title.removeprefix("# ").strip(), given.strip(), expected.strip()))
    return cases


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("rewrites") / "wh"
    con = lakesql.connect(str(root))
    cur = con.cursor()
    cur.execute("CREATE TABLE t AS SELECT range AS i, 'x' || range AS s FROM range(3)")
    cur.execute("INSERT INTO t VALUES (3, 'x3')")
    cur.execute("CREATE SCHEMA lab")
    cur.execute("CREATE TABLE lab.u AS SELECT range AS k FROM range(2)")
    cur.execute("CREATE TABLE h (v HUGEINT)")
    cur.execute("INSERT INTO h VALUES (-5), (70)")
    yield con
    con.close()


def _normalise(text: str, con: Any) -> str:
    """Version views are named after the table's path (engine.duckdb.version_view): name the
    table instead, so the expected text does not depend on where the warehouse is."""
    wh = con.session.warehouse
    for table in wh.all_tables():
        text = text.replace(
            re.sub(r"\W", "_", wh.ref(table.schema, table.name).path)[-80:], f"<{table.qualified}>"
        )
    return text


def _context(con: Any, sql: str) -> Context:
    session = con.session
    session.sync()
    return Context(session, session.cursor(), sql, None)


def _timetravel(con: Any, sql: str) -> str:
    return rewrite_time_travel(_context(con, sql), parse_statement(sql))


def _engine(rewrite: Callable[[Context, str], str]) -> Callable[[Any, str], str]:
    return lambda con, sql: rewrite(_context(con, sql), sql)


def _pg_catalog(con: Any, sql: str) -> str:
    return Catalog(con, "tester", "wh", {}).rewrite(sql)


REWRITES: dict[str, Callable[[Any, str], str]] = {
    "timetravel": _timetravel,
    "rowid": _engine(rowid.rewrite),
    "bounds": _engine(bounds.rewrite),
    "pg_catalog": _pg_catalog,
}
CASES = [
    pytest.param(name, title, given, expected, id=f"{name}:{title}")
    for name in REWRITES
    for title, given, expected in _cases(FIXTURES / f"{name}.sql")
]


@pytest.mark.parametrize(("rewrite", "title", "given", "expected"), CASES)
def test_rewrite_golden(session: Any, rewrite: str, title: str, given: str, expected: str) -> None:
    got = _normalise(REWRITES[rewrite](session, given), session)
    if UPDATE_SNAPSHOTS:
        path = FIXTURES / f"{rewrite}.sql"
        text = path.read_text()
        old = f"# {title}\n{given}\n---\n{expected}"
        assert old in text, f"case {title!r} not found as written in {path}"
        path.write_text(text.replace(old, f"# {title}\n{given}\n---\n{got}"))
        return
    assert got == expected
    # the rewritten text runs on DuckDB (pg_catalog cases need the server's catalog tables)
    if rewrite != "pg_catalog":
        text = REWRITES[rewrite](session, given)
        assert (
            session.cursor().execute(given).fetchall()
            == _context(session, text).run(text).fetchall()
        )
