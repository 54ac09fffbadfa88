"""The interactive shell, driven in a pseudo-terminal like a person would (pexpect)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

PROMPT = "lakesql> "
ACCEPTED = "\x1b[?2004l"  # prompt_toolkit leaves bracketed-paste mode: the input was accepted
TIMEOUT = 30  # generous: a loaded machine must not fail these


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with a table and a registered (fake) model."""
    import lakesql

    wh = tmp_path_factory.mktemp("shell") / "wh"
    with lakesql.connect(str(wh)) as con:
        con.execute(
            "CREATE TABLE weather_obs AS SELECT range AS id, 'city_' || range AS city FROM range(5)"
        )
        assert con.session is not None
        con.session.warehouse.put_doc(
            "models",
            "churn_model",
            {"name": "churn_model", "task": "classification", "label": "churned", "versions": [1]},
        )
    return wh


class Shell:
    """A `lakesql` process in a pseudo-terminal."""

    def __init__(self, warehouse: Path, cwd: Path, *args: str):
        env = {
            **os.environ,
            "LAKESQL_WAREHOUSE": str(warehouse),
            "LAKESQL_HISTORY": str(cwd / "history"),
            "HOME": str(cwd),
            "TERM": "xterm",
            "NO_COLOR": "1",
            "PROMPT_TOOLKIT_NO_CPR": "1",  # the pty does not answer cursor-position requests
        }
        self.p = pexpect.spawn(
            sys.executable,
            ["-m", "lakesql.cli", *args],
            cwd=str(cwd),
            env=env,
            dimensions=(40, 160),
            encoding="utf-8",
            timeout=TIMEOUT,
        )

    def prompt(self) -> None:
        self.p.expect_exact(PROMPT)

    def run(self, sql: str, *expected: str) -> None:
        """Type `sql` and Enter; expect each text in order in what follows, then the prompt."""
        self.p.send(sql + "\r")
        self.p.expect_exact(ACCEPTED)  # what comes next is output, not the echo of the input
        for text in expected:
            self.p.expect_exact(text)
        self.prompt()

    def quit(self) -> None:
        self.p.sendcontrol("d")
        self.p.expect(pexpect.EOF)
        self.p.close()
        assert self.p.exitstatus == 0


@pytest.fixture
def shell(warehouse: Path, tmp_path: Path) -> Iterator[Shell]:
    sh = Shell(warehouse, tmp_path, "shell")
    sh.prompt()
    yield sh
    if sh.p.isalive():
        sh.p.terminate(force=True)


def test_multi_line_statement_and_history(shell: Shell, tmp_path: Path) -> None:
    shell.p.send("SELECT id, city\r")
    shell.p.expect_exact("...>")  # not complete yet: a continuation line
    shell.p.send("FROM weather_obs -- a comment; not the end\r")
    shell.p.expect_exact("...>")
    shell.p.send("WHERE city = 'a;b' OR id < 2\r")
    shell.p.expect_exact("...>")
    shell.run(";", "city_0", "city_1", "(2 rows)")
    shell.quit()
    history = (tmp_path / "history").read_text()
    assert "+WHERE city = 'a;b' OR id < 2" in history  # the whole statement is one entry


def test_table_name_completion(shell: Shell) -> None:
    shell.p.send("SELECT count(*) AS n FROM weather_o\t")
    shell.p.expect_exact("bs")  # the completion is on the screen
    shell.run(";", " 5\r\n(1 row)")
    shell.quit()


def test_model_name_completion_and_ctrl_c_clears_the_line(shell: Shell) -> None:
    shell.p.send("DROP MODEL IF EXISTS chu\t")
    shell.p.expect_exact("rn_model")
    shell.p.sendintr()  # Ctrl-C at the prompt: the line is dropped, not run
    shell.prompt()
    shell.run(".models", "churn_model", "classification")
    shell.quit()


def test_syntax_error_shows_caret_and_the_shell_goes_on(shell: Shell) -> None:
    shell.p.send("SELEC 1;\r")
    shell.p.expect_exact(ACCEPTED)
    shell.p.expect_exact("syntax error")
    shell.p.expect_exact("SELEC 1")
    shell.p.expect(r"\r\n\s*\^")
    shell.prompt()
    shell.run("SELECT 41 + 1 AS answer;", "answer", "42", "(1 row)")
    shell.quit()


def test_ctrl_c_cancels_a_running_query(shell: Shell) -> None:
    shell.run("SELECT 1 AS warm;", "(1 row)")  # the connection is open
    shell.p.send("SELECT count(*) FROM range(10000000000);\r")
    shell.p.expect_exact(ACCEPTED)
    time.sleep(1.0)
    began = time.monotonic()
    shell.p.sendintr()
    shell.p.expect_exact("Cancelled.")
    assert time.monotonic() - began < 5  # the full count takes far longer
    shell.prompt()
    shell.run("SELECT 'still here' AS s;", "still here")
    shell.quit()


def test_output_modes_truncation_timer_and_output_file(shell: Shell, tmp_path: Path) -> None:
    shell.run("SELECT range AS id FROM range(1000);", "  0", "  …", "999", "(1000 rows, 40 shown)")
    shell.run(".timer on")
    shell.run("SELECT 1;", "Run Time: ")
    shell.run(".timer off")
    shell.run(".mode csv")
    shell.run("SELECT 1 AS a, 'x,y' AS b;", 'a,b\r\n1,"x,y"')
    out = tmp_path / "out.csv"
    shell.run(f".output {out}")
    shell.run("SELECT id FROM weather_obs ORDER BY id LIMIT 2;")
    shell.run(".output")
    shell.run("SELECT 3 AS c;", "c\r\n3")
    shell.quit()
    assert out.read_text() == "id\n0\n1\n"


def test_read_file(shell: Shell, tmp_path: Path) -> None:
    script = tmp_path / "job.sql"
    script.write_text(
        "CREATE OR REPLACE TEMP TABLE nums AS SELECT range AS n FROM range(3);\n"
        ".mode line\n"
        "SELECT sum(n) AS total\n  FROM nums;\n"
    )
    shell.run(f".read {script}", "total = 3")
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT 1;\n\nSELECT * FROM missing_table;\nSELECT 2;\n")
    shell.run(f".read {bad}", f"Error at {bad}:3", "does not exist")
    shell.quit()


def test_shell_is_the_default_on_a_terminal(warehouse: Path, tmp_path: Path) -> None:
    sh = Shell(warehouse, tmp_path)
    sh.prompt()
    sh.run("SELECT 6 * 7 AS x;", "42")
    sh.p.send(".quit\r")
    sh.p.expect(pexpect.EOF)


def test_train_shows_progress_and_its_model_completes(shell: Shell) -> None:
    shell.p.timeout = 120  # loading the ML libraries is slow on a busy machine
    shell.run(
        "CREATE TABLE visits AS SELECT range AS id, (range % 7)::DOUBLE AS pages, "
        "(range % 7 > 3)::INT AS bought FROM range(300);"
    )
    shell.run(
        "TRAIN AUTOML buyer_model PREDICT bought FROM visits OPTIONS (time_budget = 1);",
        "TRAIN [",  # the progress bar, on stderr
        "buyer_model",
        "(1 row)",
    )
    shell.p.send("DESCRIBE MODEL buyer_\t")
    shell.p.expect_exact("model")
    shell.run(";", "label", "bought")
    shell.quit()
