"""Where a trained estimator version lives on disk, and how it gets there atomically.

``<artifacts>/estimators/<name>/v<version>/`` holds ``estimator.json`` (what it is: name, variant,
backbone, hyper-parameters, validation metrics) plus whatever the variant saves (a LoRA adapter, a
small torch head). A trainer writes into a staging folder next to the target and renames it into
place once the registry has handed out the version number, so a crash leaves either no version
folder or a complete one, never half a model that a router could load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

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


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / META_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} is not an estimator version: {META_FILE} is missing") from None
    return meta
