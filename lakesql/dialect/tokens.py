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
