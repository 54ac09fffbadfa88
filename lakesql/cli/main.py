"""`lakesql` command: run scripts, one-off statements, the shell, version and info."""

from __future__ import annotations

import enum
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from lakesql.cli.render import FORMATS, render

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Exit(enum.IntEnum):
    """Exit codes of the `lakesql` command."""

    OK = 0
    SQL_ERROR = 1  # a statement failed (the ones before it are committed)
    USAGE = 2  # bad command line (click's own code)
    IO_ERROR = 3  # a script file could not be read


def _parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise click.BadParameter(f"{pair!r}: write it as name=value", param_hint="--var")
        out[name] = value
    return out


def _substitute(text: str, variables: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in variables:
            raise click.UsageError(
                f"variable ${{{name}}} is used but not given: pass --var {name}=value"
            )
        return variables[name]

    return _VAR.sub(repl, text)


def _literal(value: str) -> str:
    if re.fullmatch(r"-?\d+", value) or re.fullmatch(r"-?\d+\.\d*", value):
        return value
    return "'" + value.replace("'", "''") + "'"


def run_script(
    script: str,
    *,
    warehouse: str | None,
    fmt: str,
    variables: dict[str, str],
    source: str,
    settings: dict[str, Any] | None = None,
) -> int:
    """Run a script, printing each result; return the exit code."""
    import lakesql

    try:
        text = _substitute(script, variables)
    except click.UsageError as e:
        click.echo(f"lakesql: {e.message}", err=True)
        return Exit.USAGE
    try:
        settings = dict(settings or {})
        if sys.stderr.isatty() and "LAKESQL_PROGRESS" not in os.environ:
            settings.setdefault("progress", True)  # TRAIN draws its progress bar on a terminal
        con = lakesql.connect(warehouse, **settings)
    except lakesql.Error as e:
        click.echo(f"lakesql: {e}", err=True)
        return Exit.SQL_ERROR
    session = con._live()
    cur = con.cursor()
    try:
        for name, value in variables.items():
            session.execute(f"SET VARIABLE {name} = {_literal(value)}", cur=cur._duck)
        from lakesql.script import split_statements

        try:
            statements = split_statements(text)
        except lakesql.Error as e:
            click.echo(f"lakesql: {source}: {e}", err=True)
            return Exit.SQL_ERROR
        for st in statements:
            try:
                cur.execute(st.sql)
                if cur.description is not None:
                    columns = [d[0] for d in cur.description]
                    rows = cur.fetchall()
                    sys.stdout.write(render(columns, rows, fmt))
                    if fmt == "table":
                        sys.stdout.write("\n")
                    sys.stdout.flush()
            except lakesql.Error as e:
                span = e.span.shifted(st.line - 1) if e.span else None
                where = f"{source}:{span.line if span else st.line}"
                e.span = span
                click.echo(f"lakesql: error at {where}: {e}", err=True)
                return Exit.SQL_ERROR
            except KeyboardInterrupt:
                click.echo(f"lakesql: interrupted at {source}:{st.line}", err=True)
                return Exit.SQL_ERROR
    finally:
        con.close()
    return Exit.OK


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--command", "command", help="Run this SQL and exit.")
@click.option(
    "--warehouse", "-w", envvar="LAKESQL_WAREHOUSE", help="Warehouse folder (default ./lakehouse)."
)
@click.option(
    "--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True
)
@click.pass_context
def cli(ctx: click.Context, command: str | None, warehouse: str | None, fmt: str) -> None:
    """lakesql: SQL over Delta Lake tables, with machine learning built in.

    Without a command: the interactive shell on a terminal; piped input runs as a script.
    """
    ctx.ensure_object(dict)
    ctx.obj.update(warehouse=warehouse, fmt=fmt)
    if ctx.invoked_subcommand is not None:
        return
    if command is not None:
        ctx.exit(run_script(command, warehouse=warehouse, fmt=fmt, variables={}, source="-c"))
    if not sys.stdin.isatty():
        ctx.exit(
            run_script(
                sys.stdin.read(), warehouse=warehouse, fmt=fmt, variables={}, source="<stdin>"
            )
        )
    ctx.invoke(shell)


@cli.command()
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default=None)
@click.pass_context
def shell(ctx: click.Context, fmt: str | None = None) -> None:
    """Interactive SQL shell (the default on a terminal). Piped input: lines and meta commands."""
    from lakesql.cli.shell import main as shell_main

    ctx.exit(shell_main(warehouse=ctx.obj["warehouse"], fmt=fmt or ctx.obj["fmt"]))


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--var",
    "-v",
    "var",
    multiple=True,
    metavar="NAME=VALUE",
    help="Script variable: ${NAME} and getvariable('NAME').",
)
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default=None)
@click.pass_context
def run(ctx: click.Context, file: Path, var: tuple[str, ...], fmt: str | None) -> None:
    """Run the statements of FILE in order; stop at the first error."""
    try:
        script = file.read_text()
    except OSError as e:
        click.echo(f"lakesql: cannot read {file}: {e.strerror}", err=True)
        ctx.exit(Exit.IO_ERROR)
    code = run_script(
        script,
        warehouse=ctx.obj["warehouse"],
        fmt=fmt or ctx.obj["fmt"],
        variables=_parse_vars(var),
        source=str(file),
    )
    ctx.exit(code)


@cli.command()
def version() -> None:
    """Print the lakesql version."""
    import lakesql

    click.echo(f"lakesql {lakesql.__version__}")


