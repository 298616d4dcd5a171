"""The ladder's escalation rule, its per-pair threshold fit, and the policy's start rung."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from hera_router.config import RoutingSettings
from hera_router.estimators.divergence import LogisticHead
from hera_router.estimators.ladder_pair import MAX_POSITION, NEVER, LadderStarts, PairEstimator, SkipRule
from hera_router.routing.base import Executor, RoutingContext
from hera_router.routing.ladder import Ladder, LadderPolicy, pair_threshold


def test_escalation_goes_one_rung_at_a_time_and_never_past_the_top() -> None:
    ladder = Ladder(("tiny", "mid", "cheap", "cloud"), (-0.3, -0.4, -0.2))
    assert ladder.escalate(0, -0.9) == 1  # never straight to the cloud
    assert ladder.escalate(1, -0.9) == 2
    assert ladder.escalate(2, -0.9) == 3
    assert ladder.escalate(3, -9.0) is None  # the top rung is never judged
    assert ladder.escalate(0, -0.1) is None
    assert ladder.escalate(1, -0.4) is None  # at the threshold: accepted


def test_a_ladder_needs_one_threshold_per_adjacent_pair() -> None:
    with pytest.raises(ValueError, match="pair thresholds"):
        Ladder(("a", "b", "c"), (0.0,))
    with pytest.raises(ValueError, match="two rungs"):
        Ladder(("a",), ())


def test_pair_threshold_accepts_as_much_as_the_tolerance_allows() -> None:
    scores = [-0.1, -0.2, -0.3, -0.5, -0.7, -0.9]
    helped = [False, False, False, True, False, True]
    assert pair_threshold(scores, helped, 0.0) == -0.3
    assert pair_threshold(scores, helped, 0.2) == -0.7  # 1 bad in 5 accepted
    assert math.isinf(pair_threshold([-0.1], [True], 0.0))
    assert pair_threshold(scores, helped, 1.0) == -0.9


# -- the start rung from the per-pair estimators (estimators/ladder_pair.py) ---------------------


def _starts(*rules: SkipRule, names: tuple[str, ...] = ("tiny", "mid", "cloud")) -> LadderStarts:
    """Heads that read P(needed) off the embedding: pair k's P is sigmoid(10·x_k)."""
    dim = 4
    pairs = []
    for k, rule in enumerate(rules):
        weights = np.zeros(dim + MAX_POSITION + 1)
        weights[k] = 10.0
        pairs.append(PairEstimator(LogisticHead(weights, 0.0), rule))
    return LadderStarts(names, (-0.3, -0.4), tuple(pairs), encoder="fixed-for-test")


class _Fixed:
    """An encoder that maps each known text to a fixed vector."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.calls = 0

    def embed_many(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array([self.vectors[text] for text in texts])


def _context(text: str, seq: int = 1) -> RoutingContext:
    return RoutingContext(request_id="r", request="the request", current=text, seq=seq)


def test_the_policy_starts_a_step_on_the_cheapest_rung_its_pair_estimators_judge_sufficient() -> None:
    encoder = _Fixed({"easy": [-1, -1, 0, 0], "hard for tiny": [1, -1, 0, 0], "hard for both": [1, 1, 0, 0]})
    policy = LadderPolicy(RoutingSettings(), starts=_starts(SkipRule(0.5), SkipRule(0.5)), encoder=encoder)
    easy, hard, harder = (policy.decide(_context(t)) for t in ("easy", "hard for tiny", "hard for both"))
    assert (easy.rung, hard.rung, harder.rung) == (0, 1, 2)
    assert (easy.executor, hard.executor) == (Executor.SLM, Executor.LLM)  # without tiers: edge, cloud
    assert (easy.branch, hard.branch) == ("ladder", "ladder-start")
    assert hard.scores["ladder_r0_p_needed"] > 0.99 > 0.01 > hard.scores["ladder_r1_p_needed"]
    assert hard.scores["ladder_r0_skip_at"] == 0.5
    assert hard.estimator_versions["ladder-starts"].startswith("tiny>mid>cloud@")
    # The verify stage judges with the thresholds the start rules were fitted with.
    assert (policy.threshold(0), policy.threshold(1)) == (-0.3, -0.4)
    assert policy.judge(0, 3, -0.35).accept is False
    assert policy.judge(1, 3, -0.35).accept is True


def test_the_start_is_never_below_ladder_start_and_a_never_rule_never_skips() -> None:
    encoder = _Fixed({"hard for tiny": [1, -1, 0, 0]})
    floor = LadderPolicy(RoutingSettings(ladder_start=2), starts=_starts(NEVER, NEVER), encoder=encoder)
    assert floor.decide(_context("hard for tiny")).rung == 2
    never = LadderPolicy(RoutingSettings(), starts=_starts(NEVER, NEVER), encoder=encoder)
    assert never.decide(_context("hard for tiny")).rung == 0


def test_without_the_artifact_the_policy_is_todays_ladder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    plain = LadderPolicy(RoutingSettings(ladder_start=1, ladder_thresholds=[-0.2]))
    decision = plain.decide(_context("anything"))
    assert (decision.rung, decision.branch, dict(decision.scores)) == (1, "ladder", {})
    assert plain.threshold(0) == -0.2
    missing = LadderPolicy(RoutingSettings(ladder_estimators=tmp_path / "absent.json"))
    assert missing.starts is None
    assert "no such file" in caplog.text
    assert missing.decide(_context("anything")).rung == 0


def test_the_policy_loads_the_artifact_its_setting_names(tmp_path: Path) -> None:
    path = _starts(SkipRule(0.0), NEVER).save(tmp_path / "starts.json")  # always skip tiny
    policy = LadderPolicy(RoutingSettings(ladder_estimators=path), encoder=_Fixed({"x": [0, 0, 0, 0]}))
    assert policy.starts is not None
    assert policy.decide(_context("x")).rung == 1
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="cannot read"):
        LadderPolicy(RoutingSettings(ladder_estimators=tmp_path / "broken.json"))


def test_start_estimators_fitted_for_other_tiers_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    encoder = _Fixed({"hard for tiny": [1, -1, 0, 0]})
    policy = LadderPolicy(RoutingSettings(), starts=_starts(SkipRule(0.5), SkipRule(0.5)), encoder=encoder)
    policy.check_tiers(["tiny", "mid", "cloud"])  # the artifact's own tiers: kept
    assert policy.decide(_context("hard for tiny")).rung == 1
    policy.check_tiers([])  # no HERA_MODELS: the two rungs edge, cloud take any artifact
    assert policy.starts is not None
    policy.check_tiers(["small", "big", "cloud"])
    assert policy.starts is None
    assert "fitted for the tiers tiny, mid, cloud, not HERA_MODELS' small, big, cloud" in caplog.text
    assert policy.decide(_context("hard for tiny")).rung == 0
    assert policy.threshold(0) == RoutingSettings().ladder_threshold
