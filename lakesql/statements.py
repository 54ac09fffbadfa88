"""The statement table: every statement lakesql executes itself, by node class.

Each area declares its own rows (`engine.statements`, `features.store`, `ml.statements`); this
module joins them and is the one place the session looks a statement up. A node class without a
row is DuckDB's: the session hands its text to DuckDB as written. Adding a statement touches the
area that owns it and that area's table, nothing else.
"""

from __future__ import annotations

from lakesql import errors as E
from lakesql.context import Context, Result, Statement
from lakesql.dialect import expressions as lx
from lakesql.engine.statements import STATEMENTS as ENGINE
from lakesql.features.store import STATEMENTS as FEATURES
from lakesql.ml.statements import STATEMENTS as ML


def _table(*areas: tuple[Statement, ...]) -> dict[type, Statement]:
    table: dict[type, Statement] = {}
    for area in areas:
        for row in area:
            if row.node in table:
                raise E.InternalError(f"two executors for {row.node.__name__}")
            table[row.node] = row
    return table


TABLE: dict[type, Statement] = _table(ENGINE, FEATURES, ML)


def lookup(node: object) -> Statement | None:
    """The row for `node`'s class or its nearest ancestor in the table; None for DuckDB's."""
    for cls in type(node).__mro__:
        row = TABLE.get(cls)
        if row is not None:
            return row
    if isinstance(node, lx.LakeStatement):
        raise E.InternalError(f"no executor for {type(node).__name__}")
    return None


def execute_node(ctx: Context, node: object) -> Result | None:
    """Run `node` with its executor; None when DuckDB should run the text as written."""
    row = lookup(node)
    return None if row is None else row.run(ctx, node)


def refuse_in_transaction(node: object) -> None:
    """Raise when `node` commits on its own and so cannot run between BEGIN and COMMIT."""
    row = lookup(node)
    if row is not None and not row.in_transaction:
        raise E.NotSupportedError(
            f"{type(node).__name__} cannot run inside a transaction",
            hint="COMMIT or ROLLBACK first",
        )
