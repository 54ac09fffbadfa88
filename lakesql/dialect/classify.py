"""What kind of statement a text is, read from its first words: the one classification that the
session and the Postgres-wire server share (before, or instead of, a full parse)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from sqlglot import exp
from sqlglot.tokens import TokenType

from lakesql.dialect.dialect import OWN_LEADING_WORDS, LakeSQL

_COMMENTS = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*", re.S)
_WORD = re.compile(r"[A-Za-z_]+")
# transaction control: first word -> what it does
TRANSACTION_WORDS = {
    "BEGIN": "BEGIN",
    "START": "BEGIN",
    "COMMIT": "COMMIT",
    "END": "COMMIT",
    "ROLLBACK": "ROLLBACK",
    "ABORT": "ROLLBACK",
    "SAVEPOINT": "SAVEPOINT",
    "RELEASE": "RELEASE",
}
_BARE_TRANSACTION = re.compile(
    r"^(BEGIN|START|COMMIT|END|ROLLBACK|ABORT)(?:\s+(?:TRANSACTION|WORK))?\s*;?\s*$", re.I
)
_PRAGMA_SWITCH = re.compile(r"^PRAGMA\s+(enable|disable)_(\w+)\s*;?\s*$", re.I)
# second words that belong to a statement's name (INSERT INTO, CREATE TABLE, TRAIN AUTOML, ...)
_SECOND_KEYWORDS = {
    *("INTO", "FROM", "TABLE", "SCHEMA", "INDEX", "VIEW", "FEATURE", "AUTOML", "MODEL"),
    *("MODELS", "FUNCTION", "OR", "TEMP", "TEMPORARY", "UNIQUE", "HISTORY", "SETTINGS"),
}
_CREATE_TABLE = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\b", re.I)


@dataclass(frozen=True)
class Classified:
    """A statement's text, classified by its first words (comments skipped)."""

    sql: str

    @cached_property
    def body(self) -> str:
        """The text after leading comments and whitespace."""
        return _COMMENTS.sub("", self.sql, count=1)

    @cached_property
    def words(self) -> tuple[str, ...]:
        """The first four words, upper-case."""
        return tuple(w.upper() for w in _WORD.findall(self.body[:200])[:4])

    @property
    def first(self) -> str:
        return self.words[0] if self.words else ""

    @property
    def transaction(self) -> str | None:
        """BEGIN, COMMIT, ROLLBACK, SAVEPOINT or RELEASE for transaction control, else None
        (`START` counts only as START TRANSACTION)."""
        if self.first == "START" and self.words[1:2] != ("TRANSACTION",):
            return None
        return TRANSACTION_WORDS.get(self.first)

    @property
    def bare_transaction(self) -> str | None:
        """BEGIN, COMMIT or ROLLBACK when the whole statement is that word alone (with an
        optional TRANSACTION / WORK), as lakesql's own transactions take it."""
        return self.transaction if _BARE_TRANSACTION.match(self.body) else None

    def pragma_switch(self, name: str) -> bool | None:
        """True / False for `PRAGMA enable_<name>` / `PRAGMA disable_<name>`, else None."""
        m = _PRAGMA_SWITCH.match(self.body)
        if m is None or m.group(2).lower() != name:
            return None
        return m.group(1).lower() == "enable"

    @property
    def creates_table(self) -> bool:
        """CREATE [OR REPLACE] TABLE (not TEMP: that is DuckDB's)."""
        return bool(_CREATE_TABLE.match(self.body))

    @property
    def own(self) -> bool:
        """True when the statement starts with words only lakesql's grammar accepts."""
        return any(self.words[: len(w)] == w for w in OWN_LEADING_WORDS)

    @property
    def name(self) -> str:
        """The statement's leading keywords, e.g. UPDATE, INSERT INTO, TRAIN AUTOML."""
        two = len(self.words) > 1 and self.words[1] in _SECOND_KEYWORDS
        return " ".join(self.words[:2] if two else self.words[:1])

    def calls(self, names: frozenset[str]) -> str | None:
        """The first of `names` (lower-case) the statement calls as a function, table function or
        pragma, or None. Read from tokens: strings and comments do not count, quoted names do."""
        lowered = self.sql.lower()
        if not any(n in lowered for n in names):
            return None
        try:
            tokens = LakeSQL().tokenize(self.sql)
        except Exception:  # an unreadable statement: DuckDB will refuse it too
            return next((n for n in names if n in lowered), None)
        pragma = self.first in ("PRAGMA", "CALL")
        for i, tok in enumerate(tokens):
            after = tokens[i + 1] if i + 1 < len(tokens) else None
            if tok.token_type == TokenType.COMMAND and after is not None:
                # sqlglot keeps the rest of a command (CALL f(...), PRAGMA f) as one string
                words = {w.lower() for w in _WORD.findall(after.text)}
                found = sorted(words & names)
                if found:
                    return found[0]
            if tok.token_type == TokenType.STRING or tok.text.lower() not in names:
                continue
            if pragma or (after is not None and after.token_type == TokenType.L_PAREN):
                return tok.text.lower()
        return None

    @property
    def expands_ml(self) -> bool:
        """True when the text may call ML.* table functions, expanded before parsing (not the
        PREDICT / TRAIN statements, which the parser reads itself)."""
        upper = self.sql.upper()
        return ("ML." in upper or "ML_" in upper or "PREDICT" in upper) and self.first not in (
            "PREDICT",
            "TRAIN",
        )

    @property
    def expands_features(self) -> bool:
        """True when the text may call ML.FEATURES_AT_TIME."""
        return "FEATURES_AT_TIME" in self.sql.upper()


def classify(sql: str) -> Classified:
    """Classify statement text `sql` (one statement) by its first words."""
    return Classified(sql)


def is_own_statement_text(sql: str) -> bool:
    """True when `sql` starts with words only lakesql's grammar accepts."""
    return classify(sql).own


def returns_count(node: exp.Expr | None) -> bool:
    """True for a parsed statement whose DuckDB result is at most a row count, not rows."""
    return isinstance(
        node,
        (
            exp.Insert,
            exp.Update,
            exp.Delete,
            exp.Merge,
            exp.Create,
            exp.Drop,
            exp.Alter,
            exp.Set,
            exp.Use,
            exp.Commit,
            exp.Rollback,
        ),
    ) or (isinstance(node, exp.Copy) and bool(node.args.get("kind")))
