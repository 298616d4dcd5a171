"""A task used by the worker tests: it proves a message went broker -> worker -> database.

Registered with ``shared_task`` so that every app created in the test process and the
``celery -A hera_router.workers`` app in a worker subprocess (``-I`` this module) know it.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from hera_router.backends.base import BackendUnavailable
from hera_router.db.repositories.tenants import TenantRepository
from hera_router.db.session import session_scope
from hera_router.workers.base import HeraTask

# name -> failures still to raise before succeeding (the in-process retry test sets it).
FLAKY_FAILURES: dict[str, int] = {}


@shared_task(base=HeraTask, bind=True, name="maintenance.test_record_probe")
def record_probe(self: Any, name: str) -> None:
    """Create tenant ``name`` unless it exists (idempotent: redelivery changes nothing)."""
    with session_scope(self.runtime.sessions) as session:
        tenants = TenantRepository(session)
        if tenants.by_name(name) is None:
            tenants.create(name)


@shared_task(base=HeraTask, bind=True, name="maintenance.test_flaky_probe", retry_backoff=1, max_retries=3)
def flaky_probe(self: Any, name: str) -> None:
    """Fail with a transient backend error FLAKY_FAILURES[name] times, then record the probe."""
    if FLAKY_FAILURES.get(name, 0) > 0:
        FLAKY_FAILURES[name] -= 1
        raise BackendUnavailable("test-backend", "simulated 503")
    record_probe.run(name)


@shared_task(base=HeraTask, bind=True, name="maintenance.test_broken_probe")
def broken_probe(self: Any, name: str) -> None:
    """A programming error: must fail once, without retries."""
    raise ValueError(f"probe {name} is broken")


@shared_task(base=HeraTask, bind=True, name="maintenance.test_sleep_probe")
def sleep_probe(self: Any, name: str, seconds: float) -> None:
    """Hold a worker slot for ``seconds`` (an acks_late task in flight), then record the probe."""
    import time

    time.sleep(seconds)
    record_probe.run(name)
