"""Token-level reading of a call's arguments in statement text, for the table functions that
are expanded in the text before parsing (ML.*, ML.FEATURES_AT_TIME)."""

from __future__ import annotations

from sqlglot.tokens import Token, TokenType

from lakesql import errors as E


def matching(tokens: list[Token], open_index: int, sql: str, what: str) -> int:
    """Index of the token closing the parenthesis at `open_index` (`what` names it in errors)."""
    depth = 0
    for j in range(open_index, len(tokens)):
        if tokens[j].token_type == TokenType.L_PAREN:
            depth += 1
        elif tokens[j].token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return j
    raise E.ParseError(f"{what}( is never closed", span=E.SourceSpan(sql, tokens[open_index].start))


def split_args(tokens: list[Token], lo: int, hi: int) -> list[tuple[int, int]]:
    """Token index ranges [a, b) of the top-level comma-separated arguments in (lo, hi)."""
    parts = []
    depth = 0
    start = lo + 1
    for j in range(lo + 1, hi):
        tt = tokens[j].token_type
        if tt in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
        elif tt in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
        elif tt == TokenType.COMMA and depth == 0:
            parts.append((start, j))
            start = j + 1
    parts.append((start, hi))
    return [p for p in parts if p[0] < p[1]]


def text_between(sql: str, tokens: list[Token], a: int, b: int) -> str:
    """The statement text of tokens [a, b), as written."""
    return sql[tokens[a].start : tokens[b - 1].end + 1]


def drop_catalog(sql: str, catalog: str) -> str:
    """`sql` with the catalog part `catalog` removed from three- and four-part names
    (`"wh"."main"."t"`, `wh.main.t.c`), as written otherwise; `sql` itself when none is there.

    A Postgres client names its database in qualified names (dbt does); over the wire that
    database is the warehouse, whose tables DuckDB knows as `schema.table`.
    """
    if catalog.lower() not in sql.lower():
        return sql
    from lakesql.dialect.dialect import LakeSQL

    try:
        tokens = LakeSQL().tokenize(sql)
    except Exception:  # DuckDB reports what it cannot read
        return sql
    names = (TokenType.VAR, TokenType.IDENTIFIER)
    cuts: list[tuple[int, int]] = []
    for i, tok in enumerate(tokens[:-4]):
        quoted = tok.token_type == TokenType.IDENTIFIER
        if tok.token_type not in names or (tok.text if quoted else tok.text.lower()) != (
            catalog if quoted else catalog.lower()
        ):
            continue
        if i and tokens[i - 1].token_type == TokenType.DOT:
            continue  # the middle of a longer name
        if (
            tokens[i + 1].token_type == TokenType.DOT
            and tokens[i + 2].token_type in names
            and tokens[i + 3].token_type == TokenType.DOT
            and tokens[i + 4].token_type in names
        ):
            cuts.append((tok.start, tokens[i + 1].end + 1))
    for start, end in reversed(cuts):
        sql = sql[:start] + sql[end:]
    return sql
