"""`lakesql shell`: the interactive SQL shell, and its batch form for piped input.

Start-up stays fast because nothing heavy is imported before the prompt: once the prompt is on
the screen, the connection (DuckDB, deltalake, pyarrow) opens in a background thread while the
user types, and the first statement waits for it. Each statement runs in a worker thread so that Ctrl-C in the main thread
can interrupt DuckDB and return to the prompt. Data goes to stdout (or the `.output` file);
errors, timings and status lines go to stderr.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from lakesql.cli.complete import META_COMMANDS, Catalog
from lakesql.cli.lexer import is_blank, is_complete, is_meta
from lakesql.cli.render import FORMATS, render, render_table

if TYPE_CHECKING:
    from lakesql.dbapi import Connection, Cursor

PROMPT = "lakesql> "
CONTINUATION = "...> "
HISTORY_ENV = "LAKESQL_HISTORY"
DEFAULT_HISTORY = "~/.lakesql_history"
DEFAULT_MAX_ROWS = 40  # table mode on a terminal: first and last 20 rows of longer results
FETCH_ROWS = 2048
MAX_READ_DEPTH = 16

STYLE = {
    "prompt": "ansigreen bold",
    "continuation": "ansibrightblack",
    "sql.keyword": "ansiblue bold",
    "sql.function": "ansicyan",
    "sql.string": "ansigreen",
    "sql.identifier": "ansiyellow",
    "sql.number": "ansimagenta",
    "sql.comment": "ansibrightblack italic",
    "sql.param": "ansiyellow bold",
    "sql.meta": "ansimagenta bold",
    "completion-menu.completion.current": "reverse",
}

# Model catalog fields shown by `.models`, when a model document has them.
MODEL_FIELDS = ("task", "label", "latest_version", "aliases", "created_at", "updated_at")


def history_path() -> str | None:
    """The history file: $LAKESQL_HISTORY (empty: no history file) or ~/.lakesql_history."""
    value = os.environ.get(HISTORY_ENV)
    if value is not None and not value.strip():
        return None
    return os.path.expanduser(value or DEFAULT_HISTORY)


def _interrupt(con: Connection, cur: Cursor) -> None:
    """Interrupt the statement running on `cur`.

    Connection.interrupt() reaches the connection's own DuckDB connection; the statement runs on
    the cursor's, so that one is interrupted as well.
    """
    for target in (con, getattr(cur, "_duck", None)):
        try:
            if target is not None:
                target.interrupt()
        except Exception:
            pass


class _Job:
    """One statement, run in a worker thread: execute, then fetch (head and tail, or all)."""

    def __init__(self, cur: Cursor, sql: str, keep: int | None):
        self.cur = cur
        self.sql = sql
        self.keep = keep  # rows shown (first keep//2 and last keep - keep//2), None: all rows
        self.cancel = threading.Event()
        self.columns: list[str] | None = None
        self.head: list[tuple[Any, ...]] = []
        self.tail: collections.deque[tuple[Any, ...]] = collections.deque()
        self.total = 0
        self.error: BaseException | None = None
        self.stopped = False  # the fetch was cancelled
        # Set when run() returns. Thread.is_alive() is not used: a KeyboardInterrupt inside
        # Thread.join() can leave it saying False while the thread still runs.
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.done.set()

    def _run(self) -> None:
        try:
            self.cur.execute(self.sql)
            if self.cur.description is None:
                return
            self.columns = [d[0] for d in self.cur.description]
            limit = self.keep
            if limit is not None:
                self.tail = collections.deque(maxlen=max(limit - limit // 2, 0))
            while True:
                if self.cancel.is_set():
                    self.stopped = True
                    return
                chunk = self.cur.fetchmany(FETCH_ROWS)
                if not chunk:
                    return
                self.total += len(chunk)
                if limit is None:
                    self.head += chunk
                    continue
                room = limit - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                self.tail.extend(chunk)
        except BaseException as e:
            self.error = e

    def shown(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(first rows, last rows): the rows to show, with the hidden ones between them."""
        if self.keep is None or self.total <= self.keep:
            return [*self.head, *self.tail], []
        half = self.keep // 2
        rest = [*self.head[half:], *self.tail]
        return self.head[:half], rest[len(rest) - (self.keep - half) :]


