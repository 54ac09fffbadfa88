"""Session settings, declared once: name, type, default, help.

Values come from `connect(**settings)`, then `LAKESQL_<NAME>` environment variables, then defaults.
`SET lakesql.<name> = value` changes them for a session, except the `fixed` ones (the warehouse
and the UDF folder), which only `connect()` and the environment set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lakesql.errors import OptionError, suggest


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "on", "yes"}:
        return True
    if text in {"0", "false", "off", "no"}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None or str(value) == "" else str(value)


MAX_TIME_BUDGET = 30 * 24 * 3600  # seconds: the bound of the setting and of TRAIN's option


@dataclass(frozen=True)
class Spec:
    """One declared setting or TRAIN option: its conversion, default, help and allowed values.

    Attributes:
        choices: the only values allowed (empty: any).
        low, high: smallest and largest value (None: unbounded); `open_low` / `open_high`
            exclude the bound itself.
    """

    name: str
    convert: Callable[[Any], Any]
    default: Any
    help: str
    type_name: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    fixed: bool = False  # set when the connection starts; SET/RESET refuse to change it

    def check(self, value: Any, kind: str = "setting") -> Any:
        """`value` converted and checked against the choices and bounds.

        Args:
            kind: what the spec is called in errors ("setting", "option").

        Raises:
            OptionError: a value of the wrong type, outside the choices or the bounds.
        """
        try:
            converted = self.convert(value)
        except (TypeError, ValueError) as e:
            raise OptionError(
                f"{kind} {self.name!r} expects {self.type_name}: {e}", hint=self.help
            ) from e
        if converted is None:
            return None
        if self.choices and converted not in self.choices:
            raise OptionError(
                f"{kind} {self.name!r} must be one of {', '.join(map(str, self.choices))}, "
                f"not {converted!r}"
            )
        below = self.low is not None and (
            converted <= self.low if self.open_low else converted < self.low
        )
        above = self.high is not None and (
            converted >= self.high if self.open_high else converted > self.high
        )
        if below or above:
            raise OptionError(f"{kind} {self.name!r} must be {self._range()}, not {converted:,}")
        return converted

    def _range(self) -> str:
        low = (
            f"{'above' if self.open_low else 'at least'} {self.low:,}"
            if self.low is not None
            else ""
        )
        high = (
            f"{'below' if self.open_high else 'at most'} {self.high:,}"
            if self.high is not None
            else ""
        )
        return " and ".join(x for x in (low, high) if x)


Setting = Spec  # a session setting is a Spec


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting(
            "warehouse", str, "./lakehouse", "Folder holding the warehouse.", "path", fixed=True
        ),
        Setting(
            "threads",
            _to_int,
            0,
            "DuckDB worker threads (0: one per core).",
            "integer",
            low=0,
            high=1024,
        ),
        Setting("memory_limit", _opt_str, None, "DuckDB memory limit, e.g. '4GB'.", "text"),
        Setting(
            "time_budget",
            _to_int,
            60,
            "Default TRAIN AUTOML time budget in seconds.",
            "integer",
            low=0,
            open_low=True,
            high=MAX_TIME_BUDGET,
        ),
        Setting(
            "cluster",
            _opt_str,
            None,
            "Ray cluster for TRAIN AUTOML trials and PREDICT ... INTO: ray://host:10001, 'auto', "
            "'local' (embedded) or 'none' (default: RAY_ADDRESS, else local).",
            "text",
        ),
        Setting(
            "udfs",
            _opt_str,
            None,
            "Folder of UDF modules loaded at connect (default ./udfs); fixed for the connection: "
            "CREATE FUNCTION takes modules from this folder only.",
            "path",
            fixed=True,
        ),
        Setting(
            "delta_reader",
            str,
            "auto",
            "How tables are read: 'auto' (Parquet file list when the table allows it, else the "
            "delta extension), 'extension' or 'parquet'.",
            "text",
            choices=("auto", "extension", "parquet"),
        ),
        Setting(
            "progress",
            _to_bool,
            False,
            "Show a progress bar on stderr while TRAIN runs.",
            "boolean",
        ),
        Setting(
            "batch_rows",
            _to_int,
            1_000_000,
            "Rows per Arrow batch streamed into writes.",
            "integer",
            low=1,
            high=1 << 31,
        ),
    ]
}


def validate(name: str, value: Any) -> Any:
    """Convert `value` for setting `name`.

    Raises:
        OptionError: unknown setting or a value of the wrong type.
    """
    key = name.lower().removeprefix("lakesql.")
    spec = SETTINGS.get(key)
    if spec is None:
        hint = suggest(key, SETTINGS) or "valid settings: " + ", ".join(sorted(SETTINGS))
        raise OptionError(f"unknown setting {name!r}", hint=hint)
    return spec.check(value)


def check_settable(name: str) -> None:
    """Raise when setting `name` is fixed for the connection (SET / RESET refuse it).

    Raises:
        OptionError: unknown setting.
        NotSupportedError: a fixed setting.
    """
    from lakesql.errors import NotSupportedError

    key = name.lower().removeprefix("lakesql.")
    spec = SETTINGS.get(key)
    if spec is None:
        validate(key, None)  # raises the unknown-setting error
        return
    if spec.fixed and key == "warehouse":
        raise NotSupportedError(
            "the warehouse of a session cannot change", hint="connect to the other one"
        )
    if spec.fixed:
        raise NotSupportedError(
            f"setting {key!r} is fixed when the connection starts; SQL cannot change it",
            hint=f"pass {key}=... to lakesql.connect() (or set LAKESQL_{key.upper()})",
        )


def resolve(overrides: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return every setting's value: `overrides` > `LAKESQL_*` environment > defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for key, spec in SETTINGS.items():
        env_value = env.get(f"LAKESQL_{key.upper()}")
        values[key] = spec.default if env_value is None else validate(key, env_value)
    for key, value in overrides.items():
        if value is not None:
            values[key.lower()] = validate(key, value)
    return values
