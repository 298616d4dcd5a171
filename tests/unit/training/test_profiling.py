"""Profiling trees on the simulated world: node counts, depth limit, budget rule, decompositions."""

from __future__ import annotations

import pytest

from hera_router.backends.base import ModelBackend
from hera_router.db.enums import Executor
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate
from hera_router.simulator.loop import run_request
from hera_router.training.profiling import (
    DECOMPOSITION,
    ROOT,
    SAMPLED,
    STEP,
    ProfileItem,
    TreeNode,
    build_tree,
    llm_chain,
    run_config,
    sampled_for_llm,
    slm_chain,
)


@pytest.fixture(scope="module")
def backends() -> dict[Executor, ModelBackend]:
    return {Executor.SLM: SimBackend("slm", "sim-slm"), Executor.LLM: SimBackend("llm", "sim-llm")}


@pytest.fixture(scope="module")
def items() -> list[ProfileItem]:
    return [ProfileItem(r.id, r.request, r.gold, r.metric) for r in generate("mixed", 6, 0)]


def steps(tree: list[TreeNode]) -> list[TreeNode]:
    return [n for n in tree if n.kind == STEP]


def test_every_expansion_adds_one_child_per_model(
    backends: dict[Executor, ModelBackend], items: list[ProfileItem]
) -> None:
    tree = build_tree(items[0], backends, node_budget=40, max_depth=15, decompose=False)
    assert [n.kind for n in tree].count(ROOT) == 1
    step_nodes = steps(tree)
    assert len(step_nodes) % 2 == 0
    assert len(step_nodes) <= 40
    by_parent: dict[str | None, list[TreeNode]] = {}
    for n in step_nodes:
        by_parent.setdefault(n.parent, []).append(n)
    for children in by_parent.values():
        assert sorted(c.producing_model for c in children) == [Executor.LLM, Executor.SLM]
    ids = {n.id: n for n in tree}
    assert all(ids[n.parent].depth + 1 == n.depth for n in step_nodes if n.parent is not None)


def test_small_trees_are_full_and_depth_is_limited(
    backends: dict[Executor, ModelBackend], items: list[ProfileItem]
) -> None:
    tree = build_tree(items[0], backends, node_budget=100_000, max_depth=3, decompose=False)
    # Depth 3: every non-final node above depth 3 is expanded, so the tree is a full binary tree
    # minus the subtrees under final answers: at most 2 + 4 + 8 step nodes.
    assert max(n.depth for n in tree) <= 3
    expandable = [n for n in tree if n.depth < 3 and not n.is_final and n.text]
    assert len(steps(tree)) == 2 * len(expandable)
    assert len(steps(tree)) <= 14


def test_budget_rule_pure_chains_first_then_fewest_switches(
    backends: dict[Executor, ModelBackend], items: list[ProfileItem]
) -> None:
    item = items[1]
    full_budget = 64
    tree = build_tree(item, backends, node_budget=full_budget, max_depth=15, decompose=False)
    assert len(steps(tree)) <= full_budget
    # The pure chains equal the All-SLM / All-LLM runs of the agent loop (same prompts).
    for model, chain in ((Executor.SLM, slm_chain(tree)), (Executor.LLM, llm_chain(tree))):
        executor = model.value
        trace = run_request(
            item.request,
            {"slm": backends[Executor.SLM], "llm": backends[Executor.LLM]},
            lambda *_, executor=executor: executor,
        )
        assert [n.text for n in chain[1:-1]] == trace.subtasks[: len(chain) - 2]
        if trace.finished:
            assert chain[-1].is_final
            assert chain[-1].text == trace.final_answer
    # Every expanded node has no more switches than any node left unexpanded (priority order).
    parents = {n.parent for n in steps(tree)}
    expanded = [n for n in steps(tree) if n.id in parents]
    frontier = [n for n in steps(tree) if n.id not in parents and not n.is_final and n.text]
    if frontier:
        assert max(n.switches for n in expanded) <= min(n.switches for n in frontier)


def test_tiny_budget_stops_early(backends: dict[Executor, ModelBackend], items: list[ProfileItem]) -> None:
    tree = build_tree(items[2], backends, node_budget=5, max_depth=15, decompose=False)
    assert len(steps(tree)) == 4  # two expansions fit, a third would exceed 5


