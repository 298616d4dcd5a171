"""The nightly run on real Postgres with real LoRA training: the gate both ways.

Slow (a tiny bootstrap plus two LoRA updates: about 15 minutes on a loaded 2-core machine), so
opt-in with ``-m slow``; the fast checks of the same machinery are in ``test_runs.py``, and
``test_distributed.py`` runs a cycle (gate wide open) through real worker processes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hera_router.db.enums import EstimatorStatus
from hera_router.db.repositories import EstimatorVersionRepository, ShadowRunRepository
from hera_router.db.session import session_scope
from hera_router.training.continual import retrain
from tests.integration.continual.conftest import Bootstrapped, active_version, restore_bootstrap, shadow_traffic

_slot = [datetime(2030, 1, 1, 2, 0, tzinfo=UTC)]


def next_slot() -> datetime:
    _slot[0] += timedelta(days=1)
    return _slot[0]


pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1800)]


def test_the_gate_promotes_a_better_candidate_then_rejects_one_made_worse_on_purpose(
    bootstrapped: Bootstrapped,
) -> None:
    """One scenario, because the rejection needs an active version that is good on the traffic it is
    judged on: the bootstrap DP (``default`` preset) is near or below chance on drifted labels
    (balanced accuracy 0.07 in one run), and a deliberately wrong candidate could not reliably be
    worse than that. The version promoted by the first cycle was trained on the drift, so it is.
    """
    # Early stopping off: it could otherwise keep "epoch 0", i.e. the active adapter unchanged.
    no_early_stop = {"encoder_early_stopping_fraction": 0.0}
    runtime = bootstrapped.runtime(update_min_steps=60, estimators=no_early_stop)
    try:
        # 1. Drifted shadow labels: the LoRA update beats the bootstrap on the same held-out slice.
        # The split is by request id (random), so the slice differs per run: 80 requests give it
        # ~70 labels; with ~45, balanced accuracy (rare classes weigh as much as common ones) was
        # too noisy to tell the versions apart reliably.
        shadow_traffic(runtime, 80)
        [outcome] = retrain(runtime, slot=next_slot(), names=["dp"])
        assert outcome.status == "promoted", outcome.reason
        gate = outcome.metrics
        assert gate["candidate"] > gate["active"], gate["reason"]
        assert gate["active_version"] == bootstrapped.dp_version
        promoted = outcome.version
        assert promoted is not None
        assert active_version(runtime) == promoted
        with session_scope(runtime.sessions) as session:
            row = EstimatorVersionRepository(session).get("dp", promoted)
            assert row is not None
            assert row.metrics["warm_start_from"] == bootstrapped.dp_version
            assert row.data_window_end is not None
            # The next run starts after this version's data window: the same labels are not new.
            assert ShadowRunRepository(session).labelled_since(row.data_window_end, 10_000) == []
        [again] = retrain(runtime, slot=next_slot(), names=["dp"])
        assert again.status == "skipped"
        assert again.reason is not None
        assert again.reason.startswith("0 new dp labels")

        # 2. More drifted traffic, but every training label moved to another class: the candidate
        # learns to be wrong and must lose to the promoted version on the same held-out slice.
        strict = bootstrapped.runtime(tolerance=0.0, update_learning_rate=5e-3, estimators=no_early_stop)
        try:
            shadow_traffic(strict, 40)
            max_distance = strict.settings.estimators.max_distance

            def wrong(labels: list[int]) -> list[int]:
                return [(label + 1) % (max_distance + 2) for label in labels]

            [worse] = retrain(strict, slot=next_slot(), names=["dp"], label_transform=wrong)
            assert worse.status == "rejected", worse.reason
            assert worse.metrics["candidate"] < worse.metrics["active"]
            assert worse.metrics["active_version"] == promoted
            assert "more than the tolerance" in (worse.reason or "")
            assert active_version(strict) == promoted
            with session_scope(strict.sessions) as session:
                row = EstimatorVersionRepository(session).get("dp", worse.version or 0)
                assert row is not None
                assert row.status is EstimatorStatus.CANDIDATE
                assert row.metrics["gate"]["decision"] == "rejected"
                assert row.metrics["gate"]["reason"] == worse.reason
        finally:
            strict.close()
    finally:
        restore_bootstrap(runtime, bootstrapped)
        runtime.close()
