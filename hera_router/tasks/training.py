"""The training queue: profiling runs and estimator training (one at a time, long-running)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from celery import shared_task

from hera_router.workers.base import HeraTask


@shared_task(base=HeraTask, bind=True, name="training.profile", acks_late=False, max_retries=3)
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


@shared_task(base=HeraTask, bind=True, name="training.train_estimator", acks_late=False, max_retries=0)
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
