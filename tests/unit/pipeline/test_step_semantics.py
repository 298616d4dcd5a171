"""The live pipeline and the replays take the same steps (``routing/steps.py``, one step semantics).

The embedded pipeline's hops (SQLite, a recording broker, the simulated backends) and the replay
(``training/replay.py`` through ``evaluation/graphs.py``, every step run once on the same
simulator) are given the same random worlds (simulator seeds and presets), the same requests
(chains and plans with dependencies) and the same policies. Request by request, and node by node
of a plan, they must take the same steps, on the same executors with the same branches, and reach
the same answers. A model-tier ladder (``HERA_MODELS``) run live is compared with the ladder
study's own loop over rungs (``evaluation/ladder.py``), rung by rung."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hera_router.agent.scoring import score
from hera_router.config import Settings
from hera_router.db.enums import Executor, RequestStatus
from hera_router.db.repositories import ModelCallRepository, RequestRepository, SubtaskRepository
from hera_router.db.repositories.plan_nodes import PlanNodeRepository
from hera_router.db.session import session_scope
from hera_router.evaluation.graphs import GraphReplayer, GraphRun, GraphTask
from hera_router.evaluation.ladder import Rung, run_request
from hera_router.evaluation.live import outcomes
from hera_router.evaluation.metrics import RequestOutcome
from hera_router.pipeline.graph import node_request_id
from hera_router.routing.estimators import Estimators
from hera_router.routing.hybridllm import Features, HybridRouter, SubtaskClassifier
from hera_router.routing.ladder import Ladder
from hera_router.routing.registry import create_policy
from hera_router.simulator.generate import TaskRecord, generate
from hera_router.training.replay import ProfileSet, Replayer, simulated_extension
from tests.unit.evaluation.stubs import hashed_estimators
from tests.unit.evaluation.test_graphs import SplitInTwo
from tests.unit.pipeline.harness import Harness

HarnessFactory = Callable[..., Harness]
WORLDS = [(3, "default"), (11, "weak-slm"), (29, "strong-slm")]
CHAINS, GRAPHS = 6, 2
SD_ROUTING = {"use_urc": False, "use_sse": False, "use_sle": False, "use_cd": False, "kappa_base": 0.3}
"""HERA with its other branches off, so that SD decides (``tests/unit/evaluation/test_graphs.py``)."""

Walk = list[tuple[Executor, str, int]]


def _walk(outcome: RequestOutcome, own: int | None = None) -> Walk:
    return [(s.executor, s.branch, s.seq) for s in outcome.steps[:own]]


def _hybrid_router(path: Path) -> Path:
    """A HybridLLM router with seeded random weights (what it learned does not matter here, only
    that both paths ask it the same questions)."""
    features = Features()
    weights = np.random.default_rng(7).normal(scale=2.0, size=features.size)
    HybridRouter(SubtaskClassifier(features, weights, 0.0), threshold=0.5, relaxation=0.0).save(path)
    return path


def _live(harness: Harness, tasks: list[TaskRecord], policy: str) -> list[uuid.UUID]:
    ids = harness.submit(tasks, policy)
    harness.drain()
    return ids


def _compare(harness: Harness, ids: list[uuid.UUID], runs: list[GraphRun], label: str) -> int:
    """Assert the live requests ``ids`` and the replayed ``runs`` agree; how many walks compared."""
    sessions = harness.runtime.sessions
    live = outcomes(sessions, ids)
    compared = 0
    for run, top, top_id in zip(runs, live, ids, strict=True):
        where = (label, run.outcome.key)
        assert top.status == "completed" or run.outcome.status != "completed", (where, top.note)
        assert (run.outcome.status, run.outcome.answer) == (top.status, top.answer), where
        own = len(top.steps)  # the request's own steps (for a graph: its planning walk)
        assert _walk(run.outcome, own) == _walk(top), where
        assert own == len(run.outcome.steps) or run.planned, where
        compared += 1
        with session_scope(sessions) as session:
            started = {n.key for n in PlanNodeRepository(session).for_request(top_id) if n.child_id}
        assert started == {node.key for node in run.nodes}, where  # the same nodes started
        for node in run.nodes:
            [node_live] = outcomes(sessions, [node_request_id(top_id, node.key)])
            assert _walk(node.outcome) == _walk(node_live), (*where, node.key)
            assert node.outcome.answer == node_live.answer, (*where, node.key)
            compared += 1
    return compared


def _replayer(settings: Settings, estimators: Estimators | None) -> GraphReplayer:
    extension = simulated_extension(settings)
    replayer = Replayer(ProfileSet(None, []), estimators, max_steps=settings.routing.max_steps, extension=extension)
    return GraphReplayer(replayer)


def _agree(
    harness: Harness, estimators: Estimators | None, tasks: list[TaskRecord], policies: tuple[str, ...]
) -> dict[str, int]:
    harness.pipeline.estimator_source = lambda: estimators
    graphs = _replayer(harness.settings, estimators)
    walks: dict[str, int] = {}
    for name in policies:
        ids = _live(harness, tasks, name)
        runs, _stats = graphs.run(create_policy(name, harness.settings.routing), [GraphTask.of(t) for t in tasks])
        walks[name] = _compare(harness, ids, runs, name)
    return walks


def _tasks(seed: int) -> list[TaskRecord]:
    return generate("mixed", CHAINS, seed) + generate("graph", GRAPHS, seed)


CONFIGURATIONS = {
    "trained": ({}, "hashed", ("hera", "hybridllm", "random", "all-slm", "all-llm", "hera-ladder")),
    # HERA without estimators, in cold-start mode: every step on the SLM, judged by its logprob.
    "cold-start": ({"cold_start": True}, None, ("hera",)),
    # SD reached: a decomposer that splits some steps, HERA's other branches off.
    "sd": (SD_ROUTING, "splitting", ("hera", "hera-sd-partial")),
}


def _estimators(kind: str | None) -> Estimators | None:
    if kind is None:
        return None
    return hashed_estimators() if kind == "hashed" else replace(hashed_estimators(), sd=SplitInTwo())


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
@pytest.mark.parametrize(("seed", "preset"), WORLDS)
def test_the_pipeline_and_the_replay_take_the_same_steps(
    harness_factory: HarnessFactory, tmp_path: Path, seed: int, preset: str, configuration: str
) -> None:
    routing, kind, policies = CONFIGURATIONS[configuration]
    routing = {**routing, "hybridllm_model_path": str(_hybrid_router(tmp_path / "hybridllm.json"))}
    tasks = _tasks(seed)
    harness = harness_factory(simulator={"seed": seed, "preset": preset}, routing=routing)
    walks = _agree(harness, _estimators(kind), tasks, policies)
    assert all(count >= len(tasks) for count in walks.values()), walks


def test_every_rule_is_exercised(harness_factory: HarnessFactory) -> None:
    """The comparison above means something only if the worlds reach every rule: spans, verify
    escalations, SD parts (on both executors), plans fanned out, cold-start climbs."""
    seed, preset = WORLDS[0]
    tasks = _tasks(seed)
    seen: set[str] = set()
    for routing, kind, policies in CONFIGURATIONS.values():
        estimators, name = _estimators(kind), policies[-1] if kind == "splitting" else policies[0]
        harness = harness_factory(simulator={"seed": seed, "preset": preset}, routing=routing)
        graphs = _replayer(harness.settings, estimators)
        runs, stats = graphs.run(create_policy(name, harness.settings.routing), [GraphTask.of(t) for t in tasks])
        everything = [s for r in runs for s in r.outcome.steps]
        seen |= {"span"} if any(not s.routed for s in everything) else set()
        seen |= {"verify"} if any(s.escalated for s in everything) else set()
        seen |= {"sd-llm"} if any(s.branch == "sd" and s.executor is Executor.LLM for s in everything) else set()
        seen |= {"plan"} if stats.planned else set()
    assert seen == {"span", "verify", "sd-llm", "plan"}


# -- model tiers: the pipeline's ladder and the ladder study's loop ------------------------------

TIER_MODELS = ("tiny", "mid", "cloud")


def _tiers() -> list[dict[str, Any]]:
    roles = ("edge", "edge", "cloud")
    return [
        {"name": name, "role": role, "backend": {"backend": "sim", "model": name, "logprobs": True}}
        for name, role in zip(TIER_MODELS, roles, strict=True)
    ]


@pytest.mark.parametrize("seed", [5, 17])
def test_the_pipelines_ladder_climbs_as_the_ladder_study_does(harness_factory: HarnessFactory, seed: int) -> None:
    """Three tiers: each step starts on the cheapest, the verify stage climbs one rung at a time
    while the tier's logprob is below the pair's threshold. The live requests and the study's loop
    (``evaluation/ladder.run_request``, the same simulated models) make the same calls, climb as
    often, and end with the same answers."""
    thresholds = (-0.2, -0.1)
    routing = {"ladder_thresholds": list(thresholds), "ladder_threshold": -0.1}
    harness = harness_factory(simulator={"seed": seed}, models=_tiers(), routing=routing)
    tasks = generate("mixed", 8, seed)
    ids = _live(harness, tasks, "hera-ladder")
    settings = harness.settings
    # The tiers' own simulated backends, as the pipeline built them (deterministic at temperature 0).
    services = harness.pipeline.services
    rungs = [Rung(tier, services.backend(tier.role, tier.name)) for tier in settings.models]  # type: ignore[arg-type]
    ladder = Ladder(names=TIER_MODELS, thresholds=thresholds)
    climbs = 0
    with session_scope(harness.runtime.sessions) as session:
        for task, request_id in zip(tasks, ids, strict=True):
            study = run_request(task, rungs, settings, start=lambda _step, _text: 0, ladder=ladder)
            request = RequestRepository(session).get(request_id)
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED, request.error
            steps = SubtaskRepository(session).list_for_request(request_id)
            calls = ModelCallRepository(session).list_for_request(request_id)
            assert (study.calls, study.steps) == (len(calls), len(steps)), task.id
            assert study.escalations == len(calls) - len(steps), task.id
            assert math.isclose(study.score, score(task.metric, request.final_answer, task.gold)), task.id
            climbs += study.escalations
    assert climbs > 0, "no step climbed: the comparison says nothing about the verify stage"
