"""The HybridLLM router on synthetic data: labels, relaxation, training, threshold, policy."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hera_router.config import RoutingSettings
from hera_router.routing.base import Executor, RoutingContext
from hera_router.routing.hybridllm import (
    HybridLLMPolicy,
    HybridRouter,
    LabelledSubtask,
    MissingRouterModelError,
    QualitySamples,
    SubtaskClassifier,
    ValidationSubtask,
    choose_relaxation,
    label_spread,
    samples_from_tree,
    soft_label,
    train_router,
    tune_threshold,
)
from hera_router.routing.oracle import TreeNode


def test_soft_label_counts_pairs_within_the_relaxation() -> None:
    sample = QualitySamples("s", 0, slm=(0.5, 0.9), llm=(0.6, 1.0))
    assert soft_label(sample, 0.0) == 0.25  # only 0.9 ≥ 0.6
    assert soft_label(sample, 0.1) == 0.75  # 0.5 ≥ 0.5, 0.9 ≥ 0.5, 0.9 ≥ 0.9
    assert soft_label(sample, 0.5) == 1.0


def test_relaxation_maximises_label_spread() -> None:
    # The LLM is always a bit better: at t = 0 every label is 0; a relaxation separates easy from hard.
    samples = [QualitySamples("easy", 0, (0.8,), (0.9,)), QualitySamples("hard", 0, (0.2,), (0.9,))]
    t = choose_relaxation(samples, grid=(0.0, 0.1, 0.2, 0.8))
    assert t == 0.1
    assert label_spread([soft_label(s, t) for s in samples]) == 1.0


def synthetic(n: int, seed: int) -> list[QualitySamples]:
    """Lookups the SLM does as well as the LLM; arithmetic it does worse, more so late in a chain."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        seq = rng.randrange(8)
        if i % 2:
            text = (
                f"look up the {rng.choice(['mayor', 'spouse', 'employer'])} of {rng.choice(['Elmfield', 'Penfield'])}"
            )
            slm = tuple(float(rng.random() < 0.9) for _ in range(10))
        else:
            text = f"compute {rng.randrange(100)} times {rng.randrange(100)} then subtract"
            slm = tuple(float(rng.random() < 0.5 - 0.05 * seq) for _ in range(10))
        out.append(QualitySamples(text, seq, slm, tuple(float(rng.random() < 0.95) for _ in range(10))))
    return out


def test_the_classifier_learns_which_subtasks_the_slm_can_take() -> None:
    router = train_router(synthetic(200, 1), synthetic(100, 2), max_quality_drop=0.05)
    lookup = router.classifier.score("look up the mayor of Elmfield", 2)
    arithmetic = router.classifier.score("compute 12 times 7 then subtract", 6)
    assert lookup > arithmetic + 0.3
    assert router.threshold <= lookup  # lookups go to the SLM ...
    assert router.threshold > arithmetic  # ... late arithmetic does not


def test_the_threshold_meets_the_quality_target_with_the_most_slm() -> None:
    classifier = SubtaskClassifier.fit([LabelledSubtask("x", 0, 0.5)])
    # Constant-score classifier: the threshold either sends everything to the SLM or nothing.
    validation = [ValidationSubtask("x", 0, 0.9, 1.0), ValidationSubtask("x", 0, 0.8, 1.0)]
    assert tune_threshold(classifier, validation, max_quality_drop=0.2) <= classifier.score("x", 0)
    assert tune_threshold(classifier, validation, max_quality_drop=0.1) > classifier.score("x", 0)


def test_router_round_trips_and_the_policy_routes_by_it(tmp_path: Path) -> None:
    router = train_router(synthetic(120, 3), synthetic(60, 4))
    path = tmp_path / "hybridllm.json"
    router.save(path)
    loaded = HybridRouter.load(path)
    assert loaded.threshold == router.threshold
    assert loaded.classifier.score("look up the spouse of Penfield", 1) == pytest.approx(
        router.classifier.score("look up the spouse of Penfield", 1)
    )
    policy = HybridLLMPolicy(RoutingSettings(hybridllm_model_path=path))
    decision = policy.decide(
        RoutingContext(request_id="r", request="q", current="look up the spouse of Penfield", seq=1)
    )
    assert decision.executor is Executor.SLM
    assert set(decision.scores) == {"score", "threshold"}
    with pytest.raises(MissingRouterModelError, match="HYBRIDLLM_MODEL_PATH"):
        HybridLLMPolicy(RoutingSettings()).decide(RoutingContext(request_id="r", request="q", current="q", seq=0))


def test_samples_from_a_profiled_tree() -> None:
    def leaf(correct: bool) -> TreeNode:
        return TreeNode("answer", correct=correct)

    slm_child = TreeNode("s1", {Executor.SLM: leaf(False), Executor.LLM: leaf(True)})
    root = TreeNode("q", {Executor.SLM: slm_child, Executor.LLM: leaf(True)})
    samples = {s.text: s for s in samples_from_tree(root)}
    assert (samples["q"].seq, sorted(samples["q"].slm), samples["q"].llm) == (0, [0.0, 1.0], (1.0,))
    assert samples["s1"] == QualitySamples("s1", 1, slm=(0.0,), llm=(1.0,))
