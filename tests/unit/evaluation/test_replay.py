"""Replay on in-memory profiled trees: walks, spans, leaving the tree, extension, the Oracle bound."""

from __future__ import annotations

import pytest

from hera_router.backends.base import GenerationParams
from hera_router.config import RoutingSettings
from hera_router.db.enums import Executor
from hera_router.evaluation.metrics import accuracy, slm_usage
from hera_router.routing.base import Decision, PolicyBase, RoutingContext
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import create_policy
from hera_router.simulator.backend import SimBackend
from hera_router.training.baselines import fit_oracle
from hera_router.training.replay import Extension, Replayer
from tests.unit.evaluation.stubs import cloud_price, hashed_estimators, simulated_profile, simulated_records

SEED = 5


@pytest.fixture(scope="module")
def small_profile():  # type: ignore[no-untyped-def]
    return simulated_profile(simulated_records("mixed", 10, SEED), SEED, budget=64)


def extension() -> Extension:
    return Extension(
        backends={
            Executor.SLM: SimBackend("slm", "sim-slm", seed=SEED),
            Executor.LLM: SimBackend("llm", "sim-llm", seed=SEED),
        },
        cost=cloud_price,
        params={Executor.SLM: GenerationParams(), Executor.LLM: GenerationParams()},
    )


def test_all_slm_and_all_llm_follow_the_pure_chains(small_profile) -> None:  # type: ignore[no-untyped-def]
    replayer = Replayer(small_profile)
    routing = RoutingSettings()
    for name, executor in (("all-slm", Executor.SLM), ("all-llm", Executor.LLM)):
        outcomes, stats = replayer.run(create_policy(name, routing))
        assert stats.off_tree == 0, "the profiler always completes the two pure chains"
        for outcome, tree in zip(outcomes, small_profile.trees, strict=True):
            node, walked = tree.root, 0
            while executor in node.children:
                node, walked = node.children[executor], walked + 1
            assert [s.executor for s in outcome.steps] == [executor] * walked
            if node.is_final or not node.text:
                assert outcome.status == "completed"
                assert outcome.answer == (node.text if node.is_final else node.output)
            else:  # stopped at the step limit without an answer, as the pipeline fails it
                assert (outcome.status, outcome.answer, node.depth) == ("failed", None, 15)
    all_llm, _ = replayer.run(create_policy("all-llm", routing))
    costs = small_profile.all_llm_costs()
    assert all(o.remote_cost_usd == pytest.approx(costs[o.key]) for o in all_llm)
    assert all(costs[k] > 0 for k in costs)


class Alternate(PolicyBase):
    """SLM on even steps, LLM on odd ones: two switches by step 2, deep in a small budget's unexplored part."""

    name = "alternate"

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        return Decision(executor=Executor.SLM if context.seq % 2 == 0 else Executor.LLM, branch="alt", policy=self.name)


def test_leaving_the_tree_is_counted_and_extension_finishes_the_request() -> None:
    profile = simulated_profile(simulated_records("arithmetic", 6, SEED), SEED, budget=8)
    strict, stats = Replayer(profile).run(Alternate())
    assert stats.off_tree > 0
    assert all(o.status == "off_tree" and "was not profiled" in o.note for o in strict if o.status == "off_tree")
    extended_replayer = Replayer(profile, extension=extension())
    extended, extended_stats = extended_replayer.run(Alternate())
    assert extended_stats.off_tree == 0
    assert extended_stats.extended_steps > 0
    assert all(o.status in ("completed", "failed") for o in extended)
    # The added steps stay in the trees: a second pass makes no model call.
    again, again_stats = extended_replayer.run(Alternate())
    assert again_stats.extended_steps == 0
    assert [o.answer for o in again] == [o.answer for o in extended]


def test_spans_are_followed_without_asking_the_policy(small_profile) -> None:  # type: ignore[no-untyped-def]
    class CountingHera(PolicyBase):
        name = "hera"

        def __init__(self) -> None:
            self.inner = create_policy("hera", RoutingSettings(tau_req=0.0))  # URC passes for every request
            self.asked = 0

        def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
            self.asked += 1
            return self.inner.decide(context, estimators)

    policy = CountingHera()
    outcomes, _ = Replayer(small_profile, hashed_estimators()).run(policy)
    assert policy.asked == len(outcomes), "URC covers the whole request: one decision per request"
    assert all(s.executor is Executor.SLM and s.branch == "urc" for o in outcomes for s in o.steps)
    assert all(not s.routed for o in outcomes for s in o.steps[1:])


