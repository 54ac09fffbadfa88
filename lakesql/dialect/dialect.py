"""The LakeSQL sqlglot dialect: a DuckDB subclass with lakesql's statements in a table."""

from __future__ import annotations

import logging

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError as SqlglotParseError
from sqlglot.tokens import TokenType

from lakesql.dialect import expressions as lx
from lakesql.errors import InternalError, ParseError, SourceSpan

logging.getLogger("sqlglot").setLevel(logging.ERROR)

SPAN = "lakesql_span"  # meta key: (start, end) offsets of a sub-query's text, end exclusive


class LakeSQL(DuckDB):
    """DuckDB SQL plus lakesql statements."""

    class Tokenizer(DuckDB.Tokenizer):
        # OPTIMIZE and VACUUM are statements with a grammar here, not opaque commands.
        KEYWORDS = {
            k: v for k, v in DuckDB.Tokenizer.KEYWORDS.items() if k not in {"OPTIMIZE", "VACUUM"}
        }

    class Parser(DuckDB.Parser):  # type: ignore[misc,valid-type]
        # Leading words -> parser method. Longer sequences first; a method returning None
        # hands the statement back to DuckDB's grammar.
        LAKESQL_STATEMENTS: tuple[tuple[tuple[str, ...], str], ...] = (
            (("DESCRIBE", "HISTORY"), "_parse_describe_history"),
            (("TRAIN",), "_parse_train"),
            (("PREDICT",), "_parse_predict"),
            (("RETRAIN", "MODEL"), "_parse_retrain"),
            (("SHOW", "MODELS"), "_parse_show_models"),
            (("SHOW", "VERSIONS", "IN", "MODEL"), "_parse_show_versions"),
            (("SHOW", "TRIALS", "IN", "MODEL"), "_parse_show_trials"),
            (("DESCRIBE", "MODEL"), "_parse_describe_model"),
            (("ALTER", "MODEL"), "_parse_alter_model"),
            (("DROP", "MODEL"), "_parse_drop_model"),
            (("DESCRIBE", "FEATURE", "TABLE"), "_parse_describe_feature_table"),
            (("SHOW", "FEATURE", "TABLES"), "_parse_show_feature_tables"),
            (("REFRESH", "FEATURE", "TABLE"), "_parse_refresh_feature_table"),
            (("DROP", "FEATURE", "TABLE"), "_parse_drop_feature_table"),
            (("CREATE",), "_parse_create_feature_table"),
            (("RESTORE", "TABLE"), "_parse_restore"),
            (("OPTIMIZE",), "_parse_optimize"),
            (("VACUUM",), "_parse_vacuum"),
            (("SHOW", "TABLES"), "_parse_show_tables"),
            (("SHOW", "SCHEMAS"), "_parse_show_schemas"),
            (("SHOW", "FUNCTIONS"), "_parse_show_functions"),
            (("SHOW", "SETTINGS"), "_parse_show_settings"),
            (("DROP", "FUNCTION"), "_parse_drop_function"),
            (("CREATE",), "_parse_create_python_function"),
            (("SET",), "_parse_set_setting"),
            (("RESET",), "_parse_reset_setting"),
        )

        def _parse_statement(self) -> exp.Expr | None:
            if self._curr is not None:
                start = self._index
                for words, method in self.LAKESQL_STATEMENTS:
                    if self._match_text_seq(*words):
                        node = getattr(self, method)()
                        if node is not None:
                            return node
                        self._retreat(start)
            return super()._parse_statement()

        def _parse_generated_as_identity(self) -> exp.Expr:
            # DuckDB's `GENERATED ALWAYS AS (expr) VIRTUAL|STORED` (sqlglot stops at the keyword)
            constraint = super()._parse_generated_as_identity()
            self._match_texts(("VIRTUAL", "STORED"))
            return constraint

        def _parse_ddl_select(self) -> exp.Expr | None:
            first = self._curr
            node = super()._parse_ddl_select()
            if node is not None and first is not None and self._prev is not None:
                node.meta[SPAN] = (first.start, self._prev.end + 1)
            return node

        # -- helpers --------------------------------------------------------------------
        def _expect_table(self) -> exp.Table:
            table = self._parse_table_parts()
            if not isinstance(table, exp.Table) or not table.name:
                self.raise_error("expected a table name")
            return table

        def _expect_number(self) -> exp.Expr:
            sign = "-" if self._match(TokenType.DASH) else ""
            number = self._parse_number()
            if not isinstance(number, exp.Literal):
                self.raise_error("expected a number")
                raise AssertionError  # raise_error raises at the default error level
            return exp.Literal.number(sign + number.name)

        def _expect_model_version(self) -> exp.Literal:
            number = self._parse_number()
            if not isinstance(number, exp.Literal) or not number.name.isdigit():
                self.raise_error("expected a model version number (1, 2, ...)")
                raise AssertionError
            return number

        def _expect_string(self) -> exp.Literal:
            text = self._parse_string()
            if not isinstance(text, exp.Literal):
                self.raise_error("expected a quoted string")
                raise AssertionError
            return text

        def _setting_name(self) -> str | None:
            if not self._match_text_seq("LAKESQL"):
                return None
            if not self._match(TokenType.DOT):
                return None
            name = self._parse_var(any_token=True)
            return name.name.lower() if name else None

        # -- statements -------------------------------------------------------------------
        def _model_name(self) -> exp.Expr:
            name = self._parse_id_var(any_token=False)
            if name is None:
                self.raise_error("expected a model name")
            return name

        def _parse_version_number(self) -> exp.Expr | None:
            return self._expect_model_version() if self._match_text_seq("VERSION") else None

        def _parse_option(self) -> exp.Expr:
            name = self._parse_id_var(any_token=True)
            if name is None:
                self.raise_error("expected an option name")
            if not (self._match(TokenType.EQ) or self._match(TokenType.FARROW)):
                self.raise_error(f"expected = after option {name.name}")
            value = self._parse_bitwise()
            if value is None:
                self.raise_error(f"expected a value for option {name.name}")
            return lx.Option(this=name, expression=value)

        def _parse_from_source(self) -> exp.Expr:
            """FROM t [VERSION AS OF n | TIMESTAMP AS OF 'ts'] | FROM (query), the query's span kept."""
            if not self._match(TokenType.FROM):
                self.raise_error("expected FROM table or FROM (query)")
            source: exp.Expr | None
            if self._match(TokenType.L_PAREN, advance=False):
                first = (
                    self._tokens[self._index + 1] if self._index + 1 < len(self._tokens) else None
                )
                source = self._parse_wrapped(self._parse_select)
                if source is not None and first is not None:
                    source.meta[SPAN] = (first.start, self._prev.start)
            elif self._curr is None or self._curr.token_type in (
                TokenType.SEMICOLON,
                TokenType.SENTINEL,
            ):
                source = None
            else:
                source = self._parse_table_parts()
                if isinstance(source, exp.Table):
                    version = self._parse_version()
                    if version is not None:
                        source.set("version", version)
            if source is None:
                self.raise_error("expected a table or a (query) after FROM")
                raise AssertionError  # raise_error raises at the default error level
            return source

        def _parse_train(self) -> exp.Expr | None:
            # TRAIN [OR REPLACE] AUTOML [MODEL] m PREDICT label FROM t [VERSION AS OF n] | (query)
            #   [WITH FEATURES ft, ...] [OPTIONS (name = value, ...)]
            replace = self._match_text_seq("OR", "REPLACE")
            if not self._match_text_seq("AUTOML"):
                self.raise_error("expected AUTOML after TRAIN")
            self._match_text_seq("MODEL")
            name = self._model_name()
            if not self._match_text_seq("PREDICT"):
                self.raise_error("expected PREDICT label_column")
            label = self._parse_id_var(any_token=True)
            if label is None:
                self.raise_error("expected the label column after PREDICT")
            source = self._parse_from_source()
            features = None
            if self._match_text_seq("WITH", "FEATURES"):
                features = self._parse_csv(self._parse_table_parts)
            options = None
            if self._match_text_seq("OPTIONS"):
                options = self._parse_wrapped_csv(self._parse_option)
            return lx.TrainAutoML(
                this=name,
                label=label,
                source=source,
                features=features,
                options=options,
                replace=replace or None,
            )

        def _parse_model_ref(self) -> exp.Expr:
            name = self._model_name()
            if self._match_text_seq("VERSION"):
                return lx.ModelRef(this=name, version=self._expect_model_version())
            if self._match_text_seq("ALIAS"):
                return lx.ModelRef(this=name, alias=self._parse_id_var(any_token=True))
            return lx.ModelRef(this=name)

        def _parse_predict(self) -> exp.Expr | None:
            # PREDICT m [VERSION n | ALIAS a] FROM t | (query) [INTO t2 [MODE APPEND | OVERWRITE | MERGE ON (k, ...)]]
            if self._match(TokenType.L_PAREN, advance=False):
                return None
            model = self._parse_model_ref()
            source = self._parse_from_source()
            into = mode = keys = None
            if self._match(TokenType.INTO):
                into = self._expect_table()
                mode = "APPEND"
                if self._match_text_seq("MODE"):
                    if self._match_text_seq("APPEND"):
                        mode = "APPEND"
                    elif self._match_text_seq("OVERWRITE"):
                        mode = "OVERWRITE"
                    elif self._match_text_seq("MERGE", "ON"):
                        mode = "MERGE"
                        keys = self._parse_wrapped_id_vars()
                    else:
                        self.raise_error(
                            "expected MODE APPEND, MODE OVERWRITE or MODE MERGE ON (key, ...)"
                        )
            return lx.PredictInto(this=model, source=source, into=into, mode=mode, keys=keys)

        def _parse_retrain(self) -> exp.Expr:
            name = self._model_name()
            version = None
            if self._match_text_seq("REPRODUCE"):
                if not self._match_text_seq("VERSION"):
                    self.raise_error("expected REPRODUCE VERSION n")
                version = self._expect_model_version()
            return lx.RetrainModel(this=name, version=version)

        def _parse_show_models(self) -> exp.Expr:
            pattern = self._expect_string() if self._match(TokenType.LIKE) else None
            return lx.ShowModels(this=pattern)

        def _parse_show_versions(self) -> exp.Expr:
            return lx.ShowVersions(this=self._model_name())

        def _parse_show_trials(self) -> exp.Expr:
            name = self._model_name()
            return lx.ShowTrials(this=name, version=self._parse_version_number())

        def _parse_describe_model(self) -> exp.Expr:
            name = self._model_name()
            return lx.DescribeModel(this=name, version=self._parse_version_number())

        def _parse_alter_model(self) -> exp.Expr:
            name = self._model_name()
            if self._match_text_seq("SET", "ALIAS"):
                alias = self._parse_id_var(any_token=True)
                if not self._match_text_seq("VERSION"):
                    self.raise_error("expected VERSION n")
                return lx.AlterModelAlias(
                    this=name, alias=alias, version=self._expect_model_version()
                )
            if self._match_text_seq("UNSET", "ALIAS"):
                alias = self._parse_id_var(any_token=True)
                return lx.AlterModelAlias(this=name, alias=alias, unset=True)
            self.raise_error("expected SET ALIAS a VERSION n or UNSET ALIAS a")
            raise AssertionError

        def _parse_drop_model(self) -> exp.Expr:
            exists = self._match_text_seq("IF", "EXISTS")
            name = self._model_name()
            return lx.DropModel(
                this=name, version=self._parse_version_number(), exists=exists or None
            )

        def _parse_create_feature_table(self) -> exp.Expr | None:
            # CREATE [OR REPLACE] FEATURE TABLE [IF NOT EXISTS] ft PRIMARY KEY (k, ...)
            #   [TIMESTAMP KEY (ts)] [TTL INTERVAL '30 days'] [COMMENT 'text'] AS query
            replace = self._match_text_seq("OR", "REPLACE")
            if not self._match_text_seq("FEATURE", "TABLE"):
                return None
            exists = self._match_text_seq("IF", "NOT", "EXISTS")
            table = self._expect_table()
            if not self._match(TokenType.PRIMARY_KEY):
                self.raise_error("expected PRIMARY KEY (column, ...)")
            keys = self._parse_wrapped_id_vars()
            timestamp_key = None
            ttl = None
            comment = None
            while True:
                if self._match_text_seq("TIMESTAMP", "KEY"):
                    ts = self._parse_wrapped_id_vars()
                    if len(ts) != 1:
                        self.raise_error("TIMESTAMP KEY takes one column")
                    timestamp_key = ts[0]
                elif self._match_text_seq("TTL"):
                    ttl = self._parse_bitwise()
                    if not isinstance(ttl, exp.Interval):
                        self.raise_error("expected TTL INTERVAL '<n> <unit>'")
                elif self._match_text_seq("COMMENT"):
                    comment = self._expect_string()
                else:
                    break
            if not self._match(TokenType.ALIAS):
                self.raise_error("expected AS query")
            query = self._parse_ddl_select()
            if query is None:
                self.raise_error("expected a query after AS")
            return lx.CreateFeatureTable(
                this=table,
                keys=keys,
                timestamp_key=timestamp_key,
                ttl=ttl,
                comment=comment,
                expression=query,
                replace=replace or None,
                exists=exists or None,
            )

        def _parse_refresh_feature_table(self) -> exp.Expr:
            return lx.RefreshFeatureTable(this=self._expect_table())

        def _parse_show_feature_tables(self) -> exp.Expr:
            pattern = self._expect_string() if self._match(TokenType.LIKE) else None
            return lx.ShowFeatureTables(this=pattern)

        def _parse_describe_feature_table(self) -> exp.Expr:
            return lx.DescribeFeatureTable(this=self._expect_table())

        def _parse_drop_feature_table(self) -> exp.Expr:
            exists = self._match_text_seq("IF", "EXISTS")
            table = self._expect_table()
            cascade = self._match_text_seq("CASCADE")
            return lx.DropFeatureTable(this=table, exists=exists or None, cascade=cascade or None)

        def _parse_describe_history(self) -> exp.Expr:
            return lx.DescribeHistory(this=self._expect_table())

        def _parse_restore(self) -> exp.Expr:
            table = self._expect_table()
            if not self._match_text_seq("TO"):
                self.raise_error("expected TO VERSION AS OF n or TO TIMESTAMP AS OF 'time'")
            if self._match_text_seq("VERSION", "AS", "OF"):
                return lx.RestoreTable(this=table, version=self._expect_number())
            if self._match_text_seq("TIMESTAMP", "AS", "OF"):
                return lx.RestoreTable(this=table, timestamp=self._expect_string())
            self.raise_error("expected VERSION AS OF n or TIMESTAMP AS OF 'time'")
            raise AssertionError

        def _parse_optimize(self) -> exp.Expr:
            table = self._expect_table()
            zorder = None
            if self._match_text_seq("ZORDER", "BY"):
                zorder = self._parse_wrapped_id_vars()
                if not zorder:
                    self.raise_error("expected (column, ...) after ZORDER BY")
            return lx.Optimize(this=table, zorder=zorder)

        def _parse_vacuum(self) -> exp.Expr | None:
            if self._index >= len(self._tokens) or self._curr.text.upper() == "ANALYZE":
                return None  # DuckDB's own VACUUM [ANALYZE]
            if self._match_text_seq("MODEL"):
                name = self._model_name()
                return lx.VacuumModels(
                    this=name, dry_run=self._match_text_seq("DRY", "RUN") or None
                )
            if self._curr.text.upper() == "MODELS" and (
                self._index + 1 >= len(self._tokens)
                or self._next.token_type == TokenType.SEMICOLON
                or self._next.text.upper() == "DRY"
            ):
                self._advance()  # the registry; a table named models is `VACUUM main.models`
                return lx.VacuumModels(dry_run=self._match_text_seq("DRY", "RUN") or None)
            table = self._expect_table()
            retain = None
            if self._match_text_seq("RETAIN"):
                retain = self._expect_number()
                if not self._match_text_seq("HOURS"):
                    self.raise_error("expected HOURS after RETAIN n")
            dry_run = self._match_text_seq("DRY", "RUN")
            return lx.Vacuum(this=table, retain=retain, dry_run=dry_run or None)

        def _parse_show_tables(self) -> exp.Expr:
            schema = None
            if self._match_set((TokenType.IN, TokenType.FROM)):
                schema = self._parse_id_var()
                if schema is None:
                    self.raise_error("expected a schema name")
            return lx.ShowTables(this=schema)

        def _parse_show_schemas(self) -> exp.Expr:
            return lx.ShowSchemas()

        def _parse_show_functions(self) -> exp.Expr:
            return lx.ShowFunctions()

        def _parse_show_settings(self) -> exp.Expr:
            return lx.ShowSettings()

        def _parse_drop_function(self) -> exp.Expr:
            exists = self._match_text_seq("IF", "EXISTS")
            name = self._parse_id_var()
            if name is None:
                self.raise_error("expected a function name")
            return lx.DropFunction(this=name, exists=exists or None)

        def _parse_create_python_function(self) -> exp.Expr | None:
            # CREATE [OR REPLACE] FUNCTION f(a T, ...) RETURNS T LANGUAGE PYTHON AS 'mod:fn'
            replace = self._match_text_seq("OR", "REPLACE")
            if not self._match_text_seq("FUNCTION"):
                return None
            start = self._index
            name = self._parse_id_var()
            if name is None or not self._match(TokenType.L_PAREN, advance=False):
                return None
            params = self._parse_wrapped_csv(self._parse_field_def, optional=True)
            if not self._match_text_seq("RETURNS"):
                self._retreat(start)
                return None
            returns = self._parse_types()
            if not self._match_text_seq("LANGUAGE", "PYTHON"):
                return None  # a DuckDB macro or another language: DuckDB decides
            if not self._match(TokenType.ALIAS):
                self.raise_error("expected AS 'module:function'")
            target = self._expect_string()
            return lx.CreatePythonFunction(
                this=name, params=params, returns=returns, target=target, replace=replace or None
            )

        def _parse_set_setting(self) -> exp.Expr | None:
            name = self._setting_name()
            if name is None:
                return None
            if not (self._match(TokenType.EQ) or self._match_text_seq("TO")):
                self.raise_error(f"expected = after SET lakesql.{name}")
            value = self._parse_primary() or self._parse_var(any_token=True)
            if value is None:
                self.raise_error("expected a value")
            return lx.SetSetting(this=exp.to_identifier(name), expression=value)

        def _parse_reset_setting(self) -> exp.Expr | None:
            # RESET is a command word: the tokenizer hands the rest over as one string.
            if self._index >= len(self._tokens):
                return None
            rest = self._curr.text.strip()
            if not rest.lower().startswith("lakesql."):
                return None
            self._advance()
            return lx.ResetSetting(this=exp.to_identifier(rest[len("lakesql.") :].lower()))

    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        PROPERTIES_LOCATION = {
            **DuckDB.Generator.PROPERTIES_LOCATION,
            exp.PartitionedByProperty: exp.Properties.Location.POST_SCHEMA,
            exp.SchemaCommentProperty: exp.Properties.Location.POST_SCHEMA,
        }

        def schemacommentproperty_sql(self, expression: exp.SchemaCommentProperty) -> str:
            return f"COMMENT {self.sql(expression, 'this')}"

        def partitionedbyproperty_sql(self, expression: exp.PartitionedByProperty) -> str:
            return f"PARTITIONED BY {self.sql(expression, 'this')}"

        def describehistory_sql(self, e: lx.DescribeHistory) -> str:
            return f"DESCRIBE HISTORY {self.sql(e, 'this')}"

        def restoretable_sql(self, e: lx.RestoreTable) -> str:
            if e.args.get("version") is not None:
                target = f"VERSION AS OF {self.sql(e, 'version')}"
            else:
                target = f"TIMESTAMP AS OF {self.sql(e, 'timestamp')}"
            return f"RESTORE TABLE {self.sql(e, 'this')} TO {target}"

        def optimize_sql(self, e: lx.Optimize) -> str:
            zorder = e.args.get("zorder")
            tail = f" ZORDER BY ({self.expressions(e, key='zorder', flat=True)})" if zorder else ""
            return f"OPTIMIZE {self.sql(e, 'this')}{tail}"

        def vacuum_sql(self, e: lx.Vacuum) -> str:
            retain = e.args.get("retain")
            text = f"VACUUM {self.sql(e, 'this')}"
            if retain is not None:
                text += f" RETAIN {self.sql(retain)} HOURS"
            if e.args.get("dry_run"):
                text += " DRY RUN"
            return text

        def vacuummodels_sql(self, e: lx.VacuumModels) -> str:
            name = e.args.get("this")
            text = f"VACUUM MODEL {self.sql(name)}" if name is not None else "VACUUM MODELS"
            return text + (" DRY RUN" if e.args.get("dry_run") else "")

        def showtables_sql(self, e: lx.ShowTables) -> str:
            schema = e.args.get("this")
            return "SHOW TABLES" + (f" IN {self.sql(schema)}" if schema else "")

        def showschemas_sql(self, e: lx.ShowSchemas) -> str:
            return "SHOW SCHEMAS"

        def showfunctions_sql(self, e: lx.ShowFunctions) -> str:
            return "SHOW FUNCTIONS"

        def showsettings_sql(self, e: lx.ShowSettings) -> str:
            return "SHOW SETTINGS"

        def dropfunction_sql(self, e: lx.DropFunction) -> str:
            exists = " IF EXISTS" if e.args.get("exists") else ""
            return f"DROP FUNCTION{exists} {self.sql(e, 'this')}"

        def createpythonfunction_sql(self, e: lx.CreatePythonFunction) -> str:
            replace = " OR REPLACE" if e.args.get("replace") else ""
            params = self.expressions(e, key="params", flat=True)
            return (
                f"CREATE{replace} FUNCTION {self.sql(e, 'this')}({params}) "
                f"RETURNS {self.sql(e, 'returns')} LANGUAGE PYTHON AS {self.sql(e, 'target')}"
            )

        def createfeaturetable_sql(self, e: lx.CreateFeatureTable) -> str:
            parts = ["CREATE"]
            if e.args.get("replace"):
                parts.append("OR REPLACE")
            parts.append("FEATURE TABLE")
            if e.args.get("exists"):
                parts.append("IF NOT EXISTS")
            parts.append(self.sql(e, "this"))
            parts.append(f"PRIMARY KEY ({self.expressions(e, key='keys', flat=True)})")
            if e.args.get("timestamp_key"):
                parts.append(f"TIMESTAMP KEY ({self.sql(e, 'timestamp_key')})")
            if e.args.get("ttl"):
                parts.append(f"TTL {self.sql(e, 'ttl')}")
            if e.args.get("comment"):
                parts.append(f"COMMENT {self.sql(e, 'comment')}")
            parts.append(f"AS {self.sql(e, 'expression')}")
            return " ".join(parts)

        def refreshfeaturetable_sql(self, e: lx.RefreshFeatureTable) -> str:
            return f"REFRESH FEATURE TABLE {self.sql(e, 'this')}"

        def showfeaturetables_sql(self, e: lx.ShowFeatureTables) -> str:
            like = f" LIKE {self.sql(e, 'this')}" if e.args.get("this") else ""
            return f"SHOW FEATURE TABLES{like}"

        def describefeaturetable_sql(self, e: lx.DescribeFeatureTable) -> str:
            return f"DESCRIBE FEATURE TABLE {self.sql(e, 'this')}"

        def dropfeaturetable_sql(self, e: lx.DropFeatureTable) -> str:
            exists = " IF EXISTS" if e.args.get("exists") else ""
            cascade = " CASCADE" if e.args.get("cascade") else ""
            return f"DROP FEATURE TABLE{exists} {self.sql(e, 'this')}{cascade}"

        def version_sql(self, e: exp.Version) -> str:
            return f"{e.name} {e.text('kind')} {self.sql(e, 'expression')}"

        def trainautoml_sql(self, e: lx.TrainAutoML) -> str:
            replace = " OR REPLACE" if e.args.get("replace") else ""
            source = e.args["source"]
            src = self.sql(source) if isinstance(source, exp.Table) else f"({self.sql(source)})"
            text = f"TRAIN{replace} AUTOML {self.sql(e, 'this')} PREDICT {self.sql(e, 'label')} FROM {src}"
            if e.args.get("features"):
                text += f" WITH FEATURES {self.expressions(e, key='features', flat=True)}"
            if e.args.get("options"):
                text += f" OPTIONS ({self.expressions(e, key='options', flat=True)})"
            return text

        def option_sql(self, e: lx.Option) -> str:
            return f"{self.sql(e, 'this')} = {self.sql(e, 'expression')}"

        def predictinto_sql(self, e: lx.PredictInto) -> str:
            source = e.args["source"]
            src = self.sql(source) if isinstance(source, exp.Table) else f"({self.sql(source)})"
            text = f"PREDICT {self.sql(e, 'this')} FROM {src}"
            if e.args.get("into"):
                text += f" INTO {self.sql(e, 'into')}"
                mode = e.args.get("mode")
                if mode == "MERGE":
                    text += f" MODE MERGE ON ({self.expressions(e, key='keys', flat=True)})"
                elif mode and mode != "APPEND":
                    text += f" MODE {mode}"
            return text

        def retrainmodel_sql(self, e: lx.RetrainModel) -> str:
            tail = f" REPRODUCE VERSION {self.sql(e, 'version')}" if e.args.get("version") else ""
            return f"RETRAIN MODEL {self.sql(e, 'this')}{tail}"

        def modelref_sql(self, e: lx.ModelRef) -> str:
            if e.args.get("version"):
                return f"{self.sql(e, 'this')} VERSION {self.sql(e, 'version')}"
            if e.args.get("alias"):
                return f"{self.sql(e, 'this')} ALIAS {self.sql(e, 'alias')}"
            return self.sql(e, "this")

        def showmodels_sql(self, e: lx.ShowModels) -> str:
            return "SHOW MODELS" + (f" LIKE {self.sql(e, 'this')}" if e.args.get("this") else "")

        def showversions_sql(self, e: lx.ShowVersions) -> str:
            return f"SHOW VERSIONS IN MODEL {self.sql(e, 'this')}"

        def showtrials_sql(self, e: lx.ShowTrials) -> str:
            tail = f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else ""
            return f"SHOW TRIALS IN MODEL {self.sql(e, 'this')}{tail}"

        def describemodel_sql(self, e: lx.DescribeModel) -> str:
            tail = f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else ""
            return f"DESCRIBE MODEL {self.sql(e, 'this')}{tail}"

        def altermodelalias_sql(self, e: lx.AlterModelAlias) -> str:
            if e.args.get("unset"):
                return f"ALTER MODEL {self.sql(e, 'this')} UNSET ALIAS {self.sql(e, 'alias')}"
            return f"ALTER MODEL {self.sql(e, 'this')} SET ALIAS {self.sql(e, 'alias')} VERSION {self.sql(e, 'version')}"

        def dropmodel_sql(self, e: lx.DropModel) -> str:
            exists = " IF EXISTS" if e.args.get("exists") else ""
            tail = f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else ""
            return f"DROP MODEL{exists} {self.sql(e, 'this')}{tail}"

        def setsetting_sql(self, e: lx.SetSetting) -> str:
            return f"SET lakesql.{e.name} = {self.sql(e, 'expression')}"

        def resetsetting_sql(self, e: lx.ResetSetting) -> str:
            return f"RESET lakesql.{e.name}"


