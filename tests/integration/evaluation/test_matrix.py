"""``hera-router eval matrix`` end to end on one tiny world: bootstrap, baselines, replay of every
registered policy, the equal-share comparison, and the files it writes (all SIMULATED)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hera_router.cli import app
from hera_router.evaluation.stats import interpolate
from hera_router.routing.hera import VARIANTS
from hera_router.routing.registry import policy_names

TINY = {
    "HERA_ESTIMATORS__ENCODER_MIN_STEPS": "4",
    "HERA_ESTIMATORS__ENCODER_EPOCHS": "1",
    "HERA_ESTIMATORS__VALIDATION_FRACTION": "0.3",
    "HERA_ESTIMATORS__ENCODER_EARLY_STOPPING_FRACTION": "0",
    "HERA_ESTIMATORS__URC_REQUESTS": "24",
    "HERA_ESTIMATORS__CALIBRATION_REQUESTS": "6",
}


def test_matrix_on_one_tiny_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TINY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HERA_DATA_DIR", str(tmp_path / "data"))
    out, workdir = tmp_path / "matrix", tmp_path / "work"
    args = [
        "eval",
        "matrix",
        "--worlds",
        "weak-logprob",
        "--seeds",
        "3",
        "--train-n",
        "12",
        "--eval-n",
        "6",
        "--budget",
        "24",
        "--resamples",
        "50",
        "--workdir",
        str(workdir),
        "--out",
        str(out),
    ]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    page = (out / "README.md").read_text(encoding="utf-8")
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (out / "weak-logprob-seed3.png").stat().st_size > 0
    assert page.count("SIMULATED") >= 4
    assert data["label"] == "SIMULATED"
    [world] = data["worlds"]
    assert (world["preset"], world["seed"]) == ("weak-logprob", 3)
    assert {p["policy"] for p in world["policies"]} == set(policy_names())
    assert {r["policy"] for r in data["mean"]} == set(policy_names())
    for name in policy_names():
        assert f"`{name}`" in page
    hera = next(p for p in world["policies"] if p["policy"] == "hera")
    assert hera["counted"] == 6
    assert hera["decision_ms_per_step"] is not None
    assert {"arithmetic", "lookup"} == set(hera["accuracy_by_family"])
    # Equal share: every HERA variant against HybridLLM on its swept threshold and Random at its share.
    assert {e["policy"] for e in world["equal_share"]} == set(VARIANTS)
    for row in [*world["equal_share"], *data["mean_equal_share"]]:
        for key in ("slm_share", "hybrid_accuracy", "random_accuracy", "delta_hybrid", "delta_random"):
            assert row[key] is not None, (row["policy"], key)
    shares = [p["slm_usage"] for p in world["hybridllm_sweep"]]
    assert min(shares) == 0.0, "the sweep reaches All-LLM"
    assert max(shares) == 1.0, "the sweep reaches All-SLM"
    assert "HERA − HybridLLM@share" in page
    assert "HERA − Random@share" in page

    # A second run reuses the world's bootstrap and profiles.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "reusing the bootstrap" in again.output


def test_interpolation_at_a_share() -> None:
    curve = [(0.0, 0.9), (0.5, 0.7), (1.0, 0.4)]
    accuracy, in_range = interpolate(0.25, curve)
    assert accuracy == pytest.approx(0.8)
    assert in_range
    assert interpolate(1.0, curve) == (0.4, True)
    assert interpolate(0.75, curve[:2]) == (0.7, False)