class Shell:
    """The shell's state and commands, shared by the interactive and the batch form.

    Args:
        warehouse: warehouse folder (None: the setting, `LAKESQL_WAREHOUSE` or ./lakehouse).
        fmt: the output format (`.mode`).
    """

    def __init__(self, warehouse: str | None, fmt: str = "table"):
        self.warehouse = warehouse
        self.mode = fmt
        self.timer = False
        self.max_rows = DEFAULT_MAX_ROWS
        self.done = False
        self._out: TextIO | None = None  # the .output file
        self.con: Connection | None = None
        self.cur: Cursor | None = None
        self._connect_error: BaseException | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._depth = 0
        self._where = ""  # where the meta command being run was read, for its errors
        self.on_terminal = False  # the interactive form
        self.catalog = Catalog(warehouse_root=self._root())

    def _root(self) -> str | None:
        from lakesql import config
        from lakesql.errors import Error

        try:
            return str(config.resolve({"warehouse": self.warehouse})["warehouse"])
        except Error:  # a bad LAKESQL_* variable: connecting will say so
            return None

    # -- the connection -------------------------------------------------------------------------
    def start(self) -> None:
        """Open the connection in a background thread (the prompt does not wait for it)."""
        if self._thread is None:
            self._ready.clear()
            self._thread = threading.Thread(target=self._connect, name="lakesql-connect")
            self._thread.daemon = True
            self._thread.start()

    def _connect(self) -> None:
        try:
            import lakesql

            con = lakesql.connect(self.warehouse, **self._settings())
            cur = con.cursor()
            self.catalog.refresh_live(cur)
            self.con, self.cur = con, cur
        except BaseException as e:
            self._connect_error = e
        finally:
            self._ready.set()

    def _settings(self) -> dict[str, Any]:
        """Session settings of the shell: on a terminal, TRAIN shows its progress bar."""
        from lakesql import config

        if (
            self.on_terminal
            and sys.stderr.isatty()
            and "progress" in config.SETTINGS
            and "LAKESQL_PROGRESS" not in os.environ
        ):
            return {"progress": True}
        return {}

    def connection(self) -> tuple[Connection, Cursor]:
        """The connection and the shell's cursor, waiting for them (Ctrl-C stops waiting).

        One cursor runs every statement, so TEMP tables, variables and `USE` persist.
        """
        self.start()
        while not self._ready.wait(0.05):
            pass
        if self.con is None or self.cur is None:
            error = self._connect_error or RuntimeError("the connection did not open")
            self._thread = None  # the next statement tries again
            raise error
        return self.con, self.cur

    def refresh_catalog(self) -> None:
        """Reload the connection's names for completion, when it is open (called at the prompt)."""
        if self._ready.is_set() and self.cur is not None:
            self.catalog.refresh_live(self.cur)

    def close(self) -> None:
        self._set_output(None)
        if self._thread is not None:
            self._thread.join(10)
        if self.con is not None:
            try:
                self.con.close()
            except Exception:
                pass
            self.con = self.cur = None

    # -- output ---------------------------------------------------------------------------------
    @property
    def out(self) -> TextIO:
        return self._out if self._out is not None else sys.stdout

    def _to_terminal(self) -> bool:
        return self._out is None and sys.stdout.isatty()

    def diag(self, message: str) -> None:
        """A diagnostic line on stderr."""
        sys.stdout.flush()
        click.echo(message, err=True)

    def _error(self, e: BaseException, source: str | None, line: int | None) -> None:
        where = f" at {source}:{line}" if source is not None and line is not None else ""
        self.diag(f"Error{where}: {e}")

    def _set_output(self, path: str | None) -> bool:
        if path is not None:
            try:
                handle = open(os.path.expanduser(path), "w", encoding="utf-8")
            except OSError as e:
                self.diag(f"Error{self._where}: cannot write {path}: {e.strerror}")
                return False
        if self._out is not None:
            self._out.close()
        self._out = handle if path is not None else None
        return True

    # -- input ----------------------------------------------------------------------------------
    def run_lines(self, lines: Iterable[str], *, source: str | None, stop_on_error: bool) -> bool:
        """Run meta commands and SQL statements from `lines`; False when one failed.

        A line starting with `.` outside a statement is a meta command; SQL runs each time the
        text read so far ends at a top-level `;` (and at the end, without one).
        """
        ok = True
        buf: list[str] = []
        code = False  # the buffer holds more than whitespace and comments
        start = 1
        for n, line in enumerate(lines, 1):
            if self.done:
                break
            if not code:
                if is_meta(line) and is_blank("".join(buf)):
                    buf = []
                    if not self.meta(line, source=source, line_no=n):
                        ok = False
                        if stop_on_error:
                            return False
                    continue
                if not buf:
                    if not line.strip():
                        continue
                    start = n
                code = not is_blank("".join(buf) + line)
            buf.append(line)
            if not code or not any(c in line for c in ";'\"$/"):  # none can end a statement
                continue
            text = "".join(buf)
            if not is_complete(text):
                continue
            buf, code = [], False
            if not self.run_sql(text, source=source, line=start):
                ok = False
                if stop_on_error:
                    return False
        text = "".join(buf)
        if text.strip() and not self.done and not self.run_sql(text, source=source, line=start):
            ok = False
        return ok

    def run_sql(self, text: str, *, source: str | None = None, line: int = 1) -> bool:
        """Run the statements of `text` in order; stop at the first error (False)."""
        from lakesql.errors import Error
        from lakesql.script import split_statements

        try:
            statements = split_statements(text)
        except Error as e:
            if e.span is not None and line > 1:
                e.span = e.span.shifted(line - 1)
            self._error(e, source, e.span.line if e.span else line)
            return False
        if not statements:
            return True
        try:
            con, cur = self.connection()
        except KeyboardInterrupt:
            self.diag("Cancelled.")
            return False
        except Exception as e:
            self.diag(f"Error: cannot open the warehouse: {e}")
            return False
        for st in statements:
            shift = line - 1 + st.line - 1
            try:
                ok = self._run_one(con, cur, st.sql)
            except Error as e:
                if e.span is not None and shift:
                    e.span = e.span.shifted(shift)
                at = e.span.line if e.span is not None else line + st.line - 1
                self._error(e, source, at)
                ok = False
            if not ok:
                return False
        return True

    def _run_one(self, con: Connection, cur: Cursor, sql: str) -> bool:
        """Run one statement in a worker thread and show its result; Ctrl-C cancels it."""
        from lakesql.errors import Error

        table_here = self.mode == "table" and self._to_terminal()
        job = _Job(cur, sql, (self.max_rows or None) if table_here else None)
        worker = threading.Thread(target=job.run, name="lakesql-statement", daemon=True)
        began = time.perf_counter()
        worker.start()
        cancelled: float | None = None  # when Ctrl-C was pressed
        told = False
        while True:
            try:
                while not job.done.wait(0.2 if cancelled else 0.05):
                    if cancelled:
                        _interrupt(con, cur)  # again: it may have started after the first one
                        if not told and time.perf_counter() - cancelled > 1.0:
                            told = True
                            self.diag("Cancelling: waiting for the statement to stop…")
                break
            except KeyboardInterrupt:
                if not cancelled:
                    cancelled = time.perf_counter()
                    job.cancel.set()
                    _interrupt(con, cur)
        elapsed = time.perf_counter() - began
        self.catalog.stale = True
        if job.error is not None:
            if cancelled:
                self.diag("Cancelled.")
                return False
            if isinstance(job.error, Error):
                raise job.error
            if isinstance(job.error, Exception):
                raise _as_error(job.error)
            raise job.error
        if job.stopped:
            self.diag("Cancelled: the statement ran, its rows were not all fetched.")
            return False
        if job.columns is None:
            status = cur.message or (f"{cur.rowcount} rows" if cur.rowcount >= 0 else "")
            if status:
                self.diag(status)
        else:
            self._show(job, table_here)
        if cancelled:
            self.diag("The statement finished before it could be cancelled.")
        if self.timer:
            self.diag(f"Run Time: {elapsed:.3f} s")
        return True

    def _show(self, job: _Job, table_here: bool) -> None:
        assert job.columns is not None
        try:
            if table_here:
                head, tail = job.shown()
                width = shutil.get_terminal_size((100, 24)).columns
                text = render_table(job.columns, head, tail, total=job.total, width=width)
            else:
                text = render(job.columns, job.head, self.mode)
            out = self.out
            out.write(text)
            if self.mode == "table":
                out.write("\n")
            out.flush()
        except KeyboardInterrupt:
            self.diag("Cancelled.")

    # -- meta commands --------------------------------------------------------------------------
    def meta(self, line: str, *, source: str | None = None, line_no: int = 1) -> bool:
        """Run one meta command; False when it failed."""
        self._where = f" at {source}:{line_no}" if source is not None else ""
        command, _, arg = line.strip().partition(" ")
        arg = arg.strip().removesuffix(";").strip()
        command = command.removesuffix(";")
        handler = {
            ".tables": self._tables,
            ".models": self._models,
            ".features": self._features,
            ".schema": self._schema,
            ".mode": self._mode,
            ".timer": self._timer,
            ".maxrows": self._maxrows,
            ".read": self._read,
            ".output": self._output,
            ".help": self._help,
            ".quit": self._quit,
            ".exit": self._quit,
        }.get(command)
        if handler is None:
            from lakesql.errors import suggest

            hint = suggest(command, META_COMMANDS)
            self.diag(
                f"Error{self._where}: unknown command {command}"
                + (f"; {hint}" if hint else "; .help lists the commands")
            )
            return False
        return handler(arg)

    def _usage(self, text: str) -> bool:
        self.diag(f"Error{self._where}: usage: {text}")
        return False

    def _tables(self, arg: str) -> bool:
        if arg and not arg.isidentifier():
            return self._usage(".tables [schema]")
        return self.run_sql(f"SHOW TABLES IN {arg}" if arg else "SHOW TABLES")

    def _features(self, arg: str) -> bool:
        if arg:
            return self._usage(".features")
        return self.run_sql("SHOW FEATURE TABLES")

    def _models(self, arg: str) -> bool:
        if arg:
            return self._usage(".models")
        docs = {name: _model_summary(doc) for name, doc in self.catalog.model_docs().items()}
        fields = [f for f in MODEL_FIELDS if any(d.get(f) is not None for d in docs.values())]
        rows = [(name, *(d.get(f) for f in fields)) for name, d in sorted(docs.items())]
        self._print(["name", *fields], rows)
        return True

    def _schema(self, arg: str) -> bool:
        if arg:
            if not all(part.isidentifier() for part in arg.split(".")):
                return self._usage(".schema [table]")
            return self.run_sql(f"DESCRIBE {arg}")
        return self.run_sql(
            "SELECT schema_name AS schema, table_name AS name, "
            "string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index) AS columns "
            "FROM duckdb_columns() WHERE NOT internal AND schema_name NOT IN ('__lakesql', 'lakesql') "
            "AND NOT starts_with(table_name, '__lakesql') "
            "GROUP BY ALL ORDER BY ALL"
        )

    def _mode(self, arg: str) -> bool:
        if not arg:
            self.diag(f"mode: {self.mode}")
            return True
        if arg not in FORMATS:
            return self._usage(".mode " + "|".join(FORMATS))
        self.mode = arg
        return True

    def _timer(self, arg: str) -> bool:
        if arg not in ("on", "off", ""):
            return self._usage(".timer on|off")
        if arg:
            self.timer = arg == "on"
        else:
            self.diag(f"timer: {'on' if self.timer else 'off'}")
        return True

    def _maxrows(self, arg: str) -> bool:
        if not arg:
            self.diag(f"maxrows: {self.max_rows or 'all'}")
            return True
        if not arg.isdigit():
            return self._usage(".maxrows N (0: all rows)")
        self.max_rows = int(arg)
        return True

    def _read(self, arg: str) -> bool:
        if not arg:
            return self._usage(".read FILE")
        path = Path(os.path.expanduser(arg))
        try:
            text = path.read_text()
        except OSError as e:
            self.diag(f"Error{self._where}: cannot read {arg}: {e.strerror}")
            return False
        if self._depth >= MAX_READ_DEPTH:
            self.diag(f"Error{self._where}: .read nested more than {MAX_READ_DEPTH} deep")
            return False
        self._depth += 1
        try:
            return self.run_lines(text.splitlines(keepends=True), source=arg, stop_on_error=True)
        finally:
            self._depth -= 1

    def _output(self, arg: str) -> bool:
        return self._set_output(arg or None)

    def _help(self, arg: str) -> bool:
        width = max(len(c) for c in META_COMMANDS)
        lines = [f"{c.ljust(width)}  {h}" for c, h in META_COMMANDS.items()]
        lines += [
            "",
            "SQL statements end with ';' and may span lines. Tab completes; Ctrl-C cancels a",
            "running statement or clears the line; Ctrl-D leaves.",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return True

    def _quit(self, arg: str) -> bool:
        self.done = True
        return True

    def _print(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        if self.mode == "table" and self._to_terminal():
            width = shutil.get_terminal_size((100, 24)).columns
            text = render_table(columns, rows, width=width)
        else:
            text = render(columns, rows, self.mode)
        self.out.write(text + ("\n" if self.mode == "table" else ""))
        self.out.flush()

    # -- the interactive loop -------------------------------------------------------------------
    def interactive(self) -> int:
        """Prompt, run, repeat, until .quit or Ctrl-D."""
        import lakesql

        self.on_terminal = True
        session = self._prompt_session()

        def connect_after_first_render(app: Any) -> None:
            # the prompt is on the screen: now the heavy imports may take the interpreter
            session.app.after_render -= connect_after_first_render
            self.start()

        session.app.after_render += connect_after_first_render
        self.diag(
            f"lakesql {lakesql.__version__} · warehouse {self.catalog.warehouse_root or '?'}\n"
            "Enter SQL ending with ';', .help for commands, Ctrl-D to leave."
        )
        patch = sys.stdout.isatty()
        try:
            while not self.done:
                try:
                    if patch:
                        from prompt_toolkit.patch_stdout import patch_stdout

                        with patch_stdout(raw=True):
                            text = session.prompt()
                    else:
                        text = session.prompt()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                try:
                    self.run_lines(text.splitlines(keepends=True), source=None, stop_on_error=True)
                except KeyboardInterrupt:
                    self.diag("Cancelled.")
        finally:
            self.close()
        return 0

    def _prompt_session(self) -> Any:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.application.current import get_app
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.filters import Condition
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
        from prompt_toolkit.output import create_output
        from prompt_toolkit.styles import Style

        from lakesql.cli.complete import make_completer
        from lakesql.cli.lexer import make_lexer

        history: History = InMemoryHistory()
        path = history_path()
        if path is not None:
            try:
                with open(path, "a", encoding="utf-8"):
                    pass
                history = FileHistory(path)
            except OSError as e:
                self.diag(f"Warning: history is not saved: cannot write {path}: {e.strerror}")

        def continuation(width: int, line_number: int, is_soft_wrap: int) -> Any:
            return [("class:continuation", CONTINUATION.rjust(width))]

        # With stdout redirected, the prompt goes to stderr and the results to the file.
        output = None if sys.stdout.isatty() else create_output(stdout=sys.stderr)
        return PromptSession(
            message=[("class:prompt", PROMPT)],
            multiline=Condition(lambda: not is_complete(get_app().current_buffer.text)),
            prompt_continuation=continuation,
            lexer=make_lexer(lambda: self.catalog.highlighted),
            completer=make_completer(self.catalog, self.refresh_catalog),
            complete_while_typing=False,
            auto_suggest=AutoSuggestFromHistory(),
            history=history,
            style=Style.from_dict(STYLE),
            include_default_pygments_style=False,
            output=output,
            enable_open_in_editor=True,
        )


def _model_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The scalar fields of a model document, with its latest version and aliases as text."""
    out = {k: v for k, v in doc.items() if not isinstance(v, (dict, list))}
    versions = doc.get("versions")
    if isinstance(versions, list) and versions and all(isinstance(v, int) for v in versions):
        out["latest_version"] = max(versions)
    aliases = doc.get("aliases")
    if isinstance(aliases, dict) and aliases:
        out["aliases"] = ", ".join(f"{a}={v}" for a, v in sorted(aliases.items()))
    return out


def _as_error(e: Exception) -> Exception:
    from lakesql.errors import InternalError

    error = InternalError(f"{type(e).__name__}: {e}")
    error.__cause__ = e
    return error


def main(warehouse: str | None, fmt: str) -> int:
    """`lakesql shell`: interactive on a terminal, else run the piped lines (meta commands too).

    Returns:
        The exit code: 0, or 1 when a piped statement or command failed.
    """
    _quiet_warnings()
    shell = Shell(warehouse, fmt)
    if sys.stdin.isatty():
        return shell.interactive()
    try:
        ok = shell.run_lines(sys.stdin, source="<stdin>", stop_on_error=False)
    finally:
        shell.close()
    return 0 if ok else 1


def _quiet_warnings() -> None:
    """Show Python warnings as one `Warning: ...` line on stderr."""
    import warnings

    def show(
        message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None
    ) -> None:
        print(f"Warning: {message}", file=sys.stderr)

    warnings.showwarning = show
