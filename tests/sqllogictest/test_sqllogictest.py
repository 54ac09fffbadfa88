"""DuckDB's own SQL logic tests, run through lakesql.connect() and through duckdb.connect().

The corpus is DuckDB v1.5.5's ``test/sql/{aggregate,cte,filter,join,order,select,setops,subquery,
window}`` (454 files), found at ``<repo>/../shared/sqllogictest``; the tests skip when it is absent.
Both engines run each file with the same runner (`slt_runner.py`). A file that passes on DuckDB
must pass through lakesql, unless its first failure falls in one of the documented categories of
DIFFERENCES below (docs/reliability.md explains each); an unexplained difference fails the test.

The default run takes a fixed subset (fast files, plus a sample of known differences); the whole
corpus is `pytest -m slow tests/sqllogictest` (or `make stress`).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import slt_runner as R

import lakesql

REPO = Path(__file__).resolve().parents[2]
CORPUS = (REPO / ".." / "shared" / "sqllogictest" / "duckdb-v1.5.5").resolve()
# the nine directories of the fidelity yardstick (docs/reliability.md); the write-path ones added
# beside them (insert, update, delete, upsert, merge, alter, returning, transactions, create)
# are issue 17's, counted there
ORIGINAL_DIRECTORIES = [
    *("aggregate", "cte", "filter", "join", "order", "select", "setops", "subquery", "window"),
]

pytestmark = pytest.mark.skipif(
    not (CORPUS / "test" / "sql").is_dir(), reason=f"sqllogictest corpus not found at {CORPUS}"
)

# category -> (pattern matched against the first failure's error or reason, what it means)
DIFFERENCES: dict[str, tuple[str, str]] = {
    "types": (
        r"which a Delta table cannot store",
        "a UNION inside another type is refused (its text does not say which member a value is)",
    ),
    "prepared-write": (
        r"Can only (delete from|update|insert into) base table",
        "PREPARE of INSERT/UPDATE/DELETE on a Delta table: the prepared statement is DuckDB's "
        "and binds to the table's read-only view (EXECUTE of such a statement is refused)",
    ),
    "unordered-result": (
        # also assigned by file below: wrong rows in a result the query does not order
        r"(Copied|Parsed|Deserialized|Unoptimized|No operator caching) statement differs",
        "a query without ORDER BY whose expected rows assume DuckDB's scan order of a table "
        "written by several INSERTs (lakesql scans its Parquet files in parallel); under "
        "PRAGMA enable_verification the re-runs of such a query may then differ",
    ),
}

# Differences whose first failure is a wrong result rather than an error: explained one by one.
WRONG_RESULT_CATEGORY = {
    "test/sql/join/semianti/semijoin.test": "unordered-result",
    "test/sql/subquery/scalar/test_scalar_subquery_cte.test": "unordered-result",
}

FAST_SUBSET = [
    "aggregate/aggregates/max_n_all_types_grouped.test",
    "aggregate/aggregates/test_avg.test",
    "aggregate/aggregates/test_bit_and.test",
    "aggregate/aggregates/test_bitstring_agg.test",
    "aggregate/aggregates/test_count_all_types.test",
    "aggregate/aggregates/test_count_star.test",
    "aggregate/aggregates/test_histogram.test",
    "aggregate/aggregates/test_median.test",
    "aggregate/aggregates/test_minmax_14145.test",
    "aggregate/aggregates/test_skewness.test",
    "aggregate/distinct/issue8505.test",
    "aggregate/distinct/ungrouped/test_distinct_ungrouped_shared_input.test",
    "aggregate/group/test_group_by_error.test",
    "aggregate/group/test_group_by_multi_column.test",
    "aggregate/group/test_group_null.test",
    "aggregate/having/having_without_groupby.test",
    "cte/cte_issue_17311.test",
    "cte/cte_on_conflict_issue.test",
    "cte/cte_schema.test",
    "cte/incorrect_recursive_cte.test",
    "cte/materialized/annotated_and_auto_materialized.test",
    "cte/materialized/cte_filter_pusher.test",
    "cte/materialized/internal_3004.test",
    "cte/materialized/materialized_cte_prepared.test",
    "cte/materialized/test_cte_overflow_materialized.test",
    "cte/recursive_cte_error.test",
    "cte/test_bug_922.test",
    "cte/test_cte_overflow.test",
    "cte/test_nested_recursive_cte.test",
    "filter/test_illegal_filters.test",
    "join/asof/test_asof_join_subquery.test",
    "join/asof/test_asof_limit.test",
    "join/empty_joins.test",
    "join/inner/empty_tinyint_column.test",
    "join/inner/test_join_duplicates.test",
    "join/inner/test_unequal_join_duplicates.test",
    "join/left_outer/left_join_issue_6341.test",
    "join/left_outer/non_foldable_left_join.test",
    "join/natural/natural_join.test",
    "join/positional/issue20086.test",
    "join/positional/test_positional_join.test",
    "join/pushdown/pushdown_generated_columns.test",
    "join/right_outer/right_join_complex_null.test",
    "join/semianti/10406-anti-on-ints-strings.test",
    "join/set_operators/test_set_operator_reordering_with_delim_joins.test",
    "join/test_complex_range_join.test",
    "join/test_string_payload.test",
    "order/hugeint_order_by_extremes.test",
    "order/limit_full_outer_join.test",
    "order/limit_union.test",
    "order/order_by_all.test",
    "order/order_overflow.test",
    "order/test_order_by_exceptions.test",
    "order/test_order_pragma.test",
    "order/top_n_issue_21623.test",
    "select/test_projection_names.test",
    "select/test_select_empty_table.test",
    "select/test_select_locking.test",
    "setops/ambiguous_order_by.test",
    "setops/test_except.test",
    "setops/test_nested_except.test",
    "setops/test_union_except_empty.test",
    "setops/test_union_subquery.test",
    "setops/union_aggregate.test",
    "setops/union_limit.test",
    "setops/union_shared_scan.test",
    "subquery/any_all/issue_2999.test",
    "subquery/any_all/subquery_in.test",
    "subquery/any_all/test_simple_not_in.test",
    "subquery/exists/test_exists_union_by_name.test",
    "subquery/lateral/lateral_join_generated_columns.test",
    "subquery/scalar/array_order_subquery.test",
    "subquery/scalar/coalesce_subquery.test",
    "subquery/scalar/test_issue_6136.test",
    "subquery/scalar/test_issue_7079.test",
    "subquery/scalar/test_scalar_subquery.test",
    "subquery/scalar/test_scalar_subquery_cte.test",
    "subquery/table/test_aliasing.test",
    "window/test_lead_lag.test",
    "window/test_no_default_window_spec.test",
    "window/test_range_optimisation.test",
    "window/test_rownumber_orderby.test",
    "window/test_streaming_window_distinct.test",
    "window/test_tpcds_q49.test",
    "window/test_volatile_independence.test",
    "window/test_window_constant_allocator.test",
    "window/test_window_cse.test",
    "window/test_window_interval.test",
    "window/test_window_order_collate.test",
    "window/test_window_string_agg.test",
    "window/test_window_tpcds.test",
]

SUMMARY_FILE = os.environ.get("LAKESQL_SLT_SUMMARY")  # where the slow run writes its counts


class LakesqlAdapter(R.Adapter):
    """The runner's view of lakesql: one fresh warehouse per test file."""

    name = "lakesql"
    error = lakesql.Error

    def open(self) -> Any:
        udfs = self.work_dir / "udfs"  # empty: no project UDFs in the test files' namespace
        udfs.mkdir(exist_ok=True)
        return lakesql.connect(str(self.work_dir / "warehouse"), udfs=str(udfs))


