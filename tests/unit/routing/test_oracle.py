"""The Oracle search over hand-built profiled trees, the tree adapter and the replaying policy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hera_router.config import RoutingSettings
from hera_router.routing.base import Executor, RoutingContext
from hera_router.routing.oracle import (
    Assignment,
    MissingOraclePlanError,
    OraclePolicy,
    TreeNode,
    all_llm,
    assignments,
    save_plan,
    search,
    tree_from_rows,
)

S, L = Executor.SLM, Executor.LLM


def leaf(correct: bool) -> TreeNode:
    return TreeNode("answer", correct=correct)


def node(slm: TreeNode | None = None, llm: TreeNode | None = None, text: str = "step") -> TreeNode:
    children = {e: c for e, c in ((S, slm), (L, llm)) if c is not None}
    return TreeNode(text, children=children)


def two_step(ss: bool, sl: bool, ls: bool, ll: bool, text: str) -> TreeNode:
    """A full depth-2 tree: the correctness of the leaf reached by each assignment."""
    return node(node(leaf(ss), leaf(sl)), node(leaf(ls), leaf(ll)), text=text)


def test_assignments_enumerate_every_path() -> None:
    tree = two_step(True, False, True, True, "q")
    found = {(a.executors, a.correct) for a in assignments(tree)}
    assert found == {((S, S), True), ((S, L), False), ((L, S), True), ((L, L), True)}
    assert all_llm(tree) == Assignment((L, L), True)


def test_each_request_gets_its_best_path_when_accuracy_allows() -> None:
    trees = {"a": two_step(True, True, True, True, "a"), "b": two_step(False, True, True, True, "b")}
    result = search(trees)
    # a: all-SLM is right; b: the best right path has one SLM step (S,L) or (L,S), both 0.5.
    assert result.assignments["a"].executors == (S, S)
    assert result.assignments["b"].correct
    assert result.assignments["b"].slm_steps == 1
    assert (result.accuracy, result.all_llm_accuracy, result.slm_usage) == (1.0, 1.0, 0.75)


def test_the_90_percent_target_lets_the_oracle_give_up_the_cheapest_requests() -> None:
    # 10 requests, All-LLM right on all: 9 must be right. Each request is right only via (L, L),
    # except that all-SLM is right on none, so one request may take the wrong all-SLM path.
    trees = {f"r{i}": two_step(False, False, False, True, f"r{i}") for i in range(10)}
    result = search(trees)
    wrong = [k for k, a in result.assignments.items() if not a.correct]
    assert len(wrong) == 1
    assert result.assignments[wrong[0]].executors == (S, S)
    assert result.accuracy == pytest.approx(0.9)
    assert result.slm_usage == pytest.approx(0.1)


def test_the_switch_order_minimises_the_usage_lost() -> None:
    # Both requests' best path (all-SLM) is wrong; at half of All-LLM accuracy one must be right.
    cheap = two_step(False, True, False, True, "cheap")  # right with one SLM step: loses 0.5
    dear = two_step(False, False, False, True, "dear")  # right only on (L, L): loses 1.0
    result = search({"cheap": cheap, "dear": dear}, accuracy_fraction=0.5)
    assert result.assignments["cheap"].correct
    assert result.assignments["dear"].executors == (S, S)
    assert result.target_accuracy == 0.5


def test_usage_by_share_or_by_steps() -> None:
    # The SLM takes more, smaller steps: a one-step SLM answer vs a longer chain with more SLM steps.
    a3 = node(slm=leaf(True))
    root = node(slm=leaf(True), llm=node(slm=node(slm=a3), llm=leaf(True)), text="q")
    assert search({"q": root}).assignments["q"].executors == (S,)
    assert search({"q": root}, usage="steps").assignments["q"].executors == (L, S, S, S)


def test_a_tree_without_a_finished_all_llm_path_is_skipped() -> None:
    result = search({"ok": two_step(True, True, True, True, "ok"), "cut": node(leaf(True))})
    assert result.skipped == ("cut",)
    with pytest.raises(ValueError, match="All-LLM"):
        search({"cut": node(leaf(True))})


@dataclass
class Row:
    kind: str
    text: str
    depth: int
    producing_model: Executor | None = None
    parent_id: uuid.UUID | None = None
    is_final: bool = False
    correct: bool | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


def test_tree_from_profile_rows() -> None:
    root = Row("root", "the request", 0)
    s1 = Row("step", "slm subtask", 1, S, root.id)
    l1 = Row("step", "final by llm", 1, L, root.id, is_final=True, correct=True)
    s2 = Row("step", "final by slm", 2, S, s1.id, is_final=True, correct=False)
    stuck = Row("step", "no answer at the limit", 2, L, s1.id)
    decomposition = Row("decomposition", "1. a\n2. b", 1, S, root.id)
    tree = tree_from_rows([root, s1, l1, s2, stuck, decomposition], max_depth=2)
    assert tree.text == "the request"
    found = {(a.executors, a.correct) for a in assignments(tree)}
    assert found == {((L,), True), ((S, S), False), ((S, L), False)}
    unexpanded = tree_from_rows([root, s1, l1, stuck], max_depth=5)  # depth 2 < 5: budget, skipped
    assert {a.executors for a in assignments(unexpanded)} == {(L,)}


def test_the_policy_replays_the_plan(tmp_path: Path) -> None:
    result = search({"the request": two_step(True, True, True, True, "the request")})
    plan = tmp_path / "oracle.json"
    save_plan(result, plan)
    policy = OraclePolicy(RoutingSettings(oracle_plan_path=plan))

    def decide(request: str, seq: int) -> tuple[Executor, float]:
        d = policy.decide(RoutingContext(request_id="r", request=request, current="x", seq=seq))
        return d.executor, d.scores["planned"]

    assert decide("the request", 0) == (S, 1.0)
    assert decide("the request", 2) == (L, 0.0)  # longer than the profiled chain
    assert decide("never profiled", 0) == (L, 0.0)
    with pytest.raises(MissingOraclePlanError, match="ORACLE_PLAN_PATH"):
        OraclePolicy(RoutingSettings()).decide(RoutingContext(request_id="r", request="q", current="q", seq=0))
