"""Completion for the shell: lakesql's own SQL, DuckDB's keywords and functions, and the catalog.

:data:`LAKESQL_SYNTAX` is the one table of the SQL lakesql adds to DuckDB's: statements, clauses and
``ML.*`` functions. Completion and highlighting both read it; a new statement needs one row here.

The catalog names come from two places:

* the warehouse folder (schemas, tables, feature tables, models): read directly, so they are
  there from the first keystroke, before the connection is open;
* the live connection (columns, functions, DuckDB's keywords, temporary tables and views):
  loaded once it is open, and again after any statement that may have changed them.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lakesql.cli.lexer import COMMENT, PUNCT, QUOTED, SPACE, WORD, Token, tokenize


@dataclass(frozen=True)
class Syntax:
    """One entry of lakesql's SQL: its words, where it may appear, what name follows it."""

    words: str
    kind: str  # "statement" (starts a statement), "clause" (anywhere), "function" (an expression)
    then: str | None = None  # name completed after it: table, feature, model, schema, function
    help: str = ""


LAKESQL_SYNTAX: tuple[Syntax, ...] = (
    # Delta tables
    Syntax("DESCRIBE HISTORY", "statement", "table", "the table's commits, newest first"),
    Syntax("RESTORE TABLE", "statement", "table", "roll a table back to a version"),
    Syntax("OPTIMIZE", "statement", "table", "compact a table's files"),
    Syntax("VACUUM", "statement", "table", "delete files no version needs"),
    Syntax("SHOW TABLES", "statement", None, "the warehouse tables"),
    Syntax("SHOW TABLES IN", "statement", "schema", "the tables of a schema"),
    Syntax("SHOW SCHEMAS", "statement", None, "the warehouse schemas"),
    Syntax("INSERT OVERWRITE", "statement", "table", "replace a table's rows"),
    Syntax("VERSION AS OF", "clause", None, "time travel to a version"),
    Syntax("TIMESTAMP AS OF", "clause", None, "time travel to a time"),
    Syntax("TO VERSION AS OF", "clause", None, "RESTORE TABLE target"),
    Syntax("TO TIMESTAMP AS OF", "clause", None, "RESTORE TABLE target"),
    Syntax("ZORDER BY", "clause", None, "OPTIMIZE ordering"),
    Syntax("RETAIN", "clause", None, "VACUUM retention in hours"),
    Syntax("DRY RUN", "clause", None, "VACUUM: list, do not delete"),
    Syntax("PARTITIONED BY", "clause", None, "partition columns"),
    # Feature store
    Syntax("CREATE FEATURE TABLE", "statement", None, "features computed by one query"),
    Syntax("CREATE OR REPLACE FEATURE TABLE", "statement", None, "features computed by one query"),
    Syntax("REFRESH FEATURE TABLE", "statement", "feature", "recompute and upsert"),
    Syntax("DESCRIBE FEATURE TABLE", "statement", "feature", "columns, statistics, versions"),
    Syntax("DROP FEATURE TABLE", "statement", "feature", "drop a feature table"),
    Syntax("SHOW FEATURE TABLES", "statement", None, "the feature tables"),
    Syntax("PRIMARY KEY", "clause", None, "entity key of a feature table"),
    Syntax("TIMESTAMP KEY", "clause", None, "event time of a feature table"),
    Syntax("TTL INTERVAL", "clause", None, "how long a feature value stays valid"),
    Syntax("ML.FEATURES_AT_TIME", "function", None, "point-in-time feature join"),
    Syntax("FEATURES", "clause", "feature", "feature tables of ML.FEATURES_AT_TIME"),
    Syntax("time_column =>", "clause", None, "ML.FEATURES_AT_TIME spine time column"),
    Syntax("ttl =>", "clause", None, "ML.FEATURES_AT_TIME TTL override"),
    # Functions
    Syntax("CREATE FUNCTION", "statement", None, "a Python UDF"),
    Syntax("CREATE OR REPLACE FUNCTION", "statement", None, "a Python UDF"),
    Syntax("LANGUAGE PYTHON", "clause", None, "CREATE FUNCTION body"),
    Syntax("DROP FUNCTION", "statement", "function", "drop a Python UDF"),
    Syntax("SHOW FUNCTIONS", "statement", None, "the Python UDFs"),
    # Session
    Syntax("SHOW SETTINGS", "statement", None, "lakesql settings"),
    Syntax("SET lakesql.", "statement", None, "change a lakesql setting"),
    Syntax("RESET lakesql.", "statement", None, "reset a lakesql setting"),
    # Machine learning: training and the model registry
    Syntax("TRAIN AUTOML", "statement", None, "train a model on a table or query"),
    Syntax("TRAIN OR REPLACE AUTOML", "statement", None, "train, changing what the model predicts"),
    Syntax("PREDICT", "clause", None, "TRAIN AUTOML: the label column"),
    Syntax("WITH FEATURES", "clause", None, "TRAIN AUTOML: the feature columns"),
    Syntax("OPTIONS", "clause", None, "TRAIN AUTOML options (time_budget = ..., ...)"),
    Syntax("RETRAIN MODEL", "statement", "model", "train a model again"),
    Syntax("REPRODUCE VERSION", "clause", None, "RETRAIN MODEL: repeat a version"),
    Syntax("SHOW MODELS", "statement", None, "the registered models"),
    Syntax("SHOW VERSIONS IN MODEL", "statement", "model", "a model's versions"),
    Syntax("SHOW TRIALS IN MODEL", "statement", "model", "a model's AutoML trials"),
    Syntax("DESCRIBE MODEL", "statement", "model", "a model version"),
    Syntax("ALTER MODEL", "statement", "model", "set or unset an alias"),
    Syntax("SET ALIAS", "clause", None, "ALTER MODEL: point an alias at a version"),
    Syntax("UNSET ALIAS", "clause", None, "ALTER MODEL: remove an alias"),
    Syntax("DROP MODEL", "statement", "model", "drop a model or one version"),
    Syntax("DROP MODEL IF EXISTS", "statement", "model", "drop a model or one version"),
    Syntax("VACUUM MODEL", "statement", "model", "remove what killed TRAINs left behind"),
    Syntax("VACUUM MODELS", "statement", None, "VACUUM MODEL for the whole registry"),
    Syntax("MODEL", "clause", "model", "a registered model"),
    # Machine learning: models inside SQL
    Syntax("PREDICT", "statement", "model", "PREDICT m FROM t [INTO t2 [MODE ...]]"),
    Syntax("MODE APPEND", "clause", None, "PREDICT ... INTO: append the rows"),
    Syntax("MODE OVERWRITE", "clause", None, "PREDICT ... INTO: replace the rows"),
    Syntax("MODE MERGE ON", "clause", None, "PREDICT ... INTO: upsert by key"),
    Syntax("PREDICT", "function", "model", "PREDICT(m, col, ...): one prediction per row"),
    Syntax("PREDICT_PROBA", "function", "model", "PREDICT_PROBA(m, col, ...): class probability"),
    Syntax("ML.PREDICT", "function", None, "ML.PREDICT(MODEL m, TABLE t | (query))"),
    Syntax("ML.EVALUATE", "function", None, "ML.EVALUATE(MODEL m, TABLE t | (query))"),
    Syntax("ML.CONFUSION_MATRIX", "function", None, "ML.CONFUSION_MATRIX(MODEL m, ...)"),
    Syntax("ML.ROC_CURVE", "function", None, "ML.ROC_CURVE(MODEL m, ...)"),
    Syntax("ML.FEATURE_IMPORTANCE", "function", None, "ML.FEATURE_IMPORTANCE(MODEL m)"),
    Syntax("ML.TRIAL_INFO", "function", None, "ML.TRIAL_INFO(MODEL m)"),
    Syntax("ML.EXPLAIN_PREDICT", "function", None, "ML.EXPLAIN_PREDICT(MODEL m, TABLE t)"),
    Syntax("ML.FORECAST", "function", None, "ML.FORECAST(MODEL m [, horizon => n])"),
)