LakeSQL.Generator.TRANSFORMS = {
    **DuckDB.Generator.TRANSFORMS,
    **{
        cls: getattr(LakeSQL.Generator, f"{cls.__name__.lower()}_sql")
        for cls in vars(lx).values()
        if isinstance(cls, type)
        and issubclass(cls, lx.LakeNode)
        and cls not in (lx.LakeNode, lx.LakeStatement)
    },
}

_DIALECT = LakeSQL()

# Statements whose first words are lakesql's own: a parse error there is reported as ours
# instead of handing the text to DuckDB.
OWN_LEADING_WORDS: tuple[tuple[str, ...], ...] = tuple(
    w
    for w, _ in LakeSQL.Parser.LAKESQL_STATEMENTS
    if w not in {("CREATE",), ("SET",), ("RESET",), ("VACUUM",)}
)


def parse_statement(sql: str) -> exp.Expr:
    """Parse one statement with the LakeSQL dialect.

    Raises:
        ParseError: with the position of the offending token.
    """
    try:
        nodes = _DIALECT.parse(sql)
    except SqlglotParseError as e:
        raise _to_parse_error(e, sql) from e
    except RecursionError as e:  # sqlglot parses recursively: thousands of nested parentheses
        raise ParseError(
            "the statement nests too deeply for lakesql's parser", span=SourceSpan(sql, 0)
        ) from e
    found = [n for n in nodes if n is not None]
    if len(found) != 1:
        raise ParseError(f"expected one statement, found {len(found)}", span=SourceSpan(sql, 0))
    return found[0]