def classify(result: R.FileResult) -> str:
    """The category of a lakesql-only failure, or 'unexplained'."""
    if result.path in WRONG_RESULT_CATEGORY:
        return WRONG_RESULT_CATEGORY[result.path]
    failure = result.failure
    text = f"{failure.error}\n{failure.reason}" if failure else result.detail
    for name, (pattern, _) in DIFFERENCES.items():
        if pattern != "^$" and re.search(pattern, text):
            return name
    return "unexplained"


def compare(files: list[Path]) -> dict[str, Any]:
    """Run `files` on both engines; counts and the lakesql-only failures by category."""
    duck: dict[str, R.FileResult] = {}
    lake: dict[str, R.FileResult] = {}
    for path in files:
        d = R.run_file(path, R.DuckDBAdapter, CORPUS)
        duck[d.path] = d
        lake[d.path] = d if d.status == "skip" else R.run_file(path, LakesqlAdapter, CORPUS)
    differences: dict[str, str] = {}
    for name, d in duck.items():
        if d.status == "pass" and lake[name].status != "pass":
            differences[name] = classify(lake[name])
    summary = {
        "files": len(files),
        "skipped": sum(d.status == "skip" for d in duck.values()),
        "skip_reasons": dict(
            Counter(_skip_kind(d.detail) for d in duck.values() if d.status == "skip")
        ),
        "pass_duckdb": sum(d.status == "pass" for d in duck.values()),
        "pass_lakesql": sum(r.status == "pass" for r in lake.values()),
        "pass_both": sum(duck[n].status == "pass" and lake[n].status == "pass" for n in duck),
        "fail_duckdb": sorted(n for n, d in duck.items() if d.status == "fail"),
        "differences_by_reason": dict(Counter(differences.values())),
        "differences": differences,
        "details": {
            n: f"line {lake[n].failure.line}: {lake[n].detail}: "
            f"{(lake[n].failure.error or '').splitlines()[0][:200] if lake[n].failure.error else ''}"
            for n in differences
            if lake[n].failure is not None
        },
        "seconds_lakesql": round(sum(r.seconds for r in lake.values()), 1),
        "seconds_duckdb": round(sum(d.seconds for d in duck.values()), 1),
    }
    return summary


