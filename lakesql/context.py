"""What every statement executor shares: the statement being run and what it produced.

A leaf module: the statement table (`lakesql.statements`), the engine and the areas (`ml`,
`features`) all import it; it imports nothing of theirs. The session reaches an executor only
through the statement table.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from lakesql.session import Session


@dataclass
class Result:
    """What a statement produced: rows pending on a DuckDB cursor, or a row count."""

    cursor: Any | None = None  # DuckDB cursor whose pending result holds the rows
    rowcount: int = -1
    message: str = ""  # short status for the command line, e.g. "INSERT 3"


@dataclass
class Context:
    """One statement being executed."""

    session: Session
    cur: Any  # DuckDB cursor
    sql: str
    params: Any
    original: str = ""  # the statement as the user wrote it, when `sql` is an expansion of it

    @property
    def statement(self) -> str:
        """The text recorded in commit infos: what the user wrote."""
        return self.original or self.sql

    @property
    def engine(self) -> Any:
        return self.session.engine

    def rows(self, table: pa.Table) -> Result:
        """A result holding `table`'s rows."""
        name = "__lakesql_result"
        self.cur.register(name, table)
        self.engine.run(self.cur, f"SELECT * FROM {name}")
        return Result(cursor=self.cur, rowcount=table.num_rows)

    def run(self, sql: str, params: Any = None) -> Any:
        return self.engine.run(self.cur, sql, params)

    def lookup(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """The rows of lakesql's own query `sql` on the statement's cursor (not verified)."""
        self.session._internal(self.cur)
        return list(self.run(sql, params).fetchall())

    def sub(self, sql: str, *, params: Any = None, original: str | None = None) -> Context:
        """A statement lakesql runs on this one's behalf, on the same cursor."""
        return Context(
            self.session, self.cur, sql, params, self.statement if original is None else original
        )

    def execute(self, node: exp.Expr) -> Result | None:
        """Run a statement lakesql built (`self.sql` parsed as `node`) through the statement
        table, as the session would: an area runs another area's statement without importing it.
        """
        return self.session.execute_node(self, node)


class Privilege(enum.IntEnum):
    """What a statement needs of its user's role; each level includes the ones below it."""

    READ = 1  # queries, ML.* scoring, SHOW/DESCRIBE, this session's TEMP objects
    WRITE = 2  # + writes to the warehouse: DML, DDL, TRAIN, PREDICT INTO, feature tables, models
    ADMIN = 3  # + server files under the allowed directories, Python functions, cluster settings


# server clients' roles (docs/security.md); the warehouse owner has no role and every privilege
ROLES: dict[str, Privilege] = {
    "reader": Privilege.READ,
    "writer": Privilege.WRITE,
    "admin": Privilege.ADMIN,
}

Executor = Callable[[Context, Any], "Result | None"]
# the privilege a statement needs: fixed, or read from the statement (e.g. its target table)
Needs = Privilege | Callable[[Context, Any], Privilege]
# an executor returning NOT_MINE (None) hands the statement to DuckDB unchanged
NOT_MINE = None


@dataclass(frozen=True)
class Statement:
    """One row of the statement table: the node class an area executes and how.

    Attributes:
        node: the sqlglot node class (ours in `dialect.expressions`, or sqlglot's own).
        run: the executor; it may return NOT_MINE to let DuckDB run the text as written.
        in_transaction: False when the statement commits on its own and so cannot run between
            BEGIN and COMMIT (it is refused there with a hint).
        needs: the privilege a role must hold to run it (see Privilege).
    """

    node: type
    run: Executor
    needs: Needs
    in_transaction: bool = True

    def privilege(self, ctx: Context, node: Any) -> Privilege:
        return self.needs if isinstance(self.needs, Privilege) else self.needs(ctx, node)
