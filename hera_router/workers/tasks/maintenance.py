"""Periodic maintenance: the outbox relay and the reconciler (scheduled by beat)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from hera_router.pipeline.names import TaskName
from hera_router.workers.base import HeraTask


@shared_task(base=HeraTask, bind=True, name=TaskName.RELAY_OUTBOX, acks_late=False, max_retries=0)
def relay_outbox(self: Any) -> int:
    """Publish outbox rows that were not published right after their commit.

    Idempotent: a row is marked published in the transaction that claimed it; a row published
    twice carries the same task id and its task is idempotent. No retries: the next tick retries.
    """
    published: int = self.app.pipeline.relay()
    return published


@shared_task(base=HeraTask, bind=True, name=TaskName.RECONCILE, acks_late=False, max_retries=0)
def reconcile(self: Any) -> int:
    """Re-drive active requests without progress past the deadline (HERA_RECONCILE_AFTER_S).

    Idempotent: re-driving re-opens the missing hop's outbox row; the hop itself is idempotent.
    No retries: the next tick retries.
    """
    redriven: int = self.app.pipeline.reconcile()
    return redriven
