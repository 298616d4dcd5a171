"""Where a trained estimator version lives on disk, and how it gets there atomically.

``<artifacts>/estimators/<name>/v<version>/`` holds ``estimator.json`` (what it is: name, variant,
backbone, hyper-parameters, validation metrics) plus whatever the variant saves (a LoRA adapter, a
small torch head). A trainer writes into a staging folder next to the target and renames it into
place once the registry has handed out the version number, so a crash leaves either no version
folder or a complete one, never half a model that a router could load.

The registry stores a version's folder relative to the data dir (``HERA_DATA_DIR``) when it lies
under it, else as an absolute path (:func:`stored_path`), so any worker with the same data dir
finds it whatever directory it was started in. Rows written before that stored the path relative
to the directory ``bootstrap`` ran in; :func:`resolve_path` still finds them (data dir, then the
working directory, then the ``estimators/<name>/v<N>`` tail under the artifact dir).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hera_router.config import Settings

META_FILE = "estimator.json"


def estimator_root(artifacts: Path, name: str) -> Path:
    return artifacts / "estimators" / name


def version_dir(artifacts: Path, name: str, version: int) -> Path:
    return estimator_root(artifacts, name) / f"v{version}"


def new_staging_dir(artifacts: Path, name: str) -> Path:
    """An empty folder on the same filesystem as the final one (so the rename is atomic)."""
    root = estimator_root(artifacts, name)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=root))


def publish(staging: Path, artifacts: Path, name: str, version: int) -> Path:
    """Move a complete staging folder to ``v<version>``.

    A folder already there is an orphan: version numbers come from the registry, so it can only be
    left over from an attempt whose database transaction rolled back after the rename.
    """
    target = version_dir(artifacts, name, version)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str), encoding="utf-8")


def stored_path(folder: Path, data_dir: Path) -> str:
    """What the registry stores for ``folder``: relative to ``data_dir`` when under it, else absolute."""
    absolute = Path(folder).resolve()
    try:
        return absolute.relative_to(Path(data_dir).resolve()).as_posix()
    except ValueError:
        return str(absolute)


def resolve_path(stored: str, data_dir: Path, artifacts: Path) -> Path:
    """The folder a registry row names, wherever this process was started.

    Absolute paths are taken as they are. A relative one is tried against the data dir (how rows
    are written now), then the working directory (rows written before: relative to where
    ``bootstrap`` ran), then as the ``estimators/<name>/v<N>`` tail under ``artifacts`` (a legacy
    row read from another directory). None existing: the data-dir reading, so that the error
    names the place a current row would be.
    """
    path = Path(stored)
    if path.is_absolute():
        return path
    candidates = [Path(data_dir) / path, path]
    parts = path.parts
    if "estimators" in parts:
        start = len(parts) - 1 - parts[::-1].index("estimators")
        candidates.append(Path(artifacts).joinpath(*parts[start:]))
    return next((c for c in candidates if c.exists()), candidates[0])


def folder_of(stored: str, settings: Settings) -> Path:
    """:func:`resolve_path` with the data dir and artifact dir of ``settings``."""
    return resolve_path(stored, settings.data_dir, settings.artifacts)


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / META_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} is not an estimator version: {META_FILE} is missing") from None
    return meta
