"""The model registry, kept in the warehouse catalog so every process sees the same one.

Files of version n live in ``<warehouse>/_models/<model>/v<n>/``. A version is published by
renaming its finished temporary folder into place and then writing the catalog documents under a
lock; the model document listing the version is the commit point, so a TRAIN that fails or is
interrupted before it registers nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakesql import errors as E
from lakesql.catalog.warehouse import validate_name

__all__ = ["validate_name"]

if TYPE_CHECKING:
    from lakesql.catalog.warehouse import Warehouse

MODELS = "models"
VERSIONS = "model_versions"
TRIALS = "trials"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def models_root(wh: Warehouse) -> Path:
    return wh.root / "_models"


def version_dir(wh: Warehouse, model: str, version: int) -> Path:
    return models_root(wh) / validate_name(model, "model name") / f"v{int(version)}"


@contextlib.contextmanager
def locked(wh: Warehouse) -> Iterator[None]:
    """An exclusive lock over registry updates (across processes)."""
    folder = wh.root / "_lakesql"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "models.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


STAGING_PREFIX = ".tmp-"
_LIVE = ".lock"  # held (flock) by the process training into a staging folder


@contextlib.contextmanager
def staging(wh: Warehouse, model: str) -> Iterator[Path]:
    """A fresh temporary folder for a version being trained, locked while this process lives.

    The lock tells :func:`vacuum` that the folder belongs to a running TRAIN; a folder whose lock
    can be taken was left by a process that died. The folder is removed on exit unless
    :func:`publish` renamed it into place.
    """
    base = models_root(wh) / validate_name(model, "model name")
    # Created and locked under the registry lock, so VACUUM never sees it unlocked; not while
    # another TRAIN removes the empty model folder either.
    with locked(wh):
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base))
        live = open(path / _LIVE, "a+")  # held until the block ends
        fcntl.flock(live, fcntl.LOCK_EX)
    try:
        yield path
    finally:  # published: renamed away; otherwise nothing of it is kept
        live.close()
        shutil.rmtree(path, ignore_errors=True)
        with locked(wh):
            if get_model(wh, model) is None and base.is_dir() and not any(base.iterdir()):
                base.rmdir()


def _abandoned(folder: Path) -> bool:
    """Whether a staging folder's TRAIN is gone (its lock is free, or it never took one)."""
    try:
        with open(folder / _LIVE, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(f, fcntl.LOCK_UN)
            return True
    except FileNotFoundError:  # the folder went away meanwhile (published or cleaned up)
        return False


def get_model(wh: Warehouse, name: str) -> dict[str, Any] | None:
    return wh.get_doc(MODELS, validate_name(name, "model name"))


def require_model(wh: Warehouse, name: str) -> dict[str, Any]:
    doc = get_model(wh, name)
    if doc is None:
        hint = E.suggest(name, wh.docs(MODELS)) or "SHOW MODELS lists the models"
        raise E.UnknownObjectError(f"model {name!r} does not exist", hint=hint)
    return doc


def resolve_version(
    wh: Warehouse, name: str, version: int | None = None, alias: str | None = None
) -> int:
    """The version a model reference means: an explicit version, an alias, or alias 'default'."""
    doc = require_model(wh, name)
    if version is not None:
        if version not in doc["versions"]:
            raise E.UnknownObjectError(
                f"model {name!r} has no version {version}",
                hint=f"versions: {', '.join(map(str, doc['versions']))}",
            )
        return version
    alias = (alias or "default").lower()
    aliases = doc.get("aliases", {})
    if alias not in aliases:
        raise E.UnknownObjectError(
            f"model {name!r} has no alias {alias!r}", hint=f"aliases: {', '.join(sorted(aliases))}"
        )
    return int(aliases[alias])


def get_version(wh: Warehouse, name: str, version: int) -> dict[str, Any]:
    doc = wh.get_doc(VERSIONS, f"{validate_name(name)}__v{int(version)}")
    if doc is None:
        raise E.UnknownObjectError(f"model {name!r} has no version {version}")
    return doc


def get_trials(wh: Warehouse, name: str, version: int) -> list[dict[str, Any]]:
    doc = wh.get_doc(TRIALS, f"{validate_name(name)}__v{int(version)}") or {}
    trials: list[dict[str, Any]] = doc.get("trials", [])
    return trials


def publish(
    wh: Warehouse,
    name: str,
    staged: Path,
    version_doc: dict[str, Any],
    trials: list[dict[str, Any]],
    *,
    replace: bool,
) -> int:
    """Register the staged folder as the next version of `name`; returns the version number."""
    name = validate_name(name, "model name")
    with locked(wh):
        doc = get_model(wh, name)
        if doc is not None and not replace:
            for key in ("task", "label"):
                if doc[key] != version_doc[key]:
                    raise E.ObjectExistsError(
                        f"model {name!r} predicts {doc['label']!r} ({doc['task']}); this TRAIN predicts {version_doc['label']!r} ({version_doc['task']})",
                        hint="use TRAIN OR REPLACE AUTOML to change what the model predicts, or another model name",
                    )
        existing = doc["versions"] if doc else []
        on_disk = [int(p.name[1:]) for p in staged.parent.glob("v*") if p.name[1:].isdigit()]
        version = max([0, *existing, *on_disk]) + 1
        target = staged.parent / f"v{version}"
        version_doc = {**version_doc, "version": version, "files": str(target.relative_to(wh.root))}
        (staged / "version.json").write_text(json.dumps(version_doc, indent=2, default=str))
        (staged / _LIVE).unlink(missing_ok=True)  # the registry lock covers it from here on
        os.rename(staged, target)
        wh.put_doc(TRIALS, f"{name}__v{version}", {"trials": trials})
        wh.put_doc(VERSIONS, f"{name}__v{version}", version_doc)
        if doc is None or (
            replace and (doc["task"] != version_doc["task"] or doc["label"] != version_doc["label"])
        ):
            created = doc["created_at"] if doc else now()
            old_versions = doc["versions"] if doc else []
            old_aliases = doc.get("aliases", {}) if doc else {}
            doc = {
                "name": name,
                "created_at": created,
                "versions": old_versions,
                "aliases": old_aliases,
                "default_pinned": False,
            }
        doc.update(task=version_doc["task"], label=version_doc["label"], updated_at=now())
        doc["versions"] = [*doc["versions"], version]
        doc["aliases"] = {**doc.get("aliases", {}), "latest": version}
        if not doc.get("default_pinned"):
            doc["aliases"]["default"] = version
        tables = set(doc.get("feature_tables", []))
        tables.update(f["table"] for f in version_doc.get("feature_tables", []))
        doc["feature_tables"] = sorted(tables)
        wh.put_doc(MODELS, name, doc)
    return version


def set_alias(wh: Warehouse, name: str, alias: str, version: int | None) -> None:
    """Point `alias` at `version`, or remove it (version None)."""
    alias = validate_name(alias, "alias")
    with locked(wh):
        doc = require_model(wh, name)
        if alias == "latest":
            raise E.ProgrammingError(
                "alias 'latest' always points at the newest version and cannot be moved"
            )
        aliases = dict(doc.get("aliases", {}))
        if version is None:
            if alias not in aliases:
                raise E.UnknownObjectError(
                    f"model {name!r} has no alias {alias!r}",
                    hint=f"aliases: {', '.join(sorted(aliases))}",
                )
            del aliases[alias]
            if alias == "default":  # back to following the newest version
                aliases["default"] = max(doc["versions"])
                doc["default_pinned"] = False
        else:
            resolve_version(wh, name, version)
            aliases[alias] = version
            if alias == "default":
                doc["default_pinned"] = True
        doc["aliases"] = aliases
        doc["updated_at"] = now()
        wh.put_doc(MODELS, name, doc)


def drop(wh: Warehouse, name: str, version: int | None) -> None:
    """Drop a whole model, or one version of it."""
    name = validate_name(name, "model name")
    with locked(wh):
        doc = require_model(wh, name)
        versions = list(doc["versions"]) if version is None else [version]
        if version is not None and version not in doc["versions"]:
            raise E.UnknownObjectError(f"model {name!r} has no version {version}")
        remaining = [v for v in doc["versions"] if v not in versions]
        if remaining:
            doc["versions"] = remaining
            doc["aliases"] = {a: v for a, v in doc.get("aliases", {}).items() if v in remaining}
            doc["aliases"]["latest"] = max(remaining)
            if "default" not in doc["aliases"]:
                doc["aliases"]["default"] = max(remaining)
                doc["default_pinned"] = False
            wh.put_doc(MODELS, name, doc)
        else:
            wh.delete_doc(MODELS, name)
        for v in versions:
            wh.delete_doc(VERSIONS, f"{name}__v{v}")
            wh.delete_doc(TRIALS, f"{name}__v{v}")
            shutil.rmtree(version_dir(wh, name, v), ignore_errors=True)
        if not remaining:
            shutil.rmtree(models_root(wh) / name, ignore_errors=True)


def vacuum(wh: Warehouse, name: str | None, *, dry_run: bool) -> list[dict[str, str]]:
    """Remove what interrupted TRAINs and DROPs left behind; returns one row per finding.

    Found, for one model or (name None) the whole registry: staging folders of TRAINs that are no
    longer running, version folders and version/trial documents that no model lists, and
    half-written catalog documents. A registered version whose folder is missing is reported
    (not removed): DROP MODEL ... VERSION n removes it. Nothing registered is ever deleted.
    """
    root = models_root(wh)
    if name is not None:
        name = validate_name(name, "model name")
        if get_model(wh, name) is None and not (root / name).is_dir():
            raise E.UnknownObjectError(
                f"model {name!r} does not exist and left no files",
                hint=E.suggest(name, wh.docs(MODELS)) or "SHOW MODELS lists the models",
            )
    found: list[dict[str, str]] = []
    removed = "would remove" if dry_run else "removed"

    def note(model: str, path: Path, reason: str, action: str = removed) -> None:
        found.append(
            {
                "model": model,
                "path": str(path.relative_to(wh.root)),
                "reason": reason,
                "action": action,
            }
        )

    with locked(wh):
        models = wh.docs(MODELS)
        names = (
            [name]
            if name is not None
            else sorted({*models, *(p.name for p in root.glob("*") if p.is_dir())})
        )
        for model in names:
            listed = set(models.get(model, {}).get("versions", []))
            folder = root / model
            for path in sorted(folder.glob(STAGING_PREFIX + "*")):
                if path.is_dir() and _abandoned(path):
                    note(model, path, "staging folder of a TRAIN that did not finish")
                    if not dry_run:
                        shutil.rmtree(path, ignore_errors=True)
            for path in sorted(folder.glob("v*")):
                if path.name[1:].isdigit() and int(path.name[1:]) not in listed:
                    note(model, path, "version folder that no registered version owns")
                    if not dry_run:
                        shutil.rmtree(path, ignore_errors=True)
            for v in sorted(listed):
                if not version_dir(wh, model, v).is_dir():
                    note(
                        model,
                        version_dir(wh, model, v),
                        f"registered version {v} has no files: DROP MODEL {model} VERSION {v}",
                        "reported",
                    )
            gone = {Path(wh.root / f["path"]) for f in found if f["action"] != "reported"}
            if model not in models and folder.is_dir():
                if not any(p for p in folder.iterdir() if p not in gone):
                    note(model, folder, "empty folder of an unregistered model")
                    if not dry_run:
                        shutil.rmtree(folder, ignore_errors=True)
        for kind in (VERSIONS, TRIALS):
            docs = wh._doc_dir(kind)
            for path in sorted(docs.glob("*.json")):
                model, _, v = path.stem.rpartition("__v")
                if path.name.startswith(STAGING_PREFIX):
                    if name is None:
                        note("", path, "half-written catalog document")
                        if not dry_run:
                            path.unlink(missing_ok=True)
                    continue
                if (name is None or model == name) and v.isdigit():
                    if int(v) not in models.get(model, {}).get("versions", []):
                        note(model, path, f"{kind} document of an unregistered version")
                        if not dry_run:
                            path.unlink(missing_ok=True)
        if name is None:
            for path in sorted(wh._doc_dir(MODELS).glob(STAGING_PREFIX + "*.json")):
                note("", path, "half-written catalog document")
                if not dry_run:
                    path.unlink(missing_ok=True)
    return found


# -- system tables ----------------------------------------------------------------------------


def models_table(wh: Warehouse) -> pa.Table:
    rows = []
    for name, doc in sorted(wh.docs(MODELS).items()):
        rows.append(
            {
                "name": name,
                "task": doc["task"],
                "label": doc["label"],
                "latest_version": max(doc["versions"]),
                "versions": len(doc["versions"]),
                "aliases": sorted(f"{a}={v}" for a, v in doc.get("aliases", {}).items()),
                "feature_tables": doc.get("feature_tables", []),
                "created_at": doc.get("created_at"),
                "updated_at": doc.get("updated_at"),
            }
        )
    schema = pa.schema(
        [
            ("name", pa.string()),
            ("task", pa.string()),
            ("label", pa.string()),
            ("latest_version", pa.int64()),
            ("versions", pa.int64()),
            ("aliases", pa.list_(pa.string())),
            ("feature_tables", pa.list_(pa.string())),
            ("created_at", pa.string()),
            ("updated_at", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _registered(wh: Warehouse) -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for name, doc in sorted(wh.docs(MODELS).items()):
        for v in doc["versions"]:
            out.append((name, v, doc))
    return out


def versions_table(wh: Warehouse) -> pa.Table:
    rows = []
    for name, v, mdoc in _registered(wh):
        vd = wh.get_doc(VERSIONS, f"{name}__v{v}") or {}
        best = vd.get("best_trial", {})
        rows.append(
            {
                "model": name,
                "version": v,
                "aliases": sorted(a for a, av in mdoc.get("aliases", {}).items() if av == v),
                "created_at": vd.get("created_at"),
                "task": vd.get("task"),
                "label": vd.get("label"),
                "metric": vd.get("metric"),
                "test_metric": (vd.get("metrics", {}).get("test") or {}).get(
                    vd.get("metric", ""), None
                ),
                "valid_metric": best.get("valid_metric"),
                "best_estimator": best.get("learner"),
                "trials": vd.get("trial_count"),
                "train_rows": vd.get("split", {}).get("rows", {}).get("train"),
                "valid_rows": vd.get("split", {}).get("rows", {}).get("valid"),
                "test_rows": vd.get("split", {}).get("rows", {}).get("test"),
                "sources": [f"{s['table']}@v{s['version']}" for s in vd.get("sources", [])],
                "feature_tables": [
                    f"{s['table']}@v{s['version']}" for s in vd.get("feature_tables", [])
                ],
                "reproduces": vd.get("reproduces"),
            }
        )
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("version", pa.int64()),
            ("aliases", pa.list_(pa.string())),
            ("created_at", pa.string()),
            ("task", pa.string()),
            ("label", pa.string()),
            ("metric", pa.string()),
            ("test_metric", pa.float64()),
            ("valid_metric", pa.float64()),
            ("best_estimator", pa.string()),
            ("trials", pa.int64()),
            ("train_rows", pa.int64()),
            ("valid_rows", pa.int64()),
            ("test_rows", pa.int64()),
            ("sources", pa.list_(pa.string())),
            ("feature_tables", pa.list_(pa.string())),
            ("reproduces", pa.int64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def trials_table(wh: Warehouse) -> pa.Table:
    rows = []
    for name, v, _ in _registered(wh):
        for t in get_trials(wh, name, v):
            rows.append(
                {
                    "model": name,
                    "version": v,
                    "trial": t["trial"],
                    "estimator": t["learner"],
                    "config": json.dumps(t["config"], sort_keys=True),
                    "valid_loss": t["valid_loss"],
                    "valid_metric": t.get("valid_metric"),
                    "train_seconds": t.get("train_seconds"),
                    "wall_clock_seconds": t.get("wall_clock_seconds"),
                    "is_best": bool(t.get("is_best")),
                    "notebook": t.get("notebook"),
                }
            )
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("version", pa.int64()),
            ("trial", pa.int64()),
            ("estimator", pa.string()),
            ("config", pa.string()),
            ("valid_loss", pa.float64()),
            ("valid_metric", pa.float64()),
            ("train_seconds", pa.float64()),
            ("wall_clock_seconds", pa.float64()),
            ("is_best", pa.bool_()),
            ("notebook", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
