"""The training queue: profiling runs and estimator training (one at a time, long-running)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from celery import shared_task

from hera_router.pipeline.names import TaskName
from hera_router.workers.base import HeraTask


@shared_task(base=HeraTask, bind=True, name=TaskName.PROFILE, acks_late=False, max_retries=3)
def profile(self: Any, run_id: str) -> int:
    """Profile every request of run ``run_id`` that has no tree yet, then close the run.

    Idempotent: each request's tree is committed in one transaction and a re-run skips requests
    already profiled, so a retry or a second delivery resumes instead of duplicating trees.
    Acked early (``acks_late=False``): a run can outlive the broker's visibility timeout, and a
    lost worker leaves a resumable run (``hera-router profile --resume``), not a redelivery storm.
    Retries: transient database/broker/backend errors retry with backoff (HeraTask).
    """
    from hera_router.training.profiling import profile_run

    runtime = self.app.hera_runtime
    requests: int = profile_run(runtime.settings, runtime.sessions, uuid.UUID(run_id))
    return requests


@shared_task(base=HeraTask, bind=True, name=TaskName.TRAIN_ESTIMATOR, acks_late=False, max_retries=0)
def train_estimator(
    self: Any, name: str, run_id: str, scheduled_for: str, variant: str | None = None, promote: bool = False
) -> int | None:
    """Train estimator ``name`` on profile run ``run_id`` and register a candidate version.

    Idempotent: the ``training_runs`` row is unique per (name, ``scheduled_for``), so a second beat
    or a redelivered message finds it claimed and does nothing (returns None). Acked early and not
    retried: a failed run is recorded as failed with its error, and the next schedule tries again.
    ``promote`` makes the new version active (nightly retraining leaves promotion to an operator).
    """
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.training.trainers import train_estimator as train

    runtime = self.app.hera_runtime
    result = train(
        runtime, name, uuid.UUID(run_id), variant=variant, scheduled_for=datetime.fromisoformat(scheduled_for)
    )
    if result is None:
        return None
    if promote:
        with session_scope(runtime.sessions) as session:
            EstimatorVersionRepository(session).promote(name, result.version)
    return result.version


@shared_task(base=HeraTask, bind=True, name=TaskName.SHADOW_REQUEST, max_retries=3)
def shadow_request(self: Any, request_id: str) -> str:
    """Re-run finished request ``request_id`` as a profiling tree: shadow labels (training/shadow.py).

    Idempotent: the ``shadow_runs`` row is unique per request and claimed before any model call,
    so a redelivered or duplicated message stops at the claim and never pays twice. Late ack
    (the default): a lost worker's message is redelivered and the claim decides. Retries:
    transient backend/database errors release the claim and retry with backoff (HeraTask).
    """
    from hera_router.training.shadow import shadow_request as run

    return run(self.app.hera_runtime, uuid.UUID(request_id)).status


@shared_task(base=HeraTask, bind=True, name=TaskName.RETRAIN_NIGHTLY, acks_late=False, max_retries=0)
def retrain_nightly(
    self: Any, scheduled_for: str | None = None, trigger: str = "beat", names: list[str] | None = None
) -> list[str]:
    """Continual fine-tuning for one schedule slot (training/continual.py); returns one line per estimator.

    ``scheduled_for`` is the slot; beat sends none and the slot is the latest time the nightly
    schedule fired, so two beats or a redelivery land on the same slot. Idempotent: the
    ``training_runs`` row is unique per (estimator, slot) and the run holds an advisory lock, so a
    second copy does nothing. Acked early and never retried (a run can outlive the visibility
    timeout): a crash leaves a run marked failed (by the next run or ``training.reap_abandoned_runs``)
    and no registered version; the next slot tries again.
    """
    from hera_router.db.base import utcnow
    from hera_router.training.continual import last_slot, retrain

    runtime = self.app.hera_runtime
    slot = (
        datetime.fromisoformat(scheduled_for)
        if scheduled_for
        else last_slot(runtime.settings.continual.schedule, utcnow())
    )
    outcomes = retrain(runtime, slot=slot, names=names, trigger=trigger)
    return [outcome.describe() for outcome in outcomes]


@shared_task(base=HeraTask, bind=True, name=TaskName.REAP_TRAINING_RUNS, max_retries=0)
def reap_abandoned_runs(self: Any) -> int:
    """Mark failed the training runs whose trainer died (no lock holder, no heartbeat); returns how many.

    Idempotent: only rows still ``running`` change. Cheap and periodic; not retried.
    """
    from hera_router.training.continual import reap_abandoned_runs as reap

    return len(reap(self.app.hera_runtime))
