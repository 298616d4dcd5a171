"""The report folder: every page and plot is written, and every page says the data is simulated."""

from __future__ import annotations

import json
from pathlib import Path

from hera_router.config import RoutingSettings
from hera_router.evaluation import compare, sweeps
from hera_router.evaluation.calibrate import calibrate, split_keys
from hera_router.evaluation.report import Replayed, write_report
from hera_router.training.baselines import fit_oracle
from hera_router.training.replay import Replayer
from tests.unit.evaluation.stubs import hashed_estimators, simulated_profile, simulated_records
from tests.unit.evaluation.test_replay import SEED, extension


def test_report_pages_plots_and_json(tmp_path: Path) -> None:
    profile = simulated_profile(simulated_records("mixed", 12, SEED), SEED, budget=64)
    fit_oracle(profile, tmp_path / "plan.json")
    routing = RoutingSettings(oracle_plan_path=tmp_path / "plan.json")
    replayer = Replayer(profile, hashed_estimators(), extension=extension())
    all_llm = profile.all_llm_costs()
    table = compare.evaluate(
        replayer, ["all-slm", "all-llm", "oracle", "hera", "hera-no-sd"], routing, all_llm, resamples=20
    )
    points = {"tau_req": sweeps.sweep(replayer, routing, "tau_req", (0.5, 0.7), all_llm, resamples=20)}
    validation, held_out = split_keys([t.key for t in profile.trees])
    calibrations = [
        calibrate(
            replayer,
            routing,
            all_llm,
            target="slm_share",
            goal=0.8,
            validation=validation,
            held_out=held_out,
            tau_grid=(0.5, 0.7, 0.9),
            kappa_grid=(0.6, 0.7, 0.8),
            resamples=20,
        )
    ]
    context = {
        "label": "SIMULATED",
        "command": "hera-router eval report --test",
        "generated": "now",
        "versions": {"python": "3"},
        "estimator_versions": {"urc": "1"},
        "train_profile": {"run_id": "t", "n": 1, "family": "lookup"},
        "eval_profile": {"run_id": "e", "requests_used": 12, "family": "mixed"},
        "families": ["arithmetic", "lookup"],
        "train_family": "lookup",
        "extension_steps": 0,
        "seconds": 1,
        "hybridllm": {"threshold": 0.5},
        "oracle": {"accuracy": 1, "slm_usage": 0.5, "target_accuracy": 0.9, "all_llm_accuracy": 1},
    }
    out = tmp_path / "report"
    out.mkdir()
    replayed = Replayed(table, points, calibrations, 0, [table.rows[-1].metrics], {"tau_req": points["tau_req"]})
    write_report(out, context, replayed, [], [], {})
    pages = sorted(p.name for p in out.glob("*.md"))
    assert pages == ["README.md", "ablations.md", "calibration.md", "estimators.md", "policies.md", "sweeps.md"]
    for page in out.glob("*.md"):
        assert "SIMULATED" in page.read_text(), page.name
    assert (out / "sweep-tau-req.png").stat().st_size > 10_000
    assert (out / "policies.png").stat().st_size > 10_000
    data = json.loads((out / "results.json").read_text())
    assert [row["policy"] for row in data["policies"]] == ["all-slm", "all-llm", "oracle", "hera", "hera-no-sd"]
    assert data["policies"][1]["cost"] == 1.0
    assert "`hera-no-sd`" in (out / "ablations.md").read_text()