def test_decompositions_of_the_llm_chain(backends: dict[Executor, ModelBackend], items: list[ProfileItem]) -> None:
    tree = build_tree(items[0], backends, node_budget=64, max_depth=15, decompose=True)
    decompositions = [n for n in tree if n.kind == DECOMPOSITION]
    chain_ids = {n.id for n in llm_chain(tree)[1:] if not n.is_final}
    assert decompositions
    assert {d.parent for d in decompositions} <= chain_ids
    assert all(d.producing_model is Executor.SLM and d.text.startswith("1. ") for d in decompositions)


def test_finals_are_scored_against_gold(backends: dict[Executor, ModelBackend], items: list[ProfileItem]) -> None:
    tree = build_tree(items[0], backends, node_budget=64, max_depth=15, decompose=False)
    finals = [n for n in tree if n.is_final]
    assert finals
    assert all(n.correct is not None for n in finals)
    assert any(n.correct for n in finals)


# -- the sampled shape (what bootstrap profiles by default) ------------------------------------


def _texts(chain: list[TreeNode]) -> list[str]:
    return [n.text for n in chain]


@pytest.mark.parametrize("rate", [0.0, 0.25, 1.0])
def test_sampled_shape_keeps_both_pure_chains_and_calls_the_llm_only_on_its_chain_and_the_sample(
    backends: dict[Executor, ModelBackend], items: list[ProfileItem], rate: float
) -> None:
    for item in items:
        full = build_tree(item, backends, node_budget=100_000, max_depth=15, decompose=False)
        tree = build_tree(
            item, backends, node_budget=100_000, max_depth=15, decompose=False, shape=SAMPLED, llm_sample_rate=rate
        )
        # The same pure chains as the full tree (URC's and DP's labels are unchanged).
        assert _texts(slm_chain(tree)) == _texts(slm_chain(full))
        assert _texts(llm_chain(tree)) == _texts(llm_chain(full))
        by_id = {n.id: n for n in tree}
        on_chain = {n.id for n in (*slm_chain(tree), *llm_chain(tree))}
        # Nothing below a switch: every parent is the root or on a pure chain.
        assert all(n.parent in on_chain for n in steps(tree))
        slm_nodes = [n for n in slm_chain(tree)[1:] if not n.is_final and n.text and n.depth < 15]
        llm_parents = {n.parent for n in steps(tree) if n.producing_model is Executor.LLM}
        expected_llm = {n.id for n in slm_nodes if sampled_for_llm(item.key, n.depth, rate)}
        assert {p for p in llm_parents if p in {n.id for n in slm_nodes}} == expected_llm
        # Every node of the All-LLM chain (and the root) has both children: a divergence label each.
        for node in llm_chain(tree)[:-1]:
            if node.is_final or not node.text:
                continue
            children = {n.producing_model for n in steps(tree) if n.parent == node.id}
            assert children == {Executor.SLM, Executor.LLM}
        cloud = sum(n.producing_model is Executor.LLM for n in steps(tree))
        assert cloud == len(llm_chain(tree)) - 1 + len(expected_llm)
        assert cloud <= sum(n.producing_model is Executor.LLM for n in steps(full))
        assert all(by_id[n.parent].depth + 1 == n.depth for n in steps(tree) if n.parent is not None)


def test_sampled_shape_sample_is_deterministic_and_near_its_rate() -> None:
    picks = [sampled_for_llm(f"request-{i}", depth, 0.25) for i in range(400) for depth in range(1, 6)]
    assert picks == [sampled_for_llm(f"request-{i}", depth, 0.25) for i in range(400) for depth in range(1, 6)]
    assert 0.2 < sum(picks) / len(picks) < 0.3
    assert not any(sampled_for_llm("request-1", depth, 0.0) for depth in range(15))
    assert all(sampled_for_llm("request-1", depth, 1.0) for depth in range(15))


def test_an_unknown_shape_is_refused_in_one_sentence(
    backends: dict[Executor, ModelBackend], items: list[ProfileItem]
) -> None:
    with pytest.raises(ValueError, match="unknown profile shape 'dense'; choose one of full, sampled"):
        build_tree(items[0], backends, node_budget=8, max_depth=15, decompose=False, shape="dense")


def test_a_full_run_config_has_no_shape_keys_and_a_sampled_one_records_its_rate() -> None:
    from hera_router.config import load_settings

    settings = load_settings()
    assert "shape" not in run_config(settings, n=3)
    sampled = run_config(settings, n=3, shape=SAMPLED, llm_sample_rate=0.5, decompose=False)
    assert (sampled["shape"], sampled["llm_sample_rate"], sampled["decompose"]) == (SAMPLED, 0.5, False)
