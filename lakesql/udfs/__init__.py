"""Python UDFs: the @udf decorator, and loading of UDF modules from a folder.

A UDF is vectorized: it receives pyarrow arrays (one per argument) and returns one array.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lakesql.errors import ProgrammingError

F = TypeVar("F", bound=Callable[..., Any])

_PY_TYPES = {float: "DOUBLE", int: "BIGINT", str: "VARCHAR", bool: "BOOLEAN", bytes: "BLOB"}


@dataclass(frozen=True)
class UdfSpec:
    """A function ready to register: name, DuckDB parameter and return types, callable."""

    name: str
    params: tuple[str, ...]
    returns: str
    fn: Callable[..., Any]
    doc: str = ""
    origin: str = ""


def udf(
    *, returns: str, params: list[str] | None = None, name: str | None = None
) -> Callable[[F], F]:
    """Mark a function as a lakesql UDF.

    Args:
        returns: DuckDB type of the result, e.g. 'DOUBLE'.
        params: DuckDB types of the arguments; by default taken from the annotations
            (float, int, str, bool, bytes).
        name: SQL name (default: the function's name).

    Returns:
        The function itself, with its spec attached as ``__lakesql_udf__``.
    """

    def mark(fn: F) -> F:
        types = params
        if types is None:
            hints = {k: v for k, v in getattr(fn, "__annotations__", {}).items() if k != "return"}
            try:
                types = [
                    _PY_TYPES[v] if isinstance(v, type) else _PY_TYPES[eval(v, {})]
                    for v in hints.values()
                ]
            except (KeyError, NameError, SyntaxError) as e:
                raise ProgrammingError(
                    f"cannot infer the SQL types of {fn.__name__}'s parameters",
                    hint="pass params=[...]",
                ) from e
        spec = UdfSpec(
            name=(name or fn.__name__).lower(),
            params=tuple(types),
            returns=returns,
            fn=fn,
            doc=(fn.__doc__ or "").strip().split("\n")[0],
            origin=f"{fn.__module__}:{fn.__qualname__}",
        )
        fn.__lakesql_udf__ = spec  # type: ignore[attr-defined]
        return fn

    return mark


def _import_file(path: Path) -> Any:
    import hashlib

    folder_id = hashlib.sha1(str(path.resolve().parent).encode()).hexdigest()[:8]
    module_name = f"lakesql_udfs_{folder_id}.{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ProgrammingError(f"cannot load UDF module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[module_name]
        raise ProgrammingError(f"UDF module {path} failed to import: {e}") from e
    return module


def load_folder(folder: str | Path) -> list[UdfSpec]:
    """Import every module in `folder` and return the UDFs they mark."""
    base = Path(folder)
    if not base.is_dir():
        return []
    specs: list[UdfSpec] = []
    for path in sorted(base.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _import_file(path)
        for value in vars(module).values():
            spec = getattr(value, "__lakesql_udf__", None)
            if isinstance(spec, UdfSpec):
                specs.append(spec)
    return specs


def first_doc_line(fn: Callable[..., Any]) -> str:
    """The first line of a function's docstring (shown by SHOW FUNCTIONS)."""
    return (getattr(fn, "__doc__", None) or "").strip().split("\n")[0]


_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def resolve(target: str, folder: str | Path | None) -> Callable[..., Any]:
    """Find 'module:function', first among the UDF folder's modules, then on sys.path."""
    module_name, sep, fn_name = target.partition(":")
    if not sep or not module_name or not fn_name:
        raise ProgrammingError(
            f"invalid function target {target!r}", hint="write it as 'module:function'"
        )
    if (
        not _MODULE.fullmatch(module_name)
        or not _MODULE.fullmatch(fn_name)
        or len(module_name) > 200
    ):
        raise ProgrammingError(
            f"invalid function target {target!r}: module and function must be dotted names",
            hint="write it as 'module:function', e.g. 'scoring:churn_score'",
        )
    module: Any
    candidate = Path(folder) / f"{module_name}.py" if folder else None
    in_folder = candidate is not None and candidate.is_file()
    if candidate is not None and in_folder:
        module = _import_file(candidate)
    else:
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # ImportError, or whatever the module raises while importing
            raise ProgrammingError(f"cannot import module {module_name!r}: {e}") from e
    fn = module
    for part in fn_name.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ProgrammingError(f"module {module_name!r} has no function {fn_name!r}")
    if not callable(fn):
        raise ProgrammingError(f"{target!r} is not callable")
    if not in_folder and not isinstance(getattr(fn, "__lakesql_udf__", None), UdfSpec):
        # Anyone who can run SQL can run CREATE FUNCTION: only code its owner published as a UDF
        # may be called (never, say, 'os:system').
        raise ProgrammingError(
            f"{target!r} is neither in the UDF folder nor marked @lakesql.udf",
            hint="put the module in the UDF folder, or decorate the function with @lakesql.udf(returns=...)",
        )
    return fn
