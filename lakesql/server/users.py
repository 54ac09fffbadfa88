"""The users of a server and their roles, from a file the warehouse's owner keeps.

A TOML file, one table per user, holding the role and the SCRAM-SHA-256 verifier in
PostgreSQL's form, never a password:

    [users.alice]
    role = "reader"
    verifier = "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"

`lakesql users add NAME --role reader --users FILE` writes an entry (it asks for the password).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lakesql import errors as E
from lakesql.context import ROLES
from lakesql.server.scram import Verifier


@dataclass(frozen=True)
class User:
    name: str
    role: str
    verifier: Verifier


def load(path: str | os.PathLike[str]) -> dict[str, User]:
    """The users of file `path`, by name.

    Raises:
        OptionError: the file cannot be read, or an entry is not a valid user.
    """
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise E.OptionError(f"cannot read the users file {os.fspath(path)!r}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise E.OptionError(f"the users file {os.fspath(path)!r} is not valid TOML: {e}") from e
    users: dict[str, User] = {}
    for name, entry in (doc.get("users") or {}).items():
        where = f"users file {os.fspath(path)!r}, user {name!r}"
        if not isinstance(entry, dict):
            raise E.OptionError(f"{where}: expected a table with role and verifier")
        role = entry.get("role")
        if role not in ROLES:
            raise E.OptionError(
                f"{where}: unknown role {role!r}", hint="valid roles: " + ", ".join(ROLES)
            )
        try:
            verifier = Verifier.from_text(str(entry.get("verifier", "")))
        except ValueError as e:
            raise E.OptionError(
                f"{where}: {e}", hint="write it with `lakesql users add NAME --role ROLE`"
            ) from e
        users[name] = User(name, role, verifier)
    return users


def add(path: str | os.PathLike[str], name: str, role: str, password: str) -> None:
    """Add or replace user `name` in file `path` (created, readable by its owner only).

    Raises:
        OptionError: an unknown role, an empty name or password, or a file that is not valid.
    """
    if role not in ROLES:
        raise E.OptionError(f"unknown role {role!r}", hint="valid roles: " + ", ".join(ROLES))
    if not name or any(ord(c) < 32 for c in name):
        raise E.OptionError("a user name must be non-empty, without control characters")
    if not password:
        raise E.OptionError("the password is empty")
    target = Path(path)
    users = load(target) if target.exists() else {}
    users[name] = User(name, role, Verifier.from_password(password))
    lines = [
        "# lakesql server users: role and SCRAM-SHA-256 verifier (no passwords). Keep it private.",
        "",
    ]
    for user in users.values():
        lines += [
            f"[users.{json.dumps(user.name)}]",
            f"role = {json.dumps(user.role)}",
            f"verifier = {json.dumps(user.verifier.to_text())}",
            "",
        ]
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, target)
