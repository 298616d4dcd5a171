"""The bootstrap plan (calls, tokens, dollars per backend, counted without a model call), the
spending limit that stops a profile run between requests, and when bootstrap may start unattended.
Simulated world."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_router.backends.base import Generation, GenerationParams, Message
from hera_router.config import Settings, load_settings
from hera_router.db.enums import Executor
from hera_router.db.migrate import upgrade
from hera_router.db.runtime import Runtime
from hera_router.simulator.backend import SimBackend
from hera_router.training.bootstrap import (
    SpendingLimit,
    bootstrap_stages,
    plan_bootstrap,
    unattended_problem,
    uses_real_backends,
)
from hera_router.training.profiling import create_run, load_trees, profile_run


class Counting:
    def __init__(self, backend: SimBackend) -> None:
        self.backend, self.name, self.model = backend, backend.name, backend.model
        self.calls = self.prompt_tokens = 0

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        generation = self.backend.generate(messages, params)
        self.calls += 1
        self.prompt_tokens += generation.prompt_tokens
        return generation


def small(tmp_path: Path, **estimators: object) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        estimators={
            "profile_family": "mixed",
            "profile_requests": 8,
            "urc_requests": 5,
            "calibration_requests": 4,
            **estimators,
        },
    )


@pytest.mark.parametrize("shape", ["sampled", "full"])
def test_the_plan_counts_the_calls_the_profile_runs_make(tmp_path: Path, shape: str) -> None:
    settings = small(tmp_path, profile_shape=shape)
    plan = plan_bootstrap(settings)
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    try:
        for stage, planned in zip(bootstrap_stages(settings), plan.stages, strict=True):
            edge, cloud = Counting(SimBackend("slm", "sim-slm")), Counting(SimBackend("llm", "sim-llm"))
            run_id = create_run(runtime.sessions, f"b{stage.suffix}", "sim", stage.config)
            profile_run(settings, runtime.sessions, run_id, backends={Executor.SLM: edge, Executor.LLM: cloud})
            assert planned.requests == stage.config["n"]
            assert (planned.usage["edge"].calls, planned.usage["cloud"].calls) == (edge.calls, cloud.calls)
            assert planned.usage["cloud"].prompt_tokens == cloud.prompt_tokens
            # Dollars: the cloud model's token prices (sim-llm is priced like gpt-4o); the edge's are free.
            assert planned.usage["cloud"].usd > 0
            assert planned.usage["edge"].usd == 0
    finally:
        runtime.close()
    assert plan.sd_validation["cloud"].calls > 0
    assert (
        plan.total("cloud").calls
        == sum(s.usage["cloud"].calls for s in plan.stages) + plan.sd_validation["cloud"].calls
    )
    text = "\n".join(plan.lines())
    assert "cloud (sim sim-llm):" in text
    assert "estimated total: $" in text


def test_urc_requests_keep_the_llm_on_its_own_chain_in_the_sampled_shape(tmp_path: Path) -> None:
    stages = {s.suffix: s.config for s in bootstrap_stages(small(tmp_path))}
    assert stages[""]["shape"] == "sampled"
    assert stages["-urc"]["llm_sample_rate"] == 0.0
    assert stages["-urc"]["decompose"] is False
    assert stages["-calibration"]["offset"] == stages[""]["offset"] + 8 + 5
    full = {s.suffix: s.config for s in bootstrap_stages(small(tmp_path, profile_shape="full"))}
    assert "shape" not in full[""]
    assert "shape" not in full["-urc"]


def test_the_default_plan_makes_at_most_a_tenth_of_the_full_profiles_cloud_calls(tmp_path: Path) -> None:
    light = plan_bootstrap(load_settings(data_dir=tmp_path))
    full = plan_bootstrap(
        load_settings(
            data_dir=tmp_path,
            estimators={
                "profile_shape": "full",
                "profile_requests": 300,
                "urc_requests": 600,
                "calibration_requests": 100,
            },
        )
    )
    assert light.total("cloud").calls <= 0.10 * full.total("cloud").calls


def test_a_spending_limit_stops_the_run_before_the_request_that_would_cross_it(tmp_path: Path) -> None:
    settings = small(tmp_path, profile_requests=10)
    plan = plan_bootstrap(settings)
    stage = bootstrap_stages(settings)[0]
    costs = list(plan.stages[0].request_usd.values())
    reserve = sum(plan.sd_validation[role].usd for role in ("edge", "cloud"))
    limit = SpendingLimit(reserve + sum(costs[:4]) + 0.5 * costs[4], plan)
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    try:
        run_id = create_run(runtime.sessions, "limited", "sim", stage.config)
        profiled = profile_run(settings, runtime.sessions, run_id, guard=limit)
        trees = load_trees(runtime.sessions, run_id)
    finally:
        runtime.close()
    assert profiled == 4 == len(trees)
    assert limit.stopped_at is not None
    assert limit.spent_usd == pytest.approx(sum(n.cost_usd for tree in trees.values() for n in tree))
    assert limit.spent_usd + reserve <= limit.limit_usd


def test_only_the_simulated_backends_may_bootstrap_unattended(tmp_path: Path) -> None:
    simulated = load_settings(data_dir=tmp_path)
    assert not uses_real_backends(simulated)
    assert unattended_problem(simulated) is None
    real = load_settings(
        data_dir=tmp_path, cloud={"backend": "openai", "url": "http://127.0.0.1:9/v1", "model": "gpt-4o"}
    )
    problem = unattended_problem(real)
    assert problem is not None
    assert "cloud: openai gpt-4o" in problem
    assert "hera-router bootstrap --yes" in problem
