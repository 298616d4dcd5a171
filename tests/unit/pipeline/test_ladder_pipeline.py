"""The ladder in the live pipeline: three model tiers, hop by hop over SQLite with a
recording broker. Each step records its tier, each tier's run messages name that tier (and so go
to its queue), the verify stage climbs one rung at a time, and every call's cost is on its tier."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hera_router.backends.base import BackendRole, BackendUnavailable, ModelBackend
from hera_router.config import Settings, load_settings
from hera_router.db.enums import Executor, ModelRole, RequestStatus, SubtaskStatus
from hera_router.db.repositories import DecisionRepository, ModelCallRepository, RequestRepository, SubtaskRepository
from hera_router.db.session import session_scope
from hera_router.estimators.divergence import LogisticHead
from hera_router.estimators.ladder_pair import MAX_POSITION, LadderStarts, PairEstimator, SkipRule
from hera_router.pipeline.names import TaskName
from hera_router.pipeline.services import default_backend_factory
from hera_router.pipeline.tiers import at_rung, step_tier, tier_concurrency, tier_only_queues
from hera_router.routing.base import Decision, RoutingContext
from hera_router.routing.constraints import StepLimits, constrain
from hera_router.routing.ladder import LadderPolicy
from hera_router.simulator.generate import generate
from hera_router.workers.queues import declarations, task_routes
from tests.unit.pipeline.harness import Failing, Harness

SEED = 5
HarnessFactory = Callable[..., Harness]
QUEUES = {"tiny": "edge.tiny", "mid": "edge.mid", "cloud": "cloud.big"}


def _tiers() -> list[dict[str, Any]]:
    def backend(model: str) -> dict[str, Any]:
        return {"backend": "sim", "model": model, "logprobs": True}

    return [
        {
            "name": "tiny",
            "role": "edge",
            "backend": backend("tiny"),
            "queue": QUEUES["tiny"],
            "gpu_usd_per_second": 0.0001,
            "power_w": 70,
        },
        {
            "name": "mid",
            "role": "edge",
            "backend": backend("mid"),
            "queue": QUEUES["mid"],
            "gpu_usd_per_second": 0.0003,
            "power_w": 150,
        },
        {
            "name": "cloud",
            "role": "cloud",
            "backend": backend("cloud"),
            "queue": QUEUES["cloud"],
            "input_per_mtok": 2.5,
            "output_per_mtok": 10.0,
        },
    ]


def _ladder(harness_factory: HarnessFactory, **overrides: Any) -> Harness:
    return harness_factory(simulator={"seed": SEED}, models=_tiers(), costs={"energy_usd_per_kwh": 0.15}, **overrides)


def _runs(harness: Harness) -> list[dict[str, Any]]:
    return [message.kwargs for message in harness.sent if message.task == TaskName.RUN_SUBTASK]


def test_every_step_climbs_one_rung_at_a_time_on_its_tiers_queue(harness_factory: HarnessFactory) -> None:
    # Every logprob is below 0: every rung but the top rejects its result.
    harness = _ladder(harness_factory, routing={"ladder_threshold": 0.0})
    ids = harness.submit(generate("mixed", 3, SEED), "hera-ladder")
    harness.drain()

    routes = task_routes(harness.settings.queues, {"tiny": "edge.tiny", "mid": "edge.mid", "cloud": "cloud.big"})
    router = routes[0]
    runs = _runs(harness)
    per_step: dict[str, list[str]] = defaultdict(list)
    for kwargs in runs:
        per_step[kwargs["subtask_id"]].append(kwargs["tier"])
        # The message names its tier, and the Celery router sends it to that tier's queue.
        assert router(TaskName.RUN_SUBTASK, (), kwargs, {}) == {"queue": QUEUES[kwargs["tier"]]}
    # One rung at a time, never skipping one: tiny, then mid, then the top.
    assert per_step
    assert all(tiers == ["tiny", "mid", "cloud"] for tiers in per_step.values())

    with session_scope(harness.runtime.sessions) as session:
        calls = ModelCallRepository(session).list_for_requests(ids)
        for request_id in ids:
            request = RequestRepository(session).get(request_id)
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED
            steps = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0]
            # Every step kept the top rung's result, counted once, on the cloud.
            assert {s.tier for s in steps} == {"cloud"}
            assert (request.slm_steps, request.llm_steps) == (0, len(steps))
            for decision in DecisionRepository(session).list_for_request(request_id):
                assert decision.policy == "hera-ladder"
                assert decision.executor is Executor.LLM
                assert decision.branch == "verify"
                # Both escalations of the step are on record, with their reasons.
                assert decision.fallback_reason is not None
                assert "tier tiny's result scored" in decision.fallback_reason
                assert "re-ran one rung up on mid" in decision.fallback_reason
                assert "re-ran one rung up on cloud" in decision.fallback_reason
                assert decision.scores["ladder_r0_accept"] == 0.0
                assert decision.scores["ladder_r1_accept"] == 0.0
            # The request's cost is the sum of its calls on every tier.
            own = [c for c in calls if c.request_id == request_id]
            assert math.isclose(request.cost_usd, math.fsum(c.cost_usd for c in own), rel_tol=1e-12)
        by_tier: dict[str | None, list[Any]] = defaultdict(list)
        for call in calls:
            by_tier[call.tier].append(call)
        assert set(by_tier) == {"tiny", "mid", "cloud"}
        assert len(by_tier["tiny"]) == len(by_tier["mid"]) == len(by_tier["cloud"]) == len(per_step)
        for tier, tier_calls in by_tier.items():
            assert {c.model for c in tier_calls} == {tier}  # the tier's backend ran it
            for call in tier_calls:
                assert (
                    call.cost_usd
                    == call.tokens_cost_usd + call.gpu_cost_usd + call.energy_cost_usd + call.transfer_cost_usd
                )
        # Each tier's own prices: GPU time by the tier's rate, energy by its watts, tokens on the cloud.
        for call in by_tier["tiny"] + by_tier["mid"]:
            assert call.role is ModelRole.EDGE
            assert call.tokens_cost_usd == 0
            assert call.gpu_cost_usd > 0
        tiny_rate = by_tier["tiny"][0].gpu_cost_usd / by_tier["tiny"][0].latency_ms
        mid_rate = by_tier["mid"][0].gpu_cost_usd / by_tier["mid"][0].latency_ms
        assert math.isclose(mid_rate / tiny_rate, 3.0, rel_tol=1e-9)
        for call in by_tier["cloud"]:
            assert call.role is ModelRole.CLOUD
            assert call.tokens_cost_usd > 0
            assert call.gpu_cost_usd == 0


def test_a_rung_that_accepts_stops_the_climb(harness_factory: HarnessFactory) -> None:
    # tiny always rejected, mid always accepted: no step reaches the cloud.
    harness = _ladder(harness_factory, routing={"ladder_thresholds": [0.0, -1e9]})
    ids = harness.submit(generate("mixed", 2, SEED), "hera-ladder")
    harness.drain()
    tiers = {kwargs["tier"] for kwargs in _runs(harness)}
    assert tiers == {"tiny", "mid"}
    with session_scope(harness.runtime.sessions) as session:
        for request_id in ids:
            request = RequestRepository(session).get(request_id)
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED
            steps = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0]
            assert {s.tier for s in steps} == {"mid"}
            assert (request.slm_steps, request.llm_steps) == (len(steps), 0)
            for decision in DecisionRepository(session).list_for_request(request_id):
                assert decision.scores["ladder_r0_accept"] == 0.0
                assert decision.scores["ladder_r1_accept"] == 1.0
                assert decision.executor is Executor.SLM


def test_an_accepting_cheapest_rung_keeps_every_step_there(harness_factory: HarnessFactory) -> None:
    harness = _ladder(harness_factory, routing={"ladder_threshold": -1e9})
    ids = harness.submit(generate("mixed", 2, SEED), "hera-ladder")
    harness.drain()
    assert {kwargs["tier"] for kwargs in _runs(harness)} == {"tiny"}
    with session_scope(harness.runtime.sessions) as session:
        assert all(c.tier == "tiny" for c in ModelCallRepository(session).list_for_requests(ids))


def test_an_edge_tier_that_fails_falls_back_one_rung_up(harness_factory: HarnessFactory) -> None:
    def tiny_down(settings: Settings, role: BackendRole) -> ModelBackend:
        backend = default_backend_factory(settings, role)
        if settings.edge.model == "tiny" and role == "edge":
            return Failing(backend, BackendUnavailable("sim", "tiny is down"))  # type: ignore[return-value]
        return backend

    harness = _ladder(harness_factory, routing={"ladder_threshold": -1e9}, backend_factory=tiny_down)
    ids = harness.submit(generate("mixed", 2, SEED), "hera-ladder")
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        for request_id in ids:
            request = RequestRepository(session).get(request_id)
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED
            steps = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0]
            assert {s.tier for s in steps} == {"mid"}  # not the cloud: the next rung up
            for decision in DecisionRepository(session).list_for_request(request_id):
                assert decision.fallback_reason is not None
                assert "edge tier tiny unavailable, ran one rung up on mid" in decision.fallback_reason


def test_a_stale_message_of_a_lower_tier_does_not_run_the_climbed_step(harness_factory: HarnessFactory) -> None:
    harness = _ladder(harness_factory, routing={"ladder_threshold": 0.0})
    harness.submit(generate("mixed", 1, SEED), "hera-ladder")
    harness.drain()
    first = next(kwargs for kwargs in _runs(harness) if kwargs["tier"] == "tiny")
    # Redelivered after the step climbed to the cloud: the claim is guarded by the tier.
    outcome = harness.pipeline.run_subtask(uuid.UUID(first["subtask_id"]), Executor.SLM, tier="tiny")
    assert outcome == "skipped"


def test_pair_start_estimators_start_each_step_above_a_rung_they_judge_useless(
    harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    # An artifact whose pair (tiny, mid) always says "mid needed" and whose verify threshold keeps
    # every mid result: no step spends a call on tiny, and none reaches the cloud.
    flat = LogisticHead(np.zeros(16 + MAX_POSITION + 1), 0.0)  # P(needed) = 0.5 everywhere
    pairs = (PairEstimator(flat, SkipRule(0.0)), PairEstimator(flat))
    starts = LadderStarts(("tiny", "mid", "cloud"), (0.0, -1e9), pairs, encoder="hashed-ngrams-16")
    path = starts.save(tmp_path / "starts.json")
    harness = _ladder(harness_factory, routing={"ladder_estimators": str(path), "ladder_threshold": 0.0})
    ids = harness.submit(generate("mixed", 2, SEED), "hera-ladder")
    harness.drain()
    assert {kwargs["tier"] for kwargs in _runs(harness)} == {"mid"}
    with session_scope(harness.runtime.sessions) as session:
        assert {c.tier for c in ModelCallRepository(session).list_for_requests(ids)} == {"mid"}
        for request_id in ids:
            request = RequestRepository(session).get(request_id)
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED
            for decision in DecisionRepository(session).list_for_request(request_id):
                assert decision.branch == "ladder-start"
                assert decision.scores["ladder_r0_p_needed"] == 0.5
                assert decision.estimator_versions["ladder-starts"] == starts.version


def test_without_model_tiers_the_ladder_is_todays_edge_and_cloud(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED}, edge={"logprobs": True}, routing={"ladder_threshold": 0.0})
    ids = harness.submit(generate("mixed", 2, SEED), "hera-ladder")
    harness.drain()
    runs = _runs(harness)
    assert all("tier" not in kwargs for kwargs in runs)  # today's messages, to the role queues
    assert {kwargs["executor"] for kwargs in runs} == {"slm", "llm"}
    with session_scope(harness.runtime.sessions) as session:
        calls = ModelCallRepository(session).list_for_requests(ids)
        assert {c.tier for c in calls} == {None}
        for request_id in ids:
            request = RequestRepository(session).get(request_id)
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED


def test_tier_queues_are_declared_and_an_unknown_tier_is_refused(harness_factory: HarnessFactory) -> None:
    harness = _ladder(harness_factory)
    names = {queue.name for queue in declarations(harness.settings.queues, QUEUES)}
    assert set(QUEUES.values()) <= names
    assert "edge" in names
    router = task_routes(harness.settings.queues, QUEUES)[0]
    with pytest.raises(ValueError, match="no model tier 'huge'"):
        router(TaskName.RUN_SUBTASK, (), {"subtask_id": "x", "executor": "slm", "tier": "huge"}, {})


def test_a_lost_tier_message_is_re_driven_after_a_look_at_that_tiers_queue(harness_factory: HarnessFactory) -> None:
    harness = _ladder(harness_factory, routing={"ladder_threshold": -1e9}, lost_after_s=0.001, reconcile_after_s=3600)
    [request_id] = harness.submit(generate("lookup", 1, SEED), "hera-ladder")
    harness.deliver(harness.queue.popleft())  # plan_step: the run message goes to edge.tiny ...
    lost = harness.queue.popleft()
    assert lost.kwargs["tier"] == "tiny"  # ... and the broker loses it
    asked: list[str] = []
    depth = {QUEUES["tiny"]: 2}

    def queue_depth(queue: object) -> int:
        asked.append(str(queue))
        return depth.get(str(queue), 0)

    harness.pipeline.services.queue_depth = queue_depth
    assert harness.pipeline.reconcile() == 0  # the tier's queue is busy: it may still arrive
    assert asked == [QUEUES["tiny"]]  # not the role's (empty) edge queue
    depth[QUEUES["tiny"]] = 0
    assert harness.pipeline.reconcile() == 1
    assert harness.sent[-1].task_id == lost.task_id
    assert harness.sent[-1].kwargs == lost.kwargs
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        step = SubtaskRepository(session).by_key(request_id, 0)
        assert step is not None
        assert step.tier == "tiny"
        assert step.status is SubtaskStatus.SUCCEEDED


def test_a_constraint_that_moves_a_ladder_step_picks_that_roles_end_of_the_ladder() -> None:
    settings = load_settings(models=_tiers())
    start = at_rung(settings, LadderPolicy(settings.routing).decide(RoutingContext("r", "q", "q", 0)))
    assert start.executor is Executor.SLM
    assert step_tier(settings, start) == "tiny"
    tight = constrain(start, StepLimits(latency_budget_s=1.0, elapsed_s=0.9, verifies=True))
    assert tight.branch == "latency"
    assert step_tier(settings, tight) == "cloud"  # no speculative run: straight to the top rung
    # A ladder whose cheapest rung is on the cloud: a capped request's step goes to an edge tier.
    cloud_first = load_settings(models=[_tiers()[2] | {"name": "cheap", "backend": {"model": "cheap"}}, *_tiers()])
    first = at_rung(cloud_first, LadderPolicy(cloud_first.routing).decide(RoutingContext("r", "q", "q", 0)))
    assert first.executor is Executor.LLM
    capped = constrain(first, StepLimits(cost_cap_usd=0.001, cost_so_far_usd=0.001, cloud_step_usd=0.01))
    assert capped.branch == "cost-cap"
    assert step_tier(cloud_first, capped) == "tiny"
    # Two-role decisions carry no tier, with or without HERA_MODELS.
    assert step_tier(settings, Decision(executor=Executor.SLM, branch="all-slm", policy="all-slm")) is None


def test_a_prompt_beyond_a_tiers_context_climbs_before_any_call(harness_factory: HarnessFactory) -> None:
    # tiny takes 64 tokens: no step's prompt and answer fit, so each goes to mid before a call.
    tiers = _tiers()
    tiers[0] = tiers[0] | {"context_tokens": 64}
    harness = harness_factory(simulator={"seed": SEED}, models=tiers, routing={"ladder_threshold": -1e9})
    ids = harness.submit(generate("mixed", 2, SEED), "hera-ladder")
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        calls = ModelCallRepository(session).list_for_requests(ids)
        assert calls
        assert {c.tier for c in calls} == {"mid"}  # nothing spent on tiny, nothing on the cloud
        for request_id in ids:
            request = RequestRepository(session).get(request_id)
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED
            for decision in DecisionRepository(session).list_for_request(request_id):
                assert decision.fallback_reason is not None
                assert "beyond tier tiny's context of 64; ran one rung up on mid" in decision.fallback_reason
    # A context that fits changes nothing.
    roomy = _tiers()
    roomy[0] = roomy[0] | {"context_tokens": 100_000}
    harness = harness_factory(simulator={"seed": SEED}, models=roomy, routing={"ladder_threshold": -1e9})
    ids = harness.submit(generate("mixed", 2, SEED), "hera-ladder")
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        assert {c.tier for c in ModelCallRepository(session).list_for_requests(ids)} == {"tiny"}


def test_a_tiers_call_holds_one_of_its_capacity_slots(harness_factory: HarnessFactory) -> None:
    free_during_calls: list[bool] = []
    harness: Harness | None = None

    def probing(settings: Settings, role: BackendRole) -> ModelBackend:
        inner = default_backend_factory(settings, role)

        class Probe:
            name, model = inner.name, inner.model

            def generate(self, *args: Any, **kwargs: Any) -> Any:
                assert harness is not None
                slot = harness.pipeline.services.tier_slot(settings.edge.model if role == "edge" else "cloud")
                got = slot.acquire(blocking=False)  # type: ignore[attr-defined]
                if got:
                    slot.release()  # type: ignore[attr-defined]
                free_during_calls.append(got)
                return inner.generate(*args, **kwargs)

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return Probe()  # type: ignore[return-value]

    tiers = [tier | {"capacity": 1} for tier in _tiers()]
    harness = harness_factory(
        simulator={"seed": SEED}, models=tiers, routing={"ladder_threshold": 0.0}, backend_factory=probing
    )
    harness.submit(generate("lookup", 1, SEED), "hera-ladder")
    harness.drain()
    # Capacity 1: while a tier's model is called, its only slot is taken.
    assert free_during_calls
    assert not any(free_during_calls)
    services = harness.pipeline.services
    two = harness_factory(simulator={"seed": SEED}, models=[t | {"capacity": 2} for t in _tiers()]).pipeline.services
    slot = two.tier_slot("mid")
    assert slot.acquire(blocking=False)  # type: ignore[attr-defined]
    assert slot.acquire(blocking=False)  # type: ignore[attr-defined]
    assert not slot.acquire(blocking=False)  # type: ignore[attr-defined]
    assert services.tier_slot(None).__enter__() is None  # a two-role step takes no slot


def test_a_tier_only_worker_runs_its_tiers_capacity_and_the_gauge_sees_tier_queues() -> None:
    tiers = _tiers()
    tiers[0] = tiers[0] | {"capacity": 3}
    tiers[1] = tiers[1] | {"capacity": 5}
    settings = load_settings(models=tiers)
    assert tier_concurrency(settings, [QUEUES["tiny"]]) == 3
    assert tier_concurrency(settings, [QUEUES["tiny"], QUEUES["mid"]]) == 8
    assert tier_concurrency(settings, [QUEUES["tiny"], "router"]) is None  # not only tiers: the default
    # A tier without a queue of its own shares its role's queue: that worker is not the tier's alone.
    shared = load_settings(models=[t | {"queue": ""} for t in tiers])
    assert tier_concurrency(shared, ["edge"]) is None
    assert tier_only_queues(shared) == {}
    assert tier_only_queues(settings) == {
        QUEUES["tiny"]: "tier:tiny",
        QUEUES["mid"]: "tier:mid",
        QUEUES["cloud"]: "tier:cloud",
    }
    two = load_settings(models=[tiers[0] | {"queue": "edge.small"}, tiers[1] | {"queue": "edge.small"}, tiers[2]])
    assert tier_only_queues(two)["edge.small"] == "tier:tiny+mid"
