"""SQLSTATE codes for lakesql errors (Postgres error codes, appendix A of its manual)."""

from __future__ import annotations

from lakesql import errors as E


class PgError(Exception):
    """An error the server raises itself, with its SQLSTATE."""

    def __init__(
        self, code: str, message: str, *, hint: str | None = None, severity: str = "ERROR"
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.severity = severity


def sqlstate(e: BaseException) -> str:
    """The SQLSTATE of an exception raised while running a statement."""
    if isinstance(e, PgError):
        return e.code
    text = str(getattr(e, "message", e)).lower()
    if isinstance(e, E.ParseError):
        return "42601"  # syntax_error
    if isinstance(e, E.InsufficientPrivilegeError):
        return "42501"  # insufficient_privilege
    if isinstance(e, E.UnknownObjectError):
        if "schema" in text:
            return "3F000"  # invalid_schema_name
        if "function" in text:
            return "42883"  # undefined_function
        return "42P01"  # undefined_table
    if isinstance(e, E.ObjectExistsError):
        return "42P06" if "schema" in text else "42P07"  # duplicate_schema / duplicate_table
    if isinstance(e, E.OptionError):
        return "22023"  # invalid_parameter_value
    if isinstance(e, E.CatalogError):
        if "already exists" in text:
            return "42P07"
        if "function" in text and "does not exist" in text:
            return "42883"
        if "does not exist" in text:
            return "42P01"
        return "42000"
    if isinstance(e, E.ProgrammingError):
        if "column" in text and ("not found" in text or "does not exist" in text):
            return "42703"  # undefined_column
        if "function" in text and ("does not exist" in text or "no function matches" in text):
            return "42883"
        return "42000"  # syntax_error_or_access_rule_violation
    if isinstance(e, E.IntegrityError):
        if "not null" in text or "null value" in text or "never null" in text:
            return "23502"  # not_null_violation
        if "duplicate" in text or "unique" in text or "primary key" in text:
            return "23505"  # unique_violation
        return "23000"
    if isinstance(e, E.DataError):
        if "out of range" in text or "overflow" in text:
            return "22003"  # numeric_value_out_of_range
        if "division by zero" in text:
            return "22012"
        if "conversion error" in text or "could not convert" in text or "invalid input" in text:
            return "22P02"  # invalid_text_representation
        return "22000"  # data_exception
    if isinstance(e, E.NotSupportedError):
        return "0A000"  # feature_not_supported
    if isinstance(e, E.ConflictError):
        return "40001"  # serialization_failure
    if isinstance(e, E.OperationalError):
        if "cancel" in text or "interrupt" in text:
            return "57014"  # query_canceled
        return "58000"  # system_error
    if isinstance(e, E.InterfaceError):
        return "08P01"
    return "XX000"  # internal_error
