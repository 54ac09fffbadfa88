"""Expression nodes for the statements lakesql owns (everything else is sqlglot's)."""

from __future__ import annotations

from sqlglot import exp


class LakeNode(exp.Expression):
    """Base of lakesql's own nodes; each is generated back by its `<key>_sql` method."""


class LakeStatement(LakeNode):
    """Base of lakesql's own statements; each has a row in the statement table
    (`lakesql.statements`)."""


class DescribeHistory(LakeStatement):
    arg_types = {"this": True}


class RestoreTable(LakeStatement):
    # version: integer literal; timestamp: string literal (one of them)
    arg_types = {"this": True, "version": False, "timestamp": False}


class Optimize(LakeStatement):
    arg_types = {"this": True, "zorder": False}


class Vacuum(LakeStatement):
    arg_types = {"this": True, "retain": False, "dry_run": False}


class VacuumModels(LakeStatement):
    """VACUUM MODEL m / VACUUM MODELS: leftovers of interrupted TRAINs (this: model or None)."""

    arg_types = {"this": False, "dry_run": False}


class ShowTables(LakeStatement):
    arg_types = {"this": False}  # schema


class ShowSchemas(LakeStatement):
    arg_types = {"this": False}


class CreatePythonFunction(LakeStatement):
    arg_types = {"this": True, "params": False, "returns": True, "target": True, "replace": False}


class ShowFunctions(LakeStatement):
    arg_types = {"this": False}


class DropFunction(LakeStatement):
    arg_types = {"this": True, "exists": False}


class SetSetting(LakeStatement):
    arg_types = {"this": True, "expression": True}


class ResetSetting(LakeStatement):
    arg_types = {"this": True}


class ShowSettings(LakeStatement):
    arg_types = {"this": False}


class CreateFeatureTable(LakeStatement):
    arg_types = {
        "this": True,
        "keys": True,
        "timestamp_key": False,
        "ttl": False,
        "comment": False,
        "expression": True,
        "replace": False,
        "exists": False,
    }


class RefreshFeatureTable(LakeStatement):
    arg_types = {"this": True}


class ShowFeatureTables(LakeStatement):
    arg_types = {"this": False}  # LIKE pattern


class DescribeFeatureTable(LakeStatement):
    arg_types = {"this": True}


class DropFeatureTable(LakeStatement):
    arg_types = {"this": True, "exists": False, "cascade": False}


class TrainAutoML(LakeStatement):
    # this: model name; label: column; source: Table (maybe with version) or a query;
    # features: feature tables; options: list of Option
    arg_types = {
        "this": True,
        "label": True,
        "source": True,
        "features": False,
        "options": False,
        "replace": False,
    }


class Option(LakeNode):
    arg_types = {"this": True, "expression": True}


class RetrainModel(LakeStatement):
    arg_types = {"this": True, "version": False}


class ModelRef(LakeNode):
    # a model name with an optional VERSION n or ALIAS a
    arg_types = {"this": True, "version": False, "alias": False}


class ShowModels(LakeStatement):
    arg_types = {"this": False}


class ShowVersions(LakeStatement):
    arg_types = {"this": True}


class ShowTrials(LakeStatement):
    arg_types = {"this": True, "version": False}


class DescribeModel(LakeStatement):
    arg_types = {"this": True, "version": False}


class AlterModelAlias(LakeStatement):
    arg_types = {"this": True, "alias": True, "version": False, "unset": False}


class DropModel(LakeStatement):
    arg_types = {"this": True, "version": False, "exists": False}


class PredictInto(LakeStatement):
    # this: ModelRef; source: Table or query; into: Table; mode: APPEND/OVERWRITE/MERGE; keys
    arg_types = {"this": True, "source": True, "into": False, "mode": False, "keys": False}
