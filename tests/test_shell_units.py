"""The shell's parts without a terminal: input completeness, highlighting, completion,
truncated tables, and the batch form (`lakesql shell` with piped input) against snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import helpers
import pytest

from lakesql.cli.complete import LAKESQL_SYNTAX, Catalog, complete_text
from lakesql.cli.lexer import highlight, is_complete, tokenize
from lakesql.cli.render import render, render_table
from lakesql.cli.shell import _Job

FIXTURES = Path(__file__).parent / "fixtures" / "shell"
# A model catalog document as the registry writes it (enough for the system tables).
FAKE_MODEL = {
    "name": "churn_model",
    "task": "classification",
    "label": "churned",
    "versions": [1],
    "aliases": {"latest": 1},
}


def snapshot(name: str, text: str) -> None:
    helpers.snapshot(FIXTURES / name, text)


# -- when does the input end? -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("", True),
        ("-- a comment\n.tables", True),
        ("   ", True),
        (".mode csv", True),
        ("  .tables", True),
        ("SELECT 1", False),
        ("SELECT 1;", True),
        ("SELECT 1;  -- done", True),
        ("SELECT 1; /* done */", True),
        ("SELECT 1\n;", True),
        ("SELECT ';'", False),
        ("SELECT ';", False),
        ("SELECT 1 -- not the end;", False),
        ("SELECT 1 /* ; */", False),
        ("SELECT 1 /* ;", False),
        ('SELECT 1 AS ";"', False),
        ("SELECT $$;$$", False),
        ("SELECT $tag$ ; $tag$;", True),
        ("SELECT $1;", True),
        ("SELECT 1; SELECT 2", False),
        ("SELECT 1; SELECT 2;", True),
        ("-- only a comment", False),
        ("/* open\n.tables", False),
    ],
)
def test_input_is_complete_at_a_top_level_semicolon(text: str, complete: bool) -> None:
    assert is_complete(text) is complete


def test_tokens_cover_the_text() -> None:
    text = "SELECT 'it''s', \"Col\" -- c\n/* b */ $$x$$, 1.5e3, $1 FROM t;"
    tokens = list(tokenize(text))
    assert "".join(t.text for t in tokens) == text
    kinds = [(t.kind, t.text) for t in tokens if t.kind != "space"]
    assert ("string", "'it''s'") in kinds and ("quoted", '"Col"') in kinds
    assert ("comment", "-- c") in kinds and ("comment", "/* b */") in kinds
    assert ("string", "$$x$$") in kinds and ("number", "1.5e3") in kinds
    assert ("param", "$1") in kinds
    assert not next(tokenize("'open")).closed


def test_highlighting_spans_lines_and_marks_keywords() -> None:
    lines = highlight("SELECT 'a\nb', sum(x) -- n\nFROM t", {"SELECT", "FROM"})
    assert len(lines) == 3
    assert lines[0][0] == ("class:sql.keyword", "SELECT")
    assert ("class:sql.string", "b'") in lines[1]
    assert ("class:sql.function", "sum") in lines[1]
    assert ("class:sql.comment", "-- n") in lines[1]
    assert lines[2][0] == ("class:sql.keyword", "FROM")
    assert highlight(".mode csv", set()) == [[("class:sql.meta", ".mode csv")]]


# -- completion ---------------------------------------------------------------------------------


@pytest.fixture
def catalog() -> Catalog:
    c = Catalog()
    c.schemas = ["lab", "main"]
    c.tables = {"main": ["weather", "wine"], "lab": ["cultivar_profile", "wine"]}
    c.features = [("lab", "cultivar_profile")]
    c.models = ["churn_model"]
    c.columns = {
        ("main", "weather"): ["city", "temp", "ts", "Mixed Case"],
        ("lab", "wine"): ["wine_id", "alcohol"],
        ("main", "scratch"): ["q"],  # a TEMP table or view of the session
    }
    c.functions = {"sum", "sqrt", "avg"}
    c.table_functions = {"range", "read_parquet"}
    c.live, c.stale = True, False
    c._folder_at = float("inf")  # never re-read a folder: there is none
    return c


def texts(text: str, catalog: Catalog) -> list[str]:
    return [c.text for c in complete_text(text, catalog)[1]]


def test_completes_tables_after_from(catalog: Catalog) -> None:
    assert texts("SELECT * FROM wea", catalog) == ["weather"]
    assert texts("select * from wi", catalog)[:2] == ["wine", "lab.wine"]
    assert texts("SELECT * FROM lab.", catalog) == ["cultivar_profile", "wine"]
    assert "scratch" in texts("SELECT * FROM s", catalog)
    assert complete_text("SELECT * FROM lab.w", catalog)[0] == 1  # replaces only `w`


def test_completes_models_and_feature_tables_where_they_are_due(catalog: Catalog) -> None:
    assert texts("DROP MODEL chu", catalog) == ["churn_model"]
    assert texts("DESCRIBE MODEL ", catalog) == ["churn_model"]
    assert texts("SELECT * FROM ML.PREDICT(MODEL c", catalog) == ["churn_model"]
    assert texts("SELECT PREDICT(", catalog) == ["churn_model"]
    assert texts("PREDICT ", catalog) == ["churn_model"]
    assert texts("TRAIN AUTOML m PREDICT ", catalog)[0] != "churn_model"  # a label column is due
    assert texts("REFRESH FEATURE TABLE cu", catalog) == ["lab.cultivar_profile"]
    spine = "SELECT * FROM ML.FEATURES_AT_TIME(TABLE s, FEATURES cul"
    assert texts(spine, catalog) == ["lab.cultivar_profile"]


def test_completes_our_statements_word_by_word(catalog: Catalog) -> None:
    assert texts("DESCRIBE HIS", catalog) == ["HISTORY"]
    assert texts("describe his", catalog) == ["history"]
    assert texts("CREATE FE", catalog)[0] == "FEATURE TABLE"
    assert texts("CREATE OR REPLACE FEATURE T", catalog)[0] == "TABLE"
    assert "OPTIMIZE" in texts("SELECT 1; OPT", catalog)
    assert texts("TRAIN AU", catalog) == ["AUTOML"]
    assert texts("SELECT * FROM ML.FEATURES_", catalog) == ["FEATURES_AT_TIME"]
    assert "VERSION AS OF" in texts("SELECT * FROM weather VER", catalog)


def test_completes_columns_of_the_statement_tables(catalog: Catalog) -> None:
    got = texts("SELECT t FROM weather WHERE t", catalog)
    assert got[:2] == ["temp", "ts"]
    assert texts("SELECT w.al FROM lab.wine AS w WHERE w.", catalog) == ["alcohol", "wine_id"]
    assert texts("SELECT weather.M FROM weather", catalog) == []  # the cursor is at the end
    assert '"Mixed Case"' in texts("SELECT x FROM weather WHERE weather.", catalog)
    assert texts("SELECT x FROM weather WHERE weather.Mi", catalog) == ['"Mixed Case"']


def test_no_completion_inside_strings_and_comments(catalog: Catalog) -> None:
    assert texts("SELECT 'wea", catalog) == []
    assert texts("SELECT 1 -- wea", catalog) == []


def test_completes_meta_commands(catalog: Catalog, tmp_path: Path, monkeypatch) -> None:
    assert texts(".mo", catalog) == [".mode", ".models"]
    assert texts(".mode c", catalog) == ["csv"]
    assert texts(".timer o", catalog) == ["off", "on"]
    assert texts(".schema w", catalog) == ["weather", "wine", "lab.wine"]
    (tmp_path / "job.sql").write_text("")
    monkeypatch.chdir(tmp_path)
    assert texts(".read jo", catalog) == ["job.sql"]


def test_every_syntax_row_is_well_formed() -> None:
    assert len({(s.words, s.kind) for s in LAKESQL_SYNTAX}) == len(LAKESQL_SYNTAX)
    for s in LAKESQL_SYNTAX:
        assert s.kind in {"statement", "clause", "function"}
        assert s.then in {None, "table", "feature", "model", "schema", "function"}


def test_catalog_from_a_real_warehouse(tmp_path: Path) -> None:
    import lakesql

    wh = tmp_path / "wh"
    with lakesql.connect(str(wh)) as con:
        cur = con.cursor()
        cur.execute("CREATE SCHEMA lab")
        cur.execute("CREATE TABLE lab.readings AS SELECT 1 AS sensor_id, 2.5 AS reading")
        cur.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS q")
        assert con.session is not None
        con.session.warehouse.put_doc("models", "churn_model", FAKE_MODEL)
        c = Catalog(warehouse_root=str(wh))
        c.refresh_folder()
        assert c.table_names() == ["lab.readings"] and c.models == ["churn_model"]
        c.refresh_live(cur)
        assert c.columns_of("lab.readings") == ["sensor_id", "reading"]
        assert c.columns_of("scratch") == ["q"]
        assert {"sum", "read_parquet"} <= c.functions | c.table_functions
        assert "QUALIFY" in c.keywords
        assert texts("SELECT sen", c) == ["sensor_id"]


# -- results ------------------------------------------------------------------------------------


def test_truncated_table_snapshot() -> None:
    columns = ["id", "a_rather_long_column_name", "description", "score", "flag", "note", "amount"]
    rows = [
        (i, "ab" * i, "lorem ipsum dolor sit amet " * 3, i / 4, i % 2 == 0, None, i * 1000)
        for i in range(1000)
    ]
    text = "".join(
        [
            render_table(columns, rows[:3], rows[-2:], total=1000, width=80),
            "\n",
            render_table(columns, rows[:2], rows[-2:], total=1000, width=40),
            "\n",
            render_table(columns, rows[:3], width=200),
            "\n",
            render_table(["nothing"], [], total=0, width=10),
        ]
    )
    snapshot("table_truncated.txt", text)
    for line in render_table(columns, rows[:2], rows[-2:], total=1000, width=40).splitlines():
        assert len(line) <= 40


def test_untruncated_table_is_the_plain_format() -> None:
    rows = [(1, "a"), (22, None)]
    assert render_table(["n", "s"], rows) == render(["n", "s"], rows, "table")


@pytest.mark.parametrize(("total", "head", "tail"), [(5, 5, 0), (40, 40, 0), (41, 20, 20)])
def test_rows_kept_for_a_terminal(total: int, head: int, tail: int) -> None:
    class Cursor:
        description = [("n",)]

        def __init__(self) -> None:
            self.rows = [(i,) for i in range(total)]

        def execute(self, sql: str) -> None:
            pass

        def fetchmany(self, n: int) -> list[tuple[int]]:
            out, self.rows = self.rows[:3], self.rows[3:]
            return out

    job = _Job(Cursor(), "", 40)  # type: ignore[arg-type]
    job.run()
    first, last = job.shown()
    assert (len(first), len(last), job.total) == (head, tail, total)
    assert first[0] == (0,) and (last or first)[-1] == (total - 1,)


# -- the batch form: `lakesql shell` with piped input ---------------------------------------------

BATCH = """\
CREATE TABLE t AS SELECT * FROM (VALUES (1, 'ada', 2.5), (2, 'grace', NULL)) v(id, name, score);
-- meta commands between statements
.mode csv
SELECT * FROM t
ORDER BY id;
.mode json
SELECT name FROM t WHERE id = 2;
.mode markdown
SELECT id, score FROM t ORDER BY id;
.mode line
SELECT * FROM t WHERE id = 1;
.mode table
SELEC oops;
SELECT count(*) AS n FROM t;
.schema t
.tables
.models
.mode nope
.frobnicate
SELECT 'no semicolon at the end' AS last
"""


def test_batch_output_snapshot(tmp_path: Path) -> None:
    env = {**os.environ, "LAKESQL_WAREHOUSE": str(tmp_path / "wh")}
    out = subprocess.run(
        [sys.executable, "-m", "lakesql.cli", "shell"],
        input=BATCH,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1  # some lines failed; the others ran
    snapshot("batch_stdout.txt", out.stdout)
    snapshot("batch_stderr.txt", out.stderr)
    assert json.loads(out.stdout.split("\n")[3]) == [{"name": "grace"}]


def test_shell_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, json\n"
        "import lakesql.cli.main, lakesql.cli.shell, lakesql.cli.complete, lakesql.cli.lexer\n"
        "heavy = ['duckdb', 'deltalake', 'pyarrow', 'pandas', 'sqlglot', 'sklearn']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
