"""A calibration applies only to the estimator versions it was fitted for."""

from __future__ import annotations

import json
from pathlib import Path

from hera_router.estimators.loader import CALIBRATION_FILE, matching_calibration


def write(folder: Path, for_versions: dict[str, str]) -> Path:
    folder.mkdir()
    record = {"for_versions": for_versions, "thresholds": {"kappa_base": 0.5, "verify_threshold": 0.7}}
    (folder / CALIBRATION_FILE).write_text(json.dumps(record), encoding="utf-8")
    return folder


def test_a_calibration_for_the_active_versions_applies(tmp_path: Path) -> None:
    versions = {"urc": "2", "dp": "5"}
    folder = write(tmp_path / "v3", versions)
    assert matching_calibration((3, str(folder)), versions) == {
        "kappa_base": 0.5,
        "verify_threshold": 0.7,
        "version": "3",
    }


def test_after_a_promotion_or_rollback_the_old_calibration_does_not_apply(tmp_path: Path) -> None:
    folder = write(tmp_path / "v3", {"urc": "2", "dp": "5"})
    assert matching_calibration((3, str(folder)), {"urc": "2", "dp": "6"}) is None
    assert matching_calibration(None, {"urc": "2"}) is None
    assert matching_calibration((4, str(tmp_path / "missing")), {"urc": "2"}) is None