# Statements and words every SQL user expects; DuckDB's own keyword list joins them once the
# connection is open (SELECT keyword_name FROM duckdb_keywords()).
SQL_STATEMENTS = (
    "SELECT",
    "WITH",
    "FROM",
    "INSERT INTO",
    "UPDATE",
    "DELETE FROM",
    "MERGE INTO",
    "CREATE TABLE",
    "CREATE OR REPLACE TABLE",
    "CREATE SCHEMA",
    "CREATE VIEW",
    "CREATE TEMP TABLE",
    "DROP TABLE",
    "DROP SCHEMA",
    "DROP VIEW",
    "ALTER TABLE",
    "COPY",
    "DESCRIBE",
    "SUMMARIZE",
    "EXPLAIN",
    "PIVOT",
    "UNPIVOT",
    "SET",
    "RESET",
    "SHOW",
    "USE",
)
SQL_KEYWORDS = frozenset(
    """
    ALL AND ANY AS ASC ASOF BETWEEN BY CASE CAST CROSS DESC DISTINCT ELSE END EXCEPT EXISTS FALSE
    FILTER FIRST FOLLOWING FULL GROUP HAVING ILIKE IN INNER INTERSECT INTERVAL INTO IS JOIN LAST
    LATERAL LEFT LIKE LIMIT NATURAL NOT NULL NULLS OFFSET ON OR ORDER OUTER OVER PARTITION
    PRECEDING QUALIFY RANGE RECURSIVE RETURNING RIGHT ROWS SAMPLE SEMI ANTI THEN TRUE UNBOUNDED
    UNION USING VALUES WHEN WHERE WINDOW BY NAME REPLACE EXCLUDE COLUMNS TABLE TEMP TEMPORARY
    IF VIEW SCHEMA DEFAULT PRIMARY KEY UNIQUE CHECK REFERENCES COMMENT MATCHED THEN
    """.split()
    + [w for s in SQL_STATEMENTS for w in s.split()]
    + [w for s in LAKESQL_SYNTAX for w in s.words.split() if re.fullmatch(r"[A-Z]+", w)]
)

