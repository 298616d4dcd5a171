"""Calibration meets its target on the validation requests and reports the held-out ones."""

from __future__ import annotations

import pytest

from hera_router.config import RoutingSettings
from hera_router.evaluation.calibrate import calibrate, split_keys
from hera_router.evaluation.metrics import slm_usage
from hera_router.evaluation.sweeps import hera_with
from hera_router.training.replay import Replayer
from tests.unit.evaluation.stubs import hashed_estimators, simulated_profile, simulated_records
from tests.unit.evaluation.test_replay import SEED, extension


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    profile = simulated_profile(simulated_records("mixed", 40, SEED), SEED, budget=64)
    return Replayer(profile, hashed_estimators(), extension=extension())


def test_split_is_deterministic_and_disjoint() -> None:
    keys = [f"k{i}" for i in range(200)]
    validation, held_out = split_keys(keys)
    assert (validation, held_out) == split_keys(list(keys))
    assert not set(validation) & set(held_out)
    assert set(validation) | set(held_out) == set(keys)
    assert 70 < len(validation) < 130


@pytest.mark.parametrize("goal", [0.6, 0.85])
def test_calibration_hits_the_target_slm_share_within_three_points(replayer: Replayer, goal: float) -> None:
    keys = [t.key for t in replayer.profile.trees]
    validation, held_out = split_keys(keys)
    routing = RoutingSettings()
    all_llm = replayer.profile.all_llm_costs()
    # The target lies inside what the grid can reach (the most and the least conservative corner).
    lowest, _ = replayer.run(hera_with(routing, tau_req=1.0, kappa_base=0.9), validation)
    highest, _ = replayer.run(hera_with(routing, tau_req=0.4, kappa_base=0.4), validation)
    assert slm_usage(lowest) + 0.05 < goal < slm_usage(highest) - 0.05
    result = calibrate(
        replayer, routing, all_llm, target="slm_share", goal=goal, validation=validation, held_out=held_out
    )
    assert result.met
    assert abs(result.validation.slm_usage - goal) <= 0.03
    # The reported numbers are those of the chosen thresholds, re-measured independently.
    outcomes, _ = replayer.run(hera_with(routing, tau_req=result.tau_req, kappa_base=result.kappa_base), held_out)
    assert result.held_out.counted == len([o for o in outcomes if o.counted])
    assert result.held_out.requests == len(held_out)


def test_calibration_to_a_cost_ratio(replayer: Replayer) -> None:
    validation, held_out = split_keys([t.key for t in replayer.profile.trees])
    result = calibrate(
        replayer,
        RoutingSettings(),
        replayer.profile.all_llm_costs(),
        target="cost",
        goal=0.3,
        validation=validation,
        held_out=held_out,
    )
    assert result.met
    assert abs(result.validation.cost - 0.3) <= 0.03
