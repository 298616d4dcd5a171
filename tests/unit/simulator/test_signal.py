"""How much a router can know in the simulated world: the step logprob signal is a preset field, and
long requests fail more often than short ones (docs/simulator-calibration.md)."""

from __future__ import annotations

import pytest

from hera_router.simulator.backend import SimBackend
from hera_router.simulator.calibration import auroc, request_features, step_logprob_auc
from hera_router.simulator.generate import generate_tasks
from hera_router.simulator.presets import load_behaviour
from hera_router.simulator.world import World


def _step_auc(preset: str, n: int = 300) -> float:
    behaviour = load_behaviour(preset)
    world = World(0, behaviour.world)
    return step_logprob_auc(generate_tasks(world, "mixed", n), SimBackend("slm", "sim-slm", 0, preset).simulated)


def test_weak_logprob_preset_makes_the_step_logprob_a_weak_signal() -> None:
    default, weak = _step_auc("default"), _step_auc("weak-logprob")

    assert 0.62 <= weak <= 0.78
    assert default > weak + 0.1


def test_weak_logprob_changes_only_the_confidence_signal() -> None:
    default, weak = load_behaviour("default"), load_behaviour("weak-logprob")
    changed = {name for name in type(default.slm).model_fields if getattr(default.slm, name) != getattr(weak.slm, name)}

    assert changed == {"logprob_wrong", "logprob_noise"}
    assert weak.llm == default.llm
    assert weak.world == default.world


def test_auroc_is_the_rank_form() -> None:
    assert auroc([2.0, 3.0], [1.0]) == 1.0
    assert auroc([1.0], [2.0, 3.0]) == 0.0
    assert auroc([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert auroc([], [1.0]) == 0.5


def test_step_risk_grows_with_depth_not_with_the_share_of_the_chain_done() -> None:
    slm = load_behaviour().slm
    # Hop 2 carries the same history whether the request has 2 hops or 6.
    assert slm.depth(1) == 0.0
    assert slm.depth(slm.late_hops) == 1.0
    assert slm.error_probability(0.4, slm.depth(2), decomposed=False) < slm.error_probability(
        0.4, slm.depth(6), decomposed=False
    )


@pytest.mark.parametrize("family", ["lookup", "arithmetic"])
def test_request_features_read_only_the_text(family: str) -> None:
    world = World(0, load_behaviour().world)
    task = generate_tasks(world, family, 1)[0]
    features = request_features(task, world)

    assert features["hops"] == task.hops
    assert 0.0 < features["op_mix"] < 1.0
    assert ("magnitude" in features) == (family == "arithmetic")
