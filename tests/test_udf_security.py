"""Python UDFs come from the UDF folder fixed when the connection starts, and every rule on a
CREATE FUNCTION target is checked before anything is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import lakesql
from lakesql.udfs import check_target, resolve

SIGNAL = "module code ran"


def _module(folder: Path, body: str) -> str:
    """A module with a unique name (modules are cached by name) in `folder`; its name."""
    name = f"m_{uuid.uuid4().hex[:10]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return name


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "udfs"
    path.mkdir()
    return path


def test_this_is_refused_before_it_is_imported(tmp_path: Path) -> None:
    """`AS 'this:s'` printed the Zen of Python in the server log: the module was imported first."""
    code = textwrap.dedent(
        f"""
        import sys, lakesql
        con = lakesql.connect({str(tmp_path / "wh")!r}, udfs={str(tmp_path / "none")!r})
        try:
            con.execute("CREATE FUNCTION s(x VARCHAR) RETURNS VARCHAR LANGUAGE PYTHON AS 'this:s'")
        except lakesql.ProgrammingError as e:
            print("refused:", e)
        print("imported:", "this" in sys.modules)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(lakesql.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert "refused:" in out.stdout, out.stdout + out.stderr
    assert "standard-library" in out.stdout
    assert "imported: False" in out.stdout
    assert "Zen of Python" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    "target,why",
    [
        ("os:system", "standard-library"),
        ("this:s", "standard-library"),
        ("builtins:exec", "standard-library"),
        ("importlib:import_module", "standard-library"),
        ("pytest:main", "not a module of the UDF folder"),  # installed, not in the folder
        ("lakesql:connect", "not a module of the UDF folder"),
        ("os.path:join", "invalid function target"),
        (".m:f", "invalid function target"),
        ("..m:f", "invalid function target"),
        ("../m:f", "invalid function target"),
        ("/tmp/m:f", "invalid function target"),
        ("m:f()", "invalid function target"),
        ("m:__import__", "not a module of the UDF folder"),
        ("_private:f", "private"),
        ("m", "invalid function target"),
    ],
)
def test_targets_outside_the_folder_are_refused_without_import(
    folder: Path, target: str, why: str
) -> None:
    modules = set(sys.modules)
    with pytest.raises(lakesql.ProgrammingError, match=why):
        check_target(target, folder)
    with pytest.raises(lakesql.ProgrammingError, match=why):
        resolve(target, folder)
    assert set(sys.modules) - modules == set()


def test_a_stdlib_name_in_the_folder_is_refused_unimported(folder: Path) -> None:
    (folder / "json.py").write_text(f"print({SIGNAL!r})\ndef f(x):\n    return x\n")
    with pytest.raises(lakesql.ProgrammingError, match="standard-library"):
        resolve("json:f", folder)


def test_only_functions_defined_in_the_module(folder: Path) -> None:
    name = _module(
        folder,
        """
        import os
        from os import system
        from pyarrow.compute import add as plus


        class Ops:
            @staticmethod
            def twice(x):
                return x


        def ok(x):
            return x
        """,
    )
    assert resolve(f"{name}:ok", folder).__name__ == "ok"
    assert resolve(f"{name}:Ops.twice", folder).__name__ == "twice"
    for attr, why in (
        ("os.system", "not a class defined there"),
        ("system", "not a function defined in module"),
        ("plus", "not a function defined in module"),
        ("os", "not a function defined in module|not callable"),
    ):
        with pytest.raises(lakesql.ProgrammingError, match=why):
            resolve(f"{name}:{attr}", folder)


def test_a_symlink_out_of_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text(f"print({SIGNAL!r})\ndef f(x):\n    return x\n")
    (folder / "linked.py").symlink_to(outside)
    with pytest.raises(lakesql.ProgrammingError, match="leads out of the UDF folder"):
        resolve("linked:f", folder)


def test_the_udf_folder_cannot_be_set_with_sql(folder: Path, tmp_path: Path) -> None:
    name = _module(folder, "def f(x):\n    return x\n")
    other = tmp_path / "other"
    other.mkdir()
    evil = _module(other, f"print({SIGNAL!r})\ndef f(x):\n    return x\n")
    con = lakesql.connect(str(tmp_path / "wh"), udfs=str(folder))
    try:
        cur = con.cursor()
        for sql in (
            f"SET lakesql.udfs = '{other}'",
            f"SET lakesql.udfs TO '{other}'",
            "SET lakesql.udfs = ''",
        ):
            with pytest.raises(lakesql.NotSupportedError, match="fixed when the connection starts"):
                cur.execute(sql)
        cur.execute("RESET lakesql.udfs")  # nothing to reset: it keeps its connect value
        with pytest.raises(lakesql.ProgrammingError, match="not a module of the UDF folder"):
            cur.execute(f"CREATE FUNCTION g(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{evil}:f'")
        cur.execute(f"CREATE FUNCTION g(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{name}:f'")
        assert cur.execute("SELECT g(4)").fetchall() == [(4,)]
        with pytest.raises(lakesql.NotSupportedError, match="warehouse"):
            cur.execute(f"SET lakesql.warehouse = '{other}'")
    finally:
        con.close()


def test_the_udf_folder_is_fixed_as_an_absolute_path(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative folder is resolved when the connection starts: a later chdir changes nothing."""
    name = _module(folder, "def f(x):\n    return x\n")
    monkeypatch.chdir(folder.parent)
    con = lakesql.connect(str(tmp_path / "wh"), udfs="udfs")
    try:
        elsewhere = tmp_path / "elsewhere"
        (elsewhere / "udfs").mkdir(parents=True)
        monkeypatch.chdir(elsewhere)
        con.execute(f"CREATE FUNCTION g(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{name}:f'")
        assert con.execute("SELECT g(3)").fetchall() == [(3,)]
    finally:
        con.close()
