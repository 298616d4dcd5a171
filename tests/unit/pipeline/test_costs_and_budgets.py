"""The full cost model and budgets, hop by hop over SQLite with a recording broker."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator

import pytest

from hera_router.api.costs import cost_report, rows_csv, set_budget
from hera_router.config import RoutingSettings
from hera_router.db.enums import CallStatus, Executor, ModelRole, RequestStatus
from hera_router.db.repositories import (
    CostRepository,
    DecisionRepository,
    ModelCallRepository,
    RequestRepository,
    TenantRepository,
)
from hera_router.db.session import session_scope
from hera_router.routing.base import Decision, PolicyBase, RoutingContext, Verdict
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import POLICIES
from hera_router.simulator.generate import generate
from tests.unit.pipeline.harness import Harness

SEED = 11
HarnessFactory = Callable[..., Harness]
FULL_COSTS = {
    "edge_cost_per_gpu_second": 0.0004,
    "costs": {"edge_power_w": 350.0, "energy_usd_per_kwh": 0.25, "transfer_usd_per_gb": 0.09},
}


def _tenant_id(harness: Harness) -> uuid.UUID:
    with session_scope(harness.runtime.sessions) as session:
        tenant = TenantRepository(session).by_name("pipeline-tests")
        assert tenant is not None
        return tenant.id


def test_cost_components_add_up_to_the_request_batch_and_tenant_totals(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED}, **FULL_COSTS)
    ids = harness.submit(generate("mixed", 4, SEED), "random")
    harness.drain()
    tenant_id = _tenant_id(harness)
    with session_scope(harness.runtime.sessions) as session:
        calls = ModelCallRepository(session).list_for_requests(ids)
        roles = {call.role for call in calls}
        assert roles == {ModelRole.EDGE, ModelRole.CLOUD}
        for call in calls:
            # Exactly: the stored total is the components added in one fixed order.
            parts = call.tokens_cost_usd + call.gpu_cost_usd + call.energy_cost_usd + call.transfer_cost_usd
            assert call.cost_usd == parts
            if call.role is ModelRole.EDGE:
                assert call.transfer_cost_usd == 0
                assert call.bytes_sent == 0
                assert call.gpu_cost_usd > 0
                assert call.energy_cost_usd > 0
            else:
                assert call.gpu_cost_usd == 0
                assert call.energy_cost_usd == 0
                assert call.bytes_sent > 0
                assert call.transfer_cost_usd > 0
                assert call.tokens_cost_usd > 0
        per_request = CostRepository(session).for_requests(ids)
        tenant = CostRepository(session).for_tenant(tenant_id)
        requests = [RequestRepository(session).get(request_id) for request_id in ids]
        for request in requests:
            assert request is not None
            assert request.status is RequestStatus.SUCCEEDED
            summed = per_request[request.id]
            own = [call for call in calls if call.request_id == request.id]
            # The request's running total, the per-request sum and the sum of its components agree
            # (to float rounding of a different summation order: 1e-12 relative).
            assert math.isclose(request.cost_usd, math.fsum(c.cost_usd for c in own), rel_tol=1e-12)
            assert math.isclose(summed.total_usd, request.cost_usd, rel_tol=1e-12)
            components = summed.tokens_usd + summed.gpu_usd + summed.energy_usd + summed.transfer_usd
            assert math.isclose(components, summed.total_usd, rel_tol=1e-12)
        assert tenant.calls == len(calls)
        assert math.isclose(tenant.total_usd, math.fsum(r.cost_usd for r in requests if r), rel_tol=1e-12)
        assert math.isclose(
            tenant.cloud_tokens_usd,
            math.fsum(c.tokens_cost_usd for c in calls if c.role is ModelRole.CLOUD),
            rel_tol=1e-12,
        )
    report = cost_report(harness.runtime.sessions, "pipeline-tests", None)
    assert math.isclose(sum(row.total_usd for row in report.rows), tenant.total_usd, rel_tol=1e-12)
    assert rows_csv(report.rows).splitlines()[0].startswith("day,role,model,calls,tokens_usd")


def test_the_default_settings_cost_only_cloud_tokens_as_before(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    ids = harness.submit(generate("mixed", 2, SEED), "random")
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        for call in ModelCallRepository(session).list_for_requests(ids):
            assert call.gpu_cost_usd == call.energy_cost_usd == call.transfer_cost_usd == 0
            assert call.cost_usd == call.tokens_cost_usd
            assert (call.cost_usd > 0) is (call.role is ModelRole.CLOUD)


def test_a_stop_budget_stops_a_running_request_naming_the_budget(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    budget = 1e-6  # less than one cloud step: the first call starts below it, the second may not
    set_budget(
        harness.runtime.sessions, harness.settings, "pipeline-tests", daily_usd=budget, monthly_usd=None, action="stop"
    )
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        calls = ModelCallRepository(session).list_for_request(request_id)
        assert request is not None
        assert request.status is RequestStatus.FAILED
        assert request.error is not None
        assert "daily budget" in request.error
        assert "pipeline-tests" in request.error
        assert len(calls) == 1  # exceeded by at most the one step that started below the budget
        assert request.cost_usd <= budget + calls[0].cost_usd


def test_a_cheapest_budget_finishes_the_request_on_the_edge(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    set_budget(
        harness.runtime.sessions,
        harness.settings,
        "pipeline-tests",
        daily_usd=1e-6,
        monthly_usd=None,
        action="cheapest",
    )
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        decisions = DecisionRepository(session).list_for_request(request_id)
        calls = ModelCallRepository(session).list_for_request(request_id)
        assert request is not None
        assert request.status is RequestStatus.SUCCEEDED
        assert decisions[0].executor is Executor.LLM  # the budget was not reached yet
        later = decisions[1:]
        assert later
        assert all(d.executor is Executor.SLM for d in later)
        assert all(d.fallback_reason and "daily budget" in d.fallback_reason for d in later)
        assert sum(1 for call in calls if call.role is ModelRole.CLOUD and call.status is CallStatus.OK) == 1


def test_a_request_cost_cap_keeps_its_steps_on_the_edge(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    with session_scope(harness.runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        assert request is not None
        request.cost_cap_usd = 1e-7  # below one cloud step
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        decisions = DecisionRepository(session).list_for_request(request_id)
        assert request is not None
        # The simulated SLM alone may wander past the step limit: finished either way, never on the cloud.
        assert request.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED), request.error
        assert request.cost_usd == 0.0
        assert all(d.branch == "cost-cap" and d.executor is Executor.SLM for d in decisions)
        assert all(d.fallback_reason and "cost cap" in d.fallback_reason for d in decisions)


class DoubtEverySlmStep(PolicyBase):
    """SLM first on every step, and a verify stage that rejects every SLM result."""

    name = "unit-doubt"
    verifies = True

    def __init__(self, settings: RoutingSettings) -> None:
        pass

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        return Decision(executor=Executor.SLM, branch="sse", policy=self.name)

    def verify(
        self,
        context: RoutingContext,
        confidence: float | None,
        estimators: Estimators | None,
        cold_start: object = None,
    ) -> Verdict:
        return Verdict(accept=False, score=0.0, threshold=0.5, policy=self.name)


@pytest.fixture
def doubting_policy() -> Iterator[None]:
    POLICIES[DoubtEverySlmStep.name] = DoubtEverySlmStep
    yield
    del POLICIES[DoubtEverySlmStep.name]


@pytest.mark.usefixtures("doubting_policy")
def test_over_a_cheapest_budget_the_verify_stage_keeps_the_edge_result(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), DoubtEverySlmStep.name)
    set_budget(
        harness.runtime.sessions,
        harness.settings,
        "pipeline-tests",
        daily_usd=1e-6,
        monthly_usd=None,
        action="cheapest",
    )
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        decisions = DecisionRepository(session).list_for_request(request_id)
        calls = ModelCallRepository(session).list_for_request(request_id)
    # Step 0 was escalated while the budget was not reached; from then on the edge's result stands.
    assert sum(1 for call in calls if call.role is ModelRole.CLOUD) == 1
    assert decisions[0].branch == "verify"
    assert len(decisions) > 1
    for decision in decisions[1:]:
        assert decision.executor is Executor.SLM
        assert decision.scores["verify_accept"] == 1.0
        assert decision.fallback_reason is not None
        assert "kept the edge's result" in decision.fallback_reason


@pytest.mark.usefixtures("doubting_policy")
def test_a_tight_latency_budget_skips_the_speculative_slm_run(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), DoubtEverySlmStep.name)
    with session_scope(harness.runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        assert request is not None
        request.latency_budget_s = 1e-3  # spent before the first step is planned
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        decisions = DecisionRepository(session).list_for_request(request_id)
        calls = ModelCallRepository(session).list_for_request(request_id)
    assert decisions
    assert all(d.branch == "latency" and d.executor is Executor.LLM for d in decisions)
    assert all(d.fallback_reason and "latency budget" in d.fallback_reason for d in decisions)
    assert all(call.role is ModelRole.CLOUD for call in calls)  # no SLM call was made and thrown away
