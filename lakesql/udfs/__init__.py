"""Python UDFs: the @udf decorator, and loading of UDF modules from a folder.

A UDF is vectorized: it receives pyarrow arrays (one per argument) and returns one array.
"""

from __future__ import annotations

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


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_target(target: str, folder: str | Path | None) -> tuple[Path, str, list[str]]:
    """Check 'module:function' without importing anything: (the module's file, module name,
    attribute path).

    The module must be a file `<module>.py` directly in the UDF folder fixed when the connection
    started (no package, no dotted or relative name, no symbolic link leading out of the folder),
    never a standard-library or installed module (`this`, `os`, ...): whoever can run SQL can run
    CREATE FUNCTION, and importing a module runs its code.

    Raises:
        ProgrammingError: saying which rule the target breaks.
    """
    module_name, sep, fn_name = target.partition(":")
    if not sep or not module_name or not fn_name:
        raise ProgrammingError(
            f"invalid function target {target!r}", hint="write it as 'module:function'"
        )
    attrs = fn_name.split(".")
    if (
        not _IDENTIFIER.fullmatch(module_name)
        or not all(_IDENTIFIER.fullmatch(a) for a in attrs)
        or len(target) > 200
    ):
        raise ProgrammingError(
            f"invalid function target {target!r}: the module is a file name of the UDF folder "
            "(letters, digits, '_'; no dots) and the function a name (or Class.method)",
            hint="write it as 'module:function', e.g. 'scoring:churn_score'",
        )
    if module_name.startswith("_"):
        raise ProgrammingError(
            f"cannot import module {module_name!r}: modules starting with '_' are private"
        )
    if module_name in sys.stdlib_module_names or module_name in sys.builtin_module_names:
        raise ProgrammingError(
            f"cannot import module {module_name!r}: it is a standard-library module; "
            "functions come from modules in the UDF folder only",
            hint="write the function in a module of the UDF folder",
        )
    if not folder:
        raise ProgrammingError(f"cannot import module {module_name!r}: no UDF folder is set")
    base = Path(folder).resolve()
    candidate = base / f"{module_name}.py"
    if not candidate.is_file():
        raise ProgrammingError(
            f"cannot import module {module_name!r}: it is not a module of the UDF folder {base} "
            "(functions come from modules in that folder only, never from installed packages)",
            hint=f"put {module_name}.py in the UDF folder, fixed when the connection starts",
        )
    if candidate.resolve().parent != base:
        raise ProgrammingError(
            f"cannot import module {module_name!r}: {candidate} leads out of the UDF folder"
        )
    return candidate, module_name, attrs


def resolve(target: str, folder: str | Path | None) -> Callable[..., Any]:
    """The function 'module:function' names, from a module of the UDF folder `folder`.

    Every rule is checked (check_target) before the module is imported; then the function must
    be defined in that module (`mod:os.system`, `mod:system` after `from os import system` are
    refused), or be a method of a class defined there.
    """
    path, module_name, attrs = check_target(target, folder)
    module = _import_file(path)
    fn: Any = module
    for i, part in enumerate(attrs):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ProgrammingError(f"module {module_name!r} has no function {'.'.join(attrs)!r}")
        if i < len(attrs) - 1 and not (isinstance(fn, type) and fn.__module__ == module.__name__):
            raise ProgrammingError(
                f"{target!r} does not name a function of module {module_name!r}: "
                f"{'.'.join(attrs[: i + 1])!r} is not a class defined there"
            )
    if not callable(fn):
        raise ProgrammingError(f"{target!r} is not callable")
    if getattr(fn, "__module__", None) != module.__name__:
        raise ProgrammingError(
            f"{target!r} is not a function defined in module {module_name!r} "
            f"(it comes from {getattr(fn, '__module__', None) or 'elsewhere'!s})",
            hint="define the function in the module (a wrapper that calls it will do)",
        )
    return fn