def test_a_partial_decomposition_is_replayed_on_the_executor_of_its_last_part(small_profile) -> None:  # type: ignore[no-untyped-def]
    class FirstStepDecomposed(PolicyBase):
        name = "unit-sd-partial"

        def __init__(self, last: Executor) -> None:
            self.last = last

        def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
            if context.seq == 0:
                return Decision(
                    executor=Executor.SLM,
                    branch="sd",
                    policy=self.name,
                    parts=("a", "b"),
                    part_executors=(Executor.SLM, self.last),
                )
            return Decision(executor=Executor.LLM, branch="fallback", policy=self.name)

    for last in (Executor.SLM, Executor.LLM):
        outcomes, stats = Replayer(small_profile).run(FirstStepDecomposed(last))
        assert stats.sd_approximated == len(outcomes)
        assert all(o.steps[0].executor is last for o in outcomes)


def test_oracle_has_the_most_slm_usage_among_policies_reaching_its_accuracy_target(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A generous budget: the trees are complete enough that every policy below stays on them.
    profile = simulated_profile(simulated_records("mixed", 16, SEED), SEED, budget=400, max_depth=15)
    plan = fit_oracle(profile, tmp_path / "plan.json")
    routing = RoutingSettings(oracle_plan_path=tmp_path / "plan.json", random_p_slm=0.7)
    replayer = Replayer(profile, hashed_estimators(), extension=extension())
    oracle_outcomes, _ = replayer.run(create_policy("oracle", routing))
    assert accuracy(oracle_outcomes) == pytest.approx(plan.accuracy)
    assert slm_usage(oracle_outcomes) == pytest.approx(plan.slm_usage)
    assert replayer.extension is not None
    assert replayer.extension.steps == 0, "the Oracle walks profiled paths only"
    assert accuracy(oracle_outcomes) >= plan.target_accuracy
    compared = 0
    for name in ("all-slm", "all-llm", "random", "hera", "hera-no-urc", "hera-urc-only", "hera-fixed-kappa"):
        steps_before = replayer.extension.steps
        outcomes, _ = replayer.run(create_policy(name, routing))
        if replayer.extension.steps != steps_before:
            continue  # left the profiled tree: the Oracle's search never saw those paths
        compared += 1
        if accuracy(outcomes) >= plan.target_accuracy:
            assert slm_usage(outcomes) <= slm_usage(oracle_outcomes) + 1e-9, name
    assert compared >= 3


class VerifyByLogprob(PolicyBase):
    """Every step on the SLM, verified: a result whose profiled logprob is below -0.5 is re-run on
    the LLM (the replay's side of the verify stage)."""

    name = "verify-test"
    verifies = True

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        return Decision(executor=Executor.SLM, branch="sse", policy=self.name)

    def verify(
        self,
        context: RoutingContext,
        confidence: float | None,
        estimators: Estimators | None,
        cold_start: object = None,
    ) -> object:
        from hera_router.routing.base import Verdict

        score = 1.0 if confidence is not None and confidence > -0.5 else 0.0
        return Verdict(accept=score >= 0.5, score=score, threshold=0.5, policy=self.name)


def test_replayed_verify_follows_the_llm_child_when_the_slm_result_is_rejected(small_profile) -> None:  # type: ignore[no-untyped-def]
    replayer = Replayer(small_profile, extension=extension())
    outcomes, stats = replayer.run(VerifyByLogprob())
    assert stats.off_tree == 0, "escalated steps the profile lacks are run on the simulator"
    escalated = 0
    for outcome, tree in zip(outcomes, small_profile.trees, strict=True):
        node = tree.root
        for step in outcome.steps:
            slm = node.children[Executor.SLM]
            rejected = slm.confidence is None or slm.confidence <= -0.5
            assert step.escalated is rejected
            assert (step.executor, step.branch) == ((Executor.LLM, "verify") if rejected else (Executor.SLM, "sse"))
            if rejected:
                escalated += 1
                assert step.remote_cost_usd == node.children[Executor.LLM].cost_usd > 0
            node = node.children[step.executor]
    assert escalated, "the simulated SLM has low-confidence steps"
    assert all(o.slm_share is not None and o.slm_share < 1.0 for o in outcomes if any(s.escalated for s in o.steps))