def generate(node: exp.Expr) -> str:
    """Render a node as LakeSQL text."""
    return node.sql(dialect=_DIALECT)


def _to_parse_error(e: SqlglotParseError, sql: str) -> ParseError:
    info = e.errors[0] if e.errors else {}
    line, col = int(info.get("line") or 1), int(info.get("col") or 1)
    highlight = str(info.get("highlight") or "")
    lines = sql.split("\n")
    line = max(1, min(line, len(lines)))
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + max(0, col - 1)
    if highlight:  # sqlglot's column is the token's last character
        offset = max(0, offset - len(highlight) + 1)
    message = str(info.get("description") or e).split(". Line ")[0]
    return ParseError(
        f"syntax error: {message}", span=SourceSpan(sql, offset, max(1, len(highlight)))
    )


def table_span(table: exp.Table) -> tuple[int, int]:
    """Character span [start, end) of a table name in the statement text it was parsed from."""
    parts = [p for p in table.parts if p.meta.get("start") is not None]
    if not parts:
        raise InternalError(f"no source position for table {table.sql()}")
    return min(p.meta["start"] for p in parts), max(p.meta["end"] for p in parts) + 1


def splice(sql: str, edits: list[tuple[int, int, str]]) -> str:
    """`sql` with each (start, end, text) edit applied; the spans must not overlap."""
    for start, end, text in sorted(edits, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql
