"""Replay on a profile stored in the database agrees with live runs through the real pipeline:
the same decisions (executor and branch of every step) and the same answers, request by request.
Then the ``eval`` commands on that profile: ``fit-baselines`` writes the files the policies load."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.runtime import Runtime
from hera_router.evaluation.live import LiveItem, live_system, run_live
from hera_router.routing.registry import create_policy
from hera_router.training.profiling import create_run, profile_run, run_config
from hera_router.training.replay import Replayer, load_profile, simulated_extension, simulated_latency
from tests.unit.evaluation.stubs import hashed_estimators

SEED = 7
POLICIES = ("all-slm", "all-llm", "random", "hera")


def test_replay_and_live_take_the_same_steps_and_reach_the_same_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        simulator={"seed": SEED},
        routing={"random_p_slm": 0.6},
        estimators={"node_budget": 24},
    )
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    run_id = create_run(runtime.sessions, "agreement", "sim", run_config(settings, family="mixed", n=8))
    profile_run(settings, runtime.sessions, run_id)
    profile = load_profile(settings, runtime.sessions, run_id)
    assert len(profile.trees) == 8
    assert {t.family for t in profile.trees} == {"lookup", "arithmetic"}

    estimators = hashed_estimators()
    strict = Replayer(profile, estimators, max_steps=settings.routing.max_steps)
    extended = Replayer(
        profile,
        estimators,
        max_steps=settings.routing.max_steps,
        latency=simulated_latency(settings),
        extension=simulated_extension(settings),
    )
    items = [LiveItem.of_tree(t) for t in profile.trees]
    with live_system(settings, estimator_source=lambda: estimators) as app:
        live = {name: run_live(app, items, name, timeout_s=300) for name in POLICIES}

    branches = set()
    for name in POLICIES:
        policy = create_policy(name, settings.routing)
        replayed, _ = extended.run(policy)
        on_tree, stats = strict.run(policy)
        by_key = {o.key: o for o in live[name]}
        assert len(by_key) == len(replayed) == 8
        for outcome in replayed:
            other = by_key[outcome.key]
            assert [(s.executor, s.branch) for s in outcome.steps] == [(s.executor, s.branch) for s in other.steps], (
                name,
                outcome.key,
            )
            assert (outcome.status, outcome.answer, outcome.score) == (other.status, other.answer, other.score)
            assert [s.tokens_in for s in outcome.steps] == [s.tokens_in for s in other.steps]
            assert sum(s.remote_cost_usd for s in outcome.steps) == pytest.approx(other.remote_cost_usd)
            branches.update(s.branch for s in outcome.steps)
        # Where the strict replay stayed on the profiled tree it is the same walk; the rest is counted.
        for outcome in on_tree:
            if outcome.status != "off_tree":
                assert outcome.answer == by_key[outcome.key].answer
        assert stats.off_tree == sum(o.status == "off_tree" for o in on_tree)
    assert {"urc", "sse", "sle", "cd", "fallback"} <= branches, "every HERA stage but SD decided some step"

    # The CLI on the same database: fit the baselines, then replay them.
    monkeypatch.setenv("HERA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HERA_SIMULATOR__SEED", str(SEED))
    from hera_router.cli import app as cli

    runner = CliRunner()
    fitted = runner.invoke(
        cli, ["eval", "fit-baselines", "--train-profile", str(run_id), "--eval-profile", str(run_id)]
    )
    assert fitted.exit_code == 0, fitted.output
    assert (tmp_path / "artifacts" / "baselines" / "hybridllm.json").is_file()
    assert (tmp_path / "artifacts" / "baselines" / "oracle-plan.json").is_file()
    out = tmp_path / "replay"
    replayed_cli = runner.invoke(
        cli,
        [
            "eval",
            "replay",
            "--profile",
            str(run_id),
            "-p",
            "oracle",
            "-p",
            "hybridllm",
            "-p",
            "all-llm",
            "--extend",
            "--out",
            str(out),
            "--resamples",
            "50",
        ],
    )
    assert replayed_cli.exit_code == 0, replayed_cli.output
    table = (out / "policies.md").read_text()
    assert "SIMULATED" in table
    assert "`oracle`" in table
    assert "`hybridllm`" in table
    runtime.close()