@cli.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Print the warehouse, library versions and settings."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as pkg_version

    import lakesql

    with lakesql.connect(ctx.obj["warehouse"]) as con:
        session = con._live()
        click.echo(f"lakesql {lakesql.__version__}")
        click.echo(f"warehouse: {session.warehouse.root}")
        reader = (
            "delta extension"
            if session.engine.extension_loaded
            else f"read_parquet ({session.engine.extension_error})"
        )
        click.echo(f"delta reads: {reader}")
        for pkg in (
            "duckdb",
            "duckdb-extension-delta",
            "deltalake",
            "pyarrow",
            "sqlglot",
            "xgboost-cpu",
            "lightgbm",
            "scikit-learn",
            "flaml",
        ):
            try:
                click.echo(f"{pkg}: {pkg_version(pkg)}")
            except PackageNotFoundError:
                click.echo(f"{pkg}: not installed")
        for key, value in sorted(session.settings.items()):
            click.echo(f"lakesql.{key} = {value}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", "-p", default=5433, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="File whose first line is the password clients must give (SCRAM-SHA-256); "
    "or set LAKESQL_PASSWORD. Required off loopback.",
)
@click.option(
    "--password",
    default=None,
    help="The password itself: visible to every user of the machine in `ps`; "
    "prefer --password-file or LAKESQL_PASSWORD.",
)
@click.option(
    "--users",
    "users_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Users file (`lakesql users add`): each user's password verifier and role "
    "(reader, writer, admin). Without it every client is a writer.",
)
@click.option(
    "--allow-directory",
    "allowed",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A server folder admin users may read and COPY ... TO (repeatable).",
)
@click.option(
    "--auth-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds a connection may take to authenticate.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Authenticated sessions at most (more: SQLSTATE 53300).",
)
@click.option(
    "--max-message-size",
    type=click.IntRange(min=10_000),
    default=64 << 20,
    show_default=True,
    help="Bytes of one query, Bind or COPY message after authentication.",
)
@click.option(
    "--statement-timeout",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds a statement may run (0: no limit); SET statement_timeout per session.",
)
@click.option(
    "--idle-in-transaction-timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds a session may stay idle inside BEGIN ... before it is closed (0: never).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    password_file: str | None,
    password: str | None,
    users_file: str | None,
    allowed: tuple[str, ...],
    auth_timeout: float,
    max_connections: int,
    max_message_size: int,
    statement_timeout: float,
    idle_in_transaction_timeout: float,
) -> None:
    """Serve the warehouse over the Postgres wire protocol (psql, BI tools, drivers)."""
    import lakesql
    from lakesql.server import Server

    if password_file:
        try:
            with open(password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            click.echo(f"lakesql: cannot read the password file: {e}", err=True)
            ctx.exit(Exit.USAGE)
        if not password:
            click.echo("lakesql: the password file's first line is empty", err=True)
            ctx.exit(Exit.USAGE)
    elif password:
        click.echo(
            "lakesql: warning: --password is visible in `ps`; "
            "use --password-file or LAKESQL_PASSWORD",
            err=True,
        )
    elif users_file is None:
        password = os.environ.get("LAKESQL_PASSWORD") or os.environ.get("LAKESQL_SERVER_PASSWORD")
    try:
        server = Server(
            ctx.obj["warehouse"],
            host,
            port,
            password=password or None,
            users=users_file,
            allowed_directories=allowed,
            authentication_timeout=auth_timeout,
            max_connections=max_connections,
            max_message_size=max_message_size,
            statement_timeout=statement_timeout,
            idle_in_transaction_timeout=idle_in_transaction_timeout,
        )
    except lakesql.Error as e:
        click.echo(f"lakesql: {e}", err=True)
        ctx.exit(Exit.USAGE)
    except OSError as e:
        click.echo(f"lakesql: cannot listen on {host}:{port}: {e.strerror}", err=True)
        ctx.exit(Exit.IO_ERROR)
    auth = (
        f"users and roles of {users_file}"
        if users_file
        else "SCRAM-SHA-256 password, every client a writer"
        if password
        else "no password (loopback only), every client a writer"
    )
    click.echo(
        f"lakesql {lakesql.__version__} serving {ctx.obj['warehouse'] or 'the default warehouse'} "
        f"on {host}:{server.port} ({auth}); Ctrl-C stops",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.group()
def users() -> None:
    """Manage the users of `lakesql serve` (a file of roles and SCRAM verifiers)."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["reader", "writer", "admin"]),
    required=True,
    help="What the user may do (docs/security.md).",
)
@click.option(
    "--users",
    "users_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The users file (created when missing, readable by you only).",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the password from this file's first line instead of asking.",
)
@click.pass_context
def users_add(
    ctx: click.Context, name: str, role: str, users_file: Path, password_file: Path | None
) -> None:
    """Add user NAME (or give it a new role and password); only its verifier is stored."""
    import lakesql
    from lakesql.server import users as server_users

    if password_file is not None:
        password = password_file.read_text().splitlines()[0] if password_file.read_text() else ""
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        server_users.add(users_file, name, role, password)
    except lakesql.Error as e:
        click.echo(f"lakesql: {e}", err=True)
        ctx.exit(Exit.USAGE)
    click.echo(f"user {name!r} ({role}) written to {users_file}", err=True)


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    cli(obj={})
