"""`hera-router run --policy hera` (the README's first command): bootstraps when no estimators are
active, routes with HERA and prints the per-branch breakdown. SIMULATED world.

The five-minute bootstrap itself is replaced by registering the session's tiny trained estimators
(the bootstrap is exercised in tests/integration/estimators); what is tested is the wiring: the
check, the call, and a run that then finds and uses the estimators.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hera_router import cli
from hera_router.cli import base as cli_base
from hera_router.db.models import Decision
from hera_router.db.repositories import DecisionRepository, EstimatorVersionRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.simulator.generate import generate, write_jsonl
from tests.integration.conftest import TrainedEstimators


@pytest.mark.timeout(600)
def test_run_with_hera_bootstraps_once_then_routes_and_breaks_decisions_down_by_branch(
    trained_estimators: TrainedEstimators, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = {**trained_estimators.default_set(), "divergence": trained_estimators.get("divergence")}
    requests = tmp_path / "requests.jsonl"
    write_jsonl(generate("lookup", 4, runtime.settings.simulator.seed), requests)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HERA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bootstraps: list[Path] = []

    def fake_bootstrap(target: Runtime) -> None:
        bootstraps.append(target.settings.data_dir)
        with session_scope(target.sessions) as session:
            registry = EstimatorVersionRepository(session)
            for name, result in trained.items():
                row = registry.add_candidate(name, str(result.path), metrics=dict(result.metrics))
                registry.promote(name, row.version)

    monkeypatch.setattr(cli_base, "bootstrap_with_progress", fake_bootstrap)
    runner = CliRunner()
    first = runner.invoke(cli.app, ["run", str(requests), "--policy", "hera", "--policy", "all-llm"])
    assert first.exit_code == 0, first.output
    assert bootstraps == [data_dir]
    assert "running `hera-router bootstrap` first" in first.output
    assert "Decisions per branch" in first.output
    assert "simulated" in first.output

    second = runner.invoke(cli.app, ["run", str(requests), "--policy", "hera"])
    assert second.exit_code == 0, second.output
    assert bootstraps == [data_dir], "estimators were active: no second bootstrap"

    check = Runtime(cli.load_settings())
    with session_scope(check.sessions) as session:
        rows = session.scalars(select(Decision).where(Decision.policy == "hera")).all()
        counts = DecisionRepository(session).branch_counts(sorted({row.request_id for row in rows}))
    check.close()
    # One decision row per step; a span's copies are steps, not decisions.
    assert sum(steps for _, steps in counts.values()) == len(rows)
    assert sum(decisions for decisions, _ in counts.values()) == sum("span_origin" not in r.scores for r in rows)
    assert len({row.request_id for row in rows}) == 8  # two runs of four requests
    assert all(row.estimator_versions == dict.fromkeys(trained, "1") for row in rows)
    branches = {row.branch for row in rows}
    assert branches <= {"urc", "sse", "sle", "cd", "sd", "fallback", "verify"}
    breakdown = first.output[first.output.index("Decisions per branch") :]
    assert all(branch in breakdown for branch in branches)