# Words highlighted as keywords: DuckDB's reserved words (the rest join once the connection is
# open), statement words and lakesql's own. Not DuckDB's unreserved keywords: `name`, `value` or
# `year` are as often column names.
HIGHLIGHT_KEYWORDS = frozenset(
    """
    ALL AND ANY AS ASC BETWEEN CASE CAST CHECK CREATE DEFAULT DESC DESCRIBE DISTINCT ELSE END
    EXCEPT FALSE FROM GROUP HAVING IN INTERSECT INTO LATERAL LIMIT NOT NULL OFFSET ON OR ORDER
    PIVOT PRIMARY QUALIFY REFERENCES RETURNING SELECT SHOW SUMMARIZE TABLE THEN TO TRUE UNION
    UNIQUE UNPIVOT USING WHEN WHERE WINDOW WITH BY JOIN LEFT RIGHT INNER OUTER FULL CROSS ASOF
    IS LIKE ILIKE EXISTS OVER PARTITION INTERVAL
    """.split()
    + [w for s in SQL_STATEMENTS for w in s.split()]
    + [w for s in LAKESQL_SYNTAX for w in s.words.split() if re.fullmatch(r"[A-Z]+", w)]
)

# Words after which a table (or a schema, feature table, table function) is expected.
_TABLE_CONTEXT = frozenset(
    {"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "DESCRIBE", "SUMMARIZE", "USING", "OVERWRITE"}
)
_SCHEMA_CONTEXT = frozenset({"SCHEMA", "IN", "USE"})
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def quote_ident(name: str) -> str:
    """`name` as it must be typed: bare when it is a lower-case identifier, else double-quoted."""
    return name if _IDENT.match(name) else '"' + name.replace('"', '""') + '"'


@dataclass
class Catalog:
    """Names known to the shell, refreshed from the warehouse folder and the connection."""

    warehouse_root: str | None = None
    schemas: list[str] = field(default_factory=list)
    tables: dict[str, list[str]] = field(default_factory=dict)  # schema -> tables
    features: list[tuple[str, str]] = field(default_factory=list)  # (schema, name)
    models: list[str] = field(default_factory=list)
    columns: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (schema, table)
    functions: set[str] = field(default_factory=set)
    table_functions: set[str] = field(default_factory=set)
    keywords: set[str] = field(default_factory=lambda: set(SQL_KEYWORDS))
    highlighted: set[str] = field(default_factory=lambda: set(HIGHLIGHT_KEYWORDS))
    live: bool = False  # columns, functions and keywords came from the connection
    stale: bool = True  # live names may have changed (a statement ran)
    _folder_at: float = 0.0
    _model_docs: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- the warehouse folder (no connection needed) -------------------------------------------
    def refresh_folder(self, max_age: float = 1.0) -> None:
        """Re-read schemas, tables, feature tables and models from the folder (cached max_age s)."""
        if self.warehouse_root is None or time.monotonic() - self._folder_at < max_age:
            return
        from lakesql.dbapi import warehouse_names

        try:
            names = warehouse_names(self.warehouse_root)
        except Exception:  # a folder being written by another process: keep what we had
            return
        self.schemas, self.tables, self.features = names.schemas, names.tables, names.feature_tables
        self.models, self._model_docs = sorted(names.models), names.models
        self._folder_at = time.monotonic()

    def model_docs(self) -> dict[str, dict[str, Any]]:
        """The model catalog documents, by name (empty before any model is registered)."""
        self.refresh_folder(max_age=0)
        return self._model_docs

    # -- the connection ------------------------------------------------------------------------
    def refresh_live(self, cursor: Any) -> None:
        """Load columns, functions and keywords through a lakesql cursor (the shell's own)."""
        try:
            cursor.execute(
                "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                "WHERE NOT internal AND schema_name <> '__lakesql' "
                "AND NOT starts_with(table_name, '__lakesql') ORDER BY column_index"
            )
            columns: dict[tuple[str, str], list[str]] = {}
            for schema, table, column in cursor.fetchall():
                columns.setdefault((schema, table), []).append(column)
            cursor.execute(
                "SELECT DISTINCT function_name, function_type FROM duckdb_functions() "
                "WHERE NOT starts_with(function_name, '__')"
            )
            functions: set[str] = set()
            table_functions: set[str] = set()
            for name, kind in cursor.fetchall():
                if re.fullmatch(r"[A-Za-z_]\w*", name):
                    (table_functions if kind == "table" else functions).add(name)
            if not self.live:
                cursor.execute("SELECT keyword_name, keyword_category FROM duckdb_keywords()")
                for word, category in cursor.fetchall():
                    self.keywords.add(str(word).upper())
                    if category == "reserved":
                        self.highlighted.add(str(word).upper())
        except Exception:  # completion must never break the shell
            return
        self.columns = columns
        self.functions = functions
        self.table_functions = table_functions
        self.live = True
        self.stale = False

    # -- queries -------------------------------------------------------------------------------
    def table_names(self, schema: str | None = None) -> list[str]:
        """Tables as they are typed: bare in `main`, qualified elsewhere (or in `schema`)."""
        if schema is not None:
            return list(self.tables.get(schema, []))
        out = []
        for s, names in self.tables.items():
            out += [n if s == "main" else f"{s}.{n}" for n in names]
        return out

    def feature_names(self) -> list[str]:
        return [n if s == "main" else f"{s}.{n}" for s, n in self.features]

    def session_objects(self) -> list[str]:
        """Views and temporary tables of the connection (in `main`, not warehouse tables)."""
        tables = set(self.tables.get("main", []))
        return [t for (s, t) in self.columns if s == "main" and t not in tables]

    def columns_of(self, name: str) -> list[str]:
        """Columns of table `name` (`t`, `schema.t`; temporary tables and views too)."""
        parts = [p.strip('"') for p in name.split(".")]
        if len(parts) == 1:
            parts = ["main", *parts]
        schema, table = parts[-2].lower(), parts[-1].lower()
        for (s, t), cols in self.columns.items():
            if s.lower() == schema and t.lower() == table:
                return cols
        return []


@dataclass(frozen=True)
class Candidate:
    """One completion: the text inserted, what it is, how to show it."""

    text: str
    meta: str
    rank: int  # lower first


META_COMMANDS: dict[str, str] = {
    ".tables": "list the tables",
    ".models": "list the models",
    ".features": "list the feature tables",
    ".schema": "columns of a table (.schema t), or of every table",
    ".mode": "output format: table, csv, json, markdown, line",
    ".timer": "show each statement's run time: on or off",
    ".maxrows": "rows shown in table mode (0: all)",
    ".read": "run the statements and meta commands of a file",
    ".output": "write results to a file; .output alone goes back to stdout",
    ".help": "this list",
    ".quit": "leave the shell (also .exit, Ctrl-D)",
}


def _case(word: str, typed: str) -> str:
    """A keyword in the case the user types in: lower when the typed prefix is lower-case."""
    return word.lower() if typed and typed.islower() else word


def _statement_tokens(text: str) -> list[Token] | None:
    """The significant tokens of the statement the cursor ends (None inside a string or comment)."""
    tokens = list(tokenize(text))
    if tokens:
        last = tokens[-1]
        if not last.closed or (last.kind == COMMENT and last.text.startswith("--")):
            return None
    start = 0
    for k, tok in enumerate(tokens):
        if tok.kind == PUNCT and tok.text == ";":
            start = k + 1
    return [t for t in tokens[start:] if t.kind not in (SPACE, COMMENT)]


_FROM_WORDS = frozenset({"FROM", "JOIN", "UPDATE", "INTO", "TABLE", "USING"})
_END_FROM = frozenset(
    {
        "WHERE",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "ON",
        "SELECT",
        "SET",
        "VALUES",
        "QUALIFY",
        "WINDOW",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "RETURNING",
        "WHEN",
        "BY",
    }
)


def _aliases(tokens: list[Token]) -> dict[str, str]:
    """name -> table for the tables of the statement: `FROM s.t [AS] a, u JOIN v ...`.

    Each table is known by its alias and by its own last name part.
    """
    out: dict[str, str] = {}
    in_from = False
    k = 0
    while k < len(tokens):
        tok = tokens[k]
        up = tok.text.upper()
        k += 1
        if tok.kind == WORD and up in _FROM_WORDS:
            in_from = True
        elif tok.kind == PUNCT and tok.text == "," and in_from:
            pass
        else:
            if (tok.kind == WORD and up in _END_FROM) or tok.text in "()":
                in_from = False
            continue
        if k >= len(tokens) or tokens[k].kind not in (WORD, QUOTED):
            continue
        parts = [tokens[k].text.strip('"')]
        k += 1
        while (
            k + 1 < len(tokens) and tokens[k].text == "." and tokens[k + 1].kind in (WORD, QUOTED)
        ):
            parts.append(tokens[k + 1].text.strip('"'))
            k += 2
        name = ".".join(parts)
        out.setdefault(parts[-1].lower(), name)
        if k < len(tokens) and tokens[k].kind == WORD and tokens[k].text.upper() == "AS":
            k += 1
        if (
            k < len(tokens)
            and tokens[k].kind == WORD
            and tokens[k].text.upper() not in SQL_KEYWORDS
        ):
            out[tokens[k].text.lower()] = name
            k += 1
    return out


def complete_text(text: str, catalog: Catalog) -> tuple[int, list[Candidate]]:
    """Completions for the input `text` (everything before the cursor).

    Returns:
        (how many characters before the cursor the completions replace, candidates best first).
    """
    if text.lstrip().startswith("."):
        return _complete_meta(text.lstrip(), catalog)
    tokens = _statement_tokens(text)
    if tokens is None:
        return 0, []
    m = re.search(r"[\w.]*$", text)
    word = m.group(0) if m else ""
    before = [t for t in tokens if t.end <= len(text) - len(word)]
    words_before = [t.text.upper() for t in before]
    catalog.refresh_folder()

    if "." in word:
        qualifier, _, stem = word.rpartition(".")
        return len(stem), _qualified(qualifier, stem, tokens, catalog)

    stem = word
    wants = next((s.then for s in LAKESQL_SYNTAX if s.then and _after(s, words_before)), None)
    prev = words_before[-1] if words_before else ""
    if wants is None and prev in _TABLE_CONTEXT:
        wants = "table"
    if wants is None and prev in _SCHEMA_CONTEXT:
        wants = "schema"
    out = _syntax(words_before, stem, clauses=wants is None)

    if wants == "feature":
        out += [Candidate(n, "feature table", 1) for n in catalog.feature_names()]
        out += [Candidate(s + ".", "schema", 3) for s in catalog.schemas if s != "main"]
    elif wants == "model":
        out += [Candidate(n, "model", 1) for n in catalog.models]
    elif wants == "schema":
        out += [Candidate(s, "schema", 1) for s in catalog.schemas]
    elif wants == "function":
        out += [Candidate(f, "function", 1) for f in sorted(catalog.functions)]
    elif wants == "table":
        features = set(catalog.feature_names())
        for n in catalog.table_names():
            out.append(Candidate(n, "feature table" if n in features else "table", 1))
        out += [Candidate(s + ".", "schema", 2) for s in catalog.schemas if s != "main"]
        out += [Candidate(quote_ident(n), "view", 2) for n in catalog.session_objects()]
        out += [Candidate(f, "table function", 4) for f in sorted(catalog.table_functions)]
    elif not before:
        out += [Candidate(_case(s, stem), "statement", 2) for s in SQL_STATEMENTS]
    else:
        seen: set[str] = set()
        for table in dict.fromkeys(_aliases(tokens).values()):
            for col in catalog.columns_of(table):
                if col not in seen:
                    seen.add(col)
                    out.append(Candidate(quote_ident(col), f"column of {table}", 1))
        out += [Candidate(f, "function", 3) for f in sorted(catalog.functions)]
        out += [Candidate(_case(k, stem), "keyword", 4) for k in sorted(catalog.keywords)]
        out += [Candidate(n, "table", 5) for n in catalog.table_names()]
        out += [Candidate(n, "model", 5) for n in catalog.models]
        if not seen:
            every = sorted({c for cols in catalog.columns.values() for c in cols})
            out += [Candidate(quote_ident(c), "column", 6) for c in every]
    return len(stem), _filter(out, stem)


@functools.cache
def _pattern(s: Syntax) -> tuple[str, ...]:
    """The token texts that end where a name is due: the words, and `(` after a function."""
    words = [t.text.upper() for t in tokenize(s.words) if t.kind not in (SPACE, COMMENT)]
    return (*words, "(") if s.kind == "function" else tuple(words)


def _after(s: Syntax, words_before: list[str]) -> bool:
    """True when the typed words end with `s` (a statement: consist of it)."""
    pattern = _pattern(s)
    if s.kind == "statement":
        return tuple(words_before) == pattern
    return tuple(words_before[-len(pattern) :]) == pattern


def _syntax(words_before: list[str], stem: str, *, clauses: bool = True) -> list[Candidate]:
    """Entries of LAKESQL_SYNTAX that the typed words start or continue.

    A clause is offered from its first letters only when `clauses` (not where a name is due).
    """
    out = []
    up = stem.upper()
    for s in LAKESQL_SYNTAX:
        parts = s.words.split()
        if s.kind == "function":
            if up and s.words.upper().startswith(up):
                out.append(Candidate(s.words, "lakesql function", 1))
            continue
        for k in range(len(parts)):
            done = [p.upper() for p in parts[:k]]
            if s.kind == "statement":
                if words_before != done:
                    continue
            elif k == 0:
                if not (up and clauses):  # a clause is offered once its first letters are typed
                    continue
            elif words_before[-k:] != done:
                continue
            if not parts[k].upper().startswith(up):
                continue
            rest = " ".join(parts[k:])
            text = _case(rest, stem) if rest.isupper() else rest
            rank = 0 if k else (2 if s.kind == "statement" else 4)
            out.append(Candidate(text, "lakesql", rank))
            break
    return out


def _qualified(qualifier: str, stem: str, tokens: list[Token], catalog: Catalog) -> list[Candidate]:
    """Completions after `x.`: ML functions, tables of a schema, columns of a table or alias."""
    out: list[Candidate] = []
    q = qualifier.lower()
    if q == "ml":
        out += [
            Candidate(s.words.split(".", 1)[1], "lakesql function", 0)
            for s in LAKESQL_SYNTAX
            if s.kind == "function" and s.words.upper().startswith("ML.")
        ]
    if q in catalog.tables:
        feats = {n for s, n in catalog.features if s == q}
        out += [
            Candidate(t, "feature table" if t in feats else "table", 1) for t in catalog.tables[q]
        ]
    table = _aliases(tokens).get(q, qualifier)
    out += [Candidate(quote_ident(c), f"column of {table}", 2) for c in catalog.columns_of(table)]
    if not out:  # a schema only the connection knows (lakesql system tables, ...)
        out += [
            Candidate(quote_ident(t), "table", 3) for (s, t) in catalog.columns if s.lower() == q
        ]
    return _filter(out, stem)


def _complete_meta(line: str, catalog: Catalog) -> tuple[int, list[Candidate]]:
    command, space, arg = line.partition(" ")
    if not space:
        return len(command), _filter(
            [Candidate(c, h, 0) for c, h in META_COMMANDS.items()], command, case=True
        )
    arg = arg.lstrip()
    if command == ".mode":
        from lakesql.cli.render import FORMATS

        return len(arg), _filter([Candidate(f, "format", 0) for f in FORMATS], arg)
    if command == ".timer":
        return len(arg), _filter([Candidate(v, "", 0) for v in ("on", "off")], arg)
    if command == ".schema":
        catalog.refresh_folder()
        return len(arg), _filter([Candidate(t, "table", 0) for t in catalog.table_names()], arg)
    if command in (".read", ".output"):
        return _complete_path(arg)
    return 0, []


def _complete_path(arg: str) -> tuple[int, list[Candidate]]:
    import os

    folder, _, stem = arg.rpartition("/")
    base = os.path.expanduser(folder + "/" if folder or arg.startswith("/") else ".")
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return 0, []
    out = [
        Candidate(e.name + ("/" if e.is_dir() else ""), "folder" if e.is_dir() else "file", 0)
        for e in entries
        if e.name.startswith(stem) and (stem.startswith(".") or not e.name.startswith("."))
    ]
    return len(stem), out


def _filter(cands: Iterable[Candidate], stem: str, *, case: bool = False) -> list[Candidate]:
    """Candidates starting with `stem` (case-insensitive), best first, without duplicates.

    A qualified name is found by its last part too (`wi` finds `lab.wine`, after `wine`).
    """

    def norm(t: str) -> str:
        t = t.lstrip('"')
        return t if case else t.lower()

    key = norm(stem)
    scored = []
    for c in cands:
        text = norm(c.text)
        if text.startswith(key):
            scored.append((c.rank, 0, text, c))
        elif "." in text[:-1] and norm(text.rsplit(".", 1)[1]).startswith(key):
            scored.append((c.rank, 1, text, c))
    seen: set[str] = set()
    out = []
    for *_, c in sorted(scored, key=lambda s: s[:3]):
        if c.text not in seen and c.text != stem:
            seen.add(c.text)
            out.append(c)
    return out


def make_completer(catalog: Catalog, refresh_live: Any = None) -> Any:
    """A prompt_toolkit Completer over :func:`complete_text`.

    Args:
        catalog: the names to complete.
        refresh_live: called before completing when the live names are stale (the shell passes
            a function that reloads them when the connection is idle).
    """
    from prompt_toolkit.completion import Completer, Completion

    class SqlCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            if refresh_live is not None and catalog.stale:
                refresh_live()
            back, cands = complete_text(document.text_before_cursor, catalog)
            for c in cands:
                yield Completion(c.text, start_position=-back, display_meta=c.meta)

    return SqlCompleter()
