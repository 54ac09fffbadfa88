"""Dependencies run one way: every import under lakesql/ against the declared layers.

The order is written once, in pyproject.toml's import-linter contracts (`make check` runs
`lint-imports` on them); this test reads the same contracts and checks every module's imports
with `ast`, without importing anything, naming the file and line of an import against the order.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lakesql"
CONTRACTS = {
    c["id"]: c
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module imported (or the package a name is imported from)
    where: str  # file:line


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str | None = None) -> Iterator[Import]:
    """The lakesql imports of one file, at any depth, except under `if TYPE_CHECKING:`.

    `module` names the file's module when it is not under lakesql/ (a test's probe)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                pending.extend(child.orelse)
                continue
            pending.append(child)
            where = f"{path}:{getattr(child, 'lineno', 0)}"
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, where)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for (
                    alias
                ) in child.names:  # `from lakesql.ml import automl` imports lakesql.ml.automl
                    full = f"{base}.{alias.name}"
                    is_module = (ROOT / full.replace(".", "/")).with_suffix(".py").exists() or (
                        ROOT / full.replace(".", "/")
                    ).is_dir()
                    yield Import(module, full if is_module else base, where)


def _all_imports() -> list[Import]:
    return [i for path in sorted(PACKAGE.rglob("*.py")) for i in _imports(path)]


def _layer_index(module: str, layers: list[list[str]]) -> tuple[int, str] | None:
    for i, layer in enumerate(layers):
        for member in layer:
            if module == member or module.startswith(member + "."):
                return i, member
    return None


def _layers() -> list[list[str]]:
    return [[m.strip() for m in layer.split("|")] for layer in CONTRACTS["layers"]["layers"]]


def test_every_import_runs_down_the_layers() -> None:
    layers = _layers()
    wrong = []
    for imp in _all_imports():
        source, target = _layer_index(imp.module, layers), _layer_index(imp.target, layers)
        if source is None or target is None or source[1] == target[1]:
            continue  # lakesql itself, a module outside the layers, or within one member
        if target[0] < source[0]:
            wrong.append(f"{imp.where}: {imp.module} imports {imp.target}, a higher layer")
        elif target[0] == source[0]:
            wrong.append(f"{imp.where}: {imp.module} imports {imp.target}, an independent sibling")
    assert not wrong, "imports against the layers of pyproject.toml:\n" + "\n".join(wrong)


def test_command_line_imports_no_layer_below_the_dbapi() -> None:
    contract = CONTRACTS["cli-uses-dbapi"]
    forbidden = contract["forbidden_modules"]
    wrong = [
        f"{imp.where}: {imp.module} imports {imp.target}"
        for imp in _all_imports()
        if imp.module.startswith("lakesql.cli")
        and any(imp.target == f or imp.target.startswith(f + ".") for f in forbidden)
    ]
    assert not wrong, "the command line must use the DB-API only:\n" + "\n".join(wrong)


def test_every_module_is_in_a_layer() -> None:
    layers = _layers()
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    outside = sorted(m for m in modules if m != "lakesql" and _layer_index(m, layers) is None)
    assert not outside, f"modules in no layer of pyproject.toml: {outside}"


def test_the_checker_finds_an_upward_import(tmp_path: Path) -> None:
    """The ast reader sees imports inside functions and skips TYPE_CHECKING blocks."""
    path = PACKAGE / "engine" / "dml.py"
    imports = {i.target for i in _imports(path)}
    assert "lakesql.storage.delta" in imports and "lakesql.context" in imports
    fake = tmp_path / "probe.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lakesql.session import Session\n"
        "def f():\n    from lakesql.ml import automl\n"
    )
    probe = list(_imports(fake, "lakesql.engine.probe"))
    probe = [i for i in probe if i.target.startswith("lakesql")]
    assert [i.target for i in probe] == ["lakesql.ml.automl"]
    layers = _layers()
    source, target = _layer_index(probe[0].module, layers), _layer_index(probe[0].target, layers)
    assert source is not None and target is not None and target[0] < source[0]


@pytest.mark.parametrize(
    "module", ["lakesql.engine.dml", "lakesql.engine.ddl", "lakesql.engine.transactions"]
)
def test_engine_imports_without_the_ml_area(module: str) -> None:
    code = (
        f"import sys, json, {module}\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith(('lakesql.ml', 'lakesql.features', 'lakesql.session')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_statement_of_ours_has_a_row_in_the_statement_table() -> None:
    from lakesql import statements
    from lakesql.dialect import expressions as lx

    ours = [
        cls
        for cls in vars(lx).values()
        if isinstance(cls, type)
        and issubclass(cls, lx.LakeStatement)
        and cls is not lx.LakeStatement
    ]
    assert len(ours) > 25
    missing = [cls.__name__ for cls in ours if cls not in statements.TABLE]
    assert not missing, f"statements without an executor: {missing}"