def _skip_kind(detail: str) -> str:
    return re.sub(r"^line \d+: ", "", detail).split(" (")[0].split(":")[0]


def report(title: str, s: dict[str, Any]) -> str:
    lines = [
        f"{title}: {s['files']} files; {s['skipped']} skipped {s['skip_reasons']}; "
        f"pass on DuckDB {s['pass_duckdb']}, through lakesql {s['pass_lakesql']} "
        f"(both {s['pass_both']}); lakesql-only failures by reason: {s['differences_by_reason']}",
    ]
    lines += [f"  {n}: [{c}] {s['details'].get(n, '')}" for n, c in s["differences"].items()]
    return "\n".join(lines)


def _check(s: dict[str, Any]) -> None:
    unexplained = {
        n: s["details"].get(n) for n, c in s["differences"].items() if c == "unexplained"
    }
    assert not unexplained, f"files passing on DuckDB but not through lakesql: {unexplained}"


def test_runner_formats_like_duckdb() -> None:
    """Spot checks of value formatting and comparison against DuckDB's runner conventions."""
    import duckdb

    con = duckdb.connect()
    cur = con.execute(
        "SELECT NULL::INTEGER, '', 1.5::DOUBLE, 0.1::FLOAT, true, [1, NULL], {'a': 'x'}, "
        "DATE '2024-01-02', 12::DECIMAL(5,2), '0101'::BIT, (-170141183460469231731687303715884105727)::HUGEINT"
    )
    _types, values = R.fetch_values(cur, lambda c: c.to_arrow_table())
    assert values == [
        "NULL", "(empty)", "1.5", "0.1", "true", "[1, NULL]", "{'a': x}", "2024-01-02",
        "12.00", "0101", "-170141183460469231731687303715884105727",
    ]  # fmt: skip
    assert R.values_equal("1.0049", "1.0", "DOUBLE")  # DuckDB's 1 % tolerance
    assert not R.values_equal("1.02", "1.0", "DOUBLE")
    assert R.values_equal("1", "1.2", "INTEGER")  # expected text cast to the column's type
    assert R.values_equal("12.00", "12", "DECIMAL(5,2)")
    assert R.values_equal("true", "1", "BOOLEAN")
    assert not R.values_equal("NULL", "0", "INTEGER")
    assert R.result_hash(["1", "2"]) == "2 values hashing to 6ddb4095eb719e2a9f0a3f95677d24e0"


def test_runner_parses_control_records(tmp_path: Path) -> None:
    f = tmp_path / "x.test"
    f.write_text(
        "# comment\n\nloop i 0 2\n\nquery I\nSELECT ${i}\n----\n${i}\n\nendloop\n\n"
        "foreach t <signed>\n\nstatement ok\nSELECT 1::${t}\n\nendloop\n\n"
        "skipif duckdb\nstatement ok\nSELECT broken\n\nonlyif duckdb\nstatement ok\nSELECT 1\n\n"
        "mode skip\n\nstatement ok\nnonsense\n\nmode unskip\n\n"
        "statement error\nSELECT x\n----\nBinder Error\n\nhalt\n\nstatement ok\nnonsense\n"
    )
    parsed = R.parse(f)
    assert [r.sql for r in parsed.records][:3] == ["SELECT 0", "SELECT 1", "SELECT 1::tinyint"]
    result = R.run_file(f, R.DuckDBAdapter, tmp_path)
    assert result.status == "pass", result
    f.write_text("require tpcds\n\nstatement ok\nSELECT 1\n")
    assert R.run_file(f, R.DuckDBAdapter, tmp_path).status == "skip"


def test_fast_subset_passes_through_lakesql() -> None:
    files = [CORPUS / "test" / "sql" / name for name in FAST_SUBSET]
    s = compare(files)
    R.SUMMARIES.append(report("sqllogictest (fast subset)", s))
    _check(s)
    assert s["pass_duckdb"] >= len(files) - 2  # the subset is chosen from files DuckDB passes
    # every file DuckDB passes passes through lakesql (the subset's tables are small, so even
    # their unordered queries see rows in insertion order)
    assert s["pass_both"] == s["pass_duckdb"], s["differences"]


@pytest.mark.slow
def test_full_corpus_passes_through_lakesql() -> None:
    files = list(R.corpus_files(CORPUS, ORIGINAL_DIRECTORIES))
    s = compare(files)
    R.SUMMARIES.append(report("sqllogictest (full corpus)", s))
    if SUMMARY_FILE:
        Path(SUMMARY_FILE).write_text(json.dumps(s, indent=2))
    _check(s)
