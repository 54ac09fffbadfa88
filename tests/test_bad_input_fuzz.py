"""A grammar fuzzer for lakesql's own statements: only lakesql.Error may escape.

Statements are generated from lakesql's grammar (DESCRIBE HISTORY, RESTORE, OPTIMIZE, VACUUM,
CREATE/REFRESH/DESCRIBE/DROP FEATURE TABLE, SET/RESET lakesql.*, SHOW ..., CREATE/DROP FUNCTION,
time travel, ML.FEATURES_AT_TIME) with names, numbers and strings drawn from valid and hostile
values, then mutated (tokens dropped, repeated, swapped, truncated, stray characters added).
Each either runs or raises a lakesql.Error that is not an InternalError; nothing is ever written
outside the warehouse folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakesql

EXAMPLES = int(os.environ.get("LAKESQL_FUZZ_EXAMPLES", "150"))

good_tables = st.sampled_from(["t", "main.t", "s.u", "spine", "ft", "T", '"t"'])
hostile_names = st.sampled_from(
    [
        "nope",
        '"../t"',
        '"/tmp/fuzz"',
        '"a/b"',
        '""',
        '"x y"',
        "s.nope",
        "nope.t",
        '"_lakesql"',
        '"' + "a" * 300 + '"',
        "a" * 200,
        '"é"',
        "1t",
        "lakesql.feature_tables",
        '"t""x"',
    ]
)
tables = st.one_of(good_tables, hostile_names)
columns = st.sampled_from(["id", "name", "ts", "nope", '"id"', "ID", '"../x"', "*"])
numbers = st.one_of(
    st.integers(min_value=-3, max_value=6).map(str),
    st.sampled_from(["99999999999999999999999", "-1", "1.5", "0x10", "1e3", "''", "NULL"]),
)
strings = st.one_of(
    st.sampled_from(
        [
            "'2024-01-01 00:00:00'",
            "'1900-01-01'",
            "'2999-12-31'",
            "'garbage'",
            "''",
            "'30 days'",
            "'it''s'",
            "'\u00e9'",
            "'%'",
            "'good:double_it'",
            "'os:getcwd'",
            "'nope:x'",
        ]
    ),
    st.text(alphabet="abc:./%_' -", max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'"),
)
settings_names = st.sampled_from(
    ["threads", "batch_rows", "delta_reader", "memory_limit", "time_budget", "udfs", "nope"]
)
setting_values = st.one_of(numbers, strings, st.sampled_from(["true", "auto", "parquet"]))
queries = st.sampled_from(
    [
        "SELECT id, ts, length(name) AS n FROM t",
        "SELECT 1 AS id",
        "SELECT id FROM t",
        "SELECT * FROM nope",
        "SELECT id, ts FROM t UNION ALL SELECT id, ts FROM t",
        "SELECT NULL::INT AS id",
    ]
)


@st.composite
def statements(draw: Any) -> str:
    kind = draw(st.integers(min_value=0, max_value=16))
    tab = draw(tables)
    if kind == 0:
        return f"DESCRIBE HISTORY {tab}"
    if kind == 1:
        return f"RESTORE TABLE {tab} TO VERSION AS OF {draw(numbers)}"
    if kind == 2:
        return f"RESTORE TABLE {tab} TO TIMESTAMP AS OF {draw(strings)}"
    if kind == 3:
        cols = ", ".join(draw(st.lists(columns, max_size=3)))
        return f"OPTIMIZE {tab}" + (f" ZORDER BY ({cols})" if draw(st.booleans()) else "")
    if kind == 4:
        retain = f" RETAIN {draw(numbers)} HOURS" if draw(st.booleans()) else ""
        return f"VACUUM {tab}{retain}" + (" DRY RUN" if draw(st.booleans()) else "")
    if kind == 5:
        keys = ", ".join(draw(st.lists(columns, min_size=0, max_size=2)))
        ts = f" TIMESTAMP KEY ({draw(columns)})" if draw(st.booleans()) else ""
        ttl = f" TTL INTERVAL {draw(strings)}" if draw(st.booleans()) else ""
        head = draw(st.sampled_from(["", "OR REPLACE ", "IF NOT EXISTS "]))
        name = draw(st.one_of(st.sampled_from(["fz", "fz2", "ft"]), hostile_names))
        exists = "IF NOT EXISTS " if head == "IF NOT EXISTS " else ""
        replace = head if head == "OR REPLACE " else ""
        return (
            f"CREATE {replace}FEATURE TABLE {exists}{name} PRIMARY KEY ({keys}){ts}{ttl} "
            f"AS {draw(queries)}"
        )
    if kind == 6:
        return f"REFRESH FEATURE TABLE {draw(st.one_of(st.sampled_from(['ft', 'fz']), tables))}"
    if kind == 7:
        return f"DESCRIBE FEATURE TABLE {tab}"
    if kind == 8:
        return f"DROP FEATURE TABLE IF EXISTS {draw(st.sampled_from(['fz', 'fz2', 'nope']))}"
    if kind == 9:
        return f"SET lakesql.{draw(settings_names)} = {draw(setting_values)}"
    if kind == 10:
        return f"RESET lakesql.{draw(settings_names)}"
    if kind == 11:
        return draw(
            st.sampled_from(
                [
                    "SHOW TABLES",
                    "SHOW SCHEMAS",
                    "SHOW SETTINGS",
                    "SHOW FUNCTIONS",
                    "SHOW FEATURE TABLES",
                    f"SHOW TABLES IN {tab}",
                ]
            )
        ) + (f" LIKE {draw(strings)}" if draw(st.booleans()) else "")
    if kind == 12:
        name = draw(st.sampled_from(["fzf", "twice", "double_it", '"../f"']))
        params = ", ".join(
            f"a{i} {t}"
            for i, t in enumerate(draw(st.lists(st.sampled_from(["BIGINT", "NOPE", "INT[]"]))))
        )
        return (
            f"CREATE {draw(st.sampled_from(['', 'OR REPLACE ']))}FUNCTION {name}({params}) "
            f"RETURNS {draw(st.sampled_from(['BIGINT', 'NOPE', 'DOUBLE']))} LANGUAGE PYTHON "
            f"AS {draw(strings)}"
        )
    if kind == 13:
        name = draw(st.sampled_from(["fzf", "nope", '"../f"']))
        return f"DROP FUNCTION IF EXISTS {name}"
    if kind == 14:
        clause = draw(
            st.sampled_from(["VERSION AS OF ", "TIMESTAMP AS OF ", "VERSION AS OF -", ""])
        )
        value = draw(st.one_of(numbers, strings))
        return f"SELECT * FROM {tab} {clause}{value}"
    if kind == 15:
        spine = draw(st.sampled_from(["TABLE spine", "(SELECT id, ts FROM spine)", "TABLE t"]))
        feats = ", ".join(draw(st.lists(st.one_of(st.just("ft"), tables), max_size=2)))
        named = draw(
            st.sampled_from(["", ", time_column => 'ts'", ", ttl => INTERVAL '1 day'", ", x => 1"])
        )
        return f"SELECT * FROM ML.FEATURES_AT_TIME({spine}, FEATURES {feats}{named})"
    return f"DESCRIBE {tab}"


@st.composite
def mutated(draw: Any) -> str:
    """A statement, possibly mutated at the token or character level."""
    sql = draw(statements())
    tokens = sql.split(" ")
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        op = draw(st.integers(min_value=0, max_value=5))
        i = draw(st.integers(min_value=0, max_value=max(0, len(tokens) - 1)))
        if op == 0 and len(tokens) > 1:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, tokens[i])
        elif op == 2 and len(tokens) > 1:
            j = draw(st.integers(min_value=0, max_value=len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 3:
            tokens = tokens[: i + 1]
        elif op == 4:
            tokens.insert(
                i, draw(st.sampled_from(["(", ")", "'", '"', ",", ";", "--", "/*", "$$"]))
            )
        else:
            tokens[i] = tokens[i][: draw(st.integers(min_value=0, max_value=len(tokens[i])))]
    return " ".join(tokens)


@pytest.fixture(scope="module")
def fuzz_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from test_bad_input import build_warehouse

    base = tmp_path_factory.mktemp("fuzz")
    con = build_warehouse(base / "warehouse")
    yield base, con
    con.close()


def _run(con: Any, sql: str) -> None:
    cur = con.cursor()
    try:
        cur.execute(sql)
        if cur.description is not None:
            cur.fetchmany(5)
    except lakesql.Error as e:
        assert not isinstance(e, lakesql.InternalError), f"{sql!r}: {e}"
        assert e.message.strip(), f"{sql!r}: empty message"
    finally:
        cur.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(sql=mutated())
def test_fuzzed_statements_raise_only_lakesql_errors(fuzz_warehouse: Any, sql: str) -> None:
    base, con = fuzz_warehouse
    _run(con, sql)
    assert sorted(p.name for p in base.iterdir()) == ["udfs", "warehouse"]
    assert not Path("/tmp/fuzz").exists()


@pytest.mark.slow
def test_fuzzer_long_run(tmp_path: Path) -> None:
    """Many more examples, in a fresh warehouse (run with -m slow)."""
    from test_bad_input import build_warehouse

    con = build_warehouse(tmp_path / "warehouse")

    @settings(max_examples=3000, deadline=None, database=None)
    @given(sql=mutated())
    def run(sql: str) -> None:
        _run(con, sql)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["udfs", "warehouse"]

    try:
        run()
    finally:
        con.close()
        shutil.rmtree(tmp_path / "warehouse", ignore_errors=True)
