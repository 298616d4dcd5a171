"""The ladder's escalation rule and its per-pair threshold fit."""

from __future__ import annotations

import math

import pytest

from hera_router.routing.ladder import Ladder, pair_threshold


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
