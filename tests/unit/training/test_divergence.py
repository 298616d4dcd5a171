"""The divergence estimator's labels and heads, and the calibration's choice of thresholds."""

from __future__ import annotations

import numpy as np

from hera_router.db.enums import Executor
from hera_router.estimators.divergence import fit_head
from hera_router.training.calibration import Point, choose
from hera_router.training.labels import RequestTree, content_keys, divergence_examples, same_content
from hera_router.training.profiling import ROOT, STEP, TreeNode


def test_content_keys_see_entities_and_numbers_not_wording() -> None:
    assert content_keys("Look up the mother of Nora Selwick.") == content_keys(
        "Open the record of Nora Selwick and locate the mother entry."
    )
    assert content_keys("Then, add 37 shells to 86 shells.") != content_keys("Add 37 shells to 80 shells.")
    assert content_keys("Add 1,200 shells to 3 shells.") == {"#1200", "#3"}


def test_same_content_compares_final_answers_by_value() -> None:
    def node(text: str, final: bool) -> TreeNode:
        return TreeNode("x", "0", 1, STEP, Executor.SLM, text, is_final=final)

    assert same_content(node("105", True), node("105.0", True))
    assert not same_content(node("Leon Wenwick", True), node("Anna Wenwick", True))
    assert not same_content(node("Find the mother of Ada Lund.", False), node("Ada Lund", True))


def test_divergence_examples_label_each_node_both_models_ran() -> None:
    nodes = (
        TreeNode("0", None, 0, ROOT, None, "How many?"),
        TreeNode("1", "0", 1, STEP, Executor.SLM, "Add 2 to 3.", output="ok", confidence=-0.2, step_correct=True),
        TreeNode("2", "0", 1, STEP, Executor.LLM, "Add 2 to 3.", output="ok"),
        TreeNode("3", "1", 2, STEP, Executor.SLM, "6", output="2 + 3 = 6", is_final=True, confidence=-1.1),
        TreeNode("4", "1", 2, STEP, Executor.LLM, "5", output="2 + 3 = 5", is_final=True),
    )
    examples = divergence_examples([RequestTree("q1", nodes)])
    by_seq = {e.state.seq: e for e in examples}
    assert by_seq[0].agree
    assert by_seq[0].slm_confidence == -0.2
    assert not by_seq[1].agree
    assert by_seq[1].slm_confidence == -1.1
    assert by_seq[1].state.history == (("How many?", "ok"),)


def test_fit_head_learns_a_signal_and_is_constant_without_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x[:, 0] + 0.3 * rng.normal(size=400) > 0
    groups = [f"r{i // 4}" for i in range(400)]
    head, info = fit_head(x, list(y), groups)
    assert not info["constant"]
    assert head.weights[0] > 1.0 > abs(head.weights[1])
    flat, flat_info = fit_head(x, [True] * 400, groups)
    assert flat_info["constant"]
    assert np.allclose(flat.probability(x), flat.probability(x)[0])


def test_choose_takes_the_highest_slm_share_within_the_accuracy_tolerance() -> None:
    points = [
        Point(None, 0.0, 0.5, accuracy=0.80, slm_share=0.95, cost_ratio=0.1),
        Point(None, 0.5, 0.7, accuracy=0.90, slm_share=0.70, cost_ratio=0.3),
        Point(None, 0.9, 0.85, accuracy=0.93, slm_share=0.40, cost_ratio=0.6),
    ]
    assert choose(points, 0.92, {"objective": "accuracy-within", "accuracy_tolerance": 0.03}) is points[1]
    assert choose(points, 0.92, {"objective": "slm-share", "target_slm_share": 0.9}) is points[0]
    assert choose(points, 0.92, {"objective": "cost", "target_cost": 0.5}) is points[1]
    # Nothing qualifies: the most accurate point.
    assert choose(points, 1.5, {"objective": "accuracy-within"}) is points[2]
    assert points[1].thresholds({"use_urc": True, "use_verify": True}) == {
        "kappa_base": 0.5,
        "use_urc": False,
        "use_verify": True,
        "verify_threshold": 0.7,
    }
