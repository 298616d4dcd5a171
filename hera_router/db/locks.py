"""Cross-process mutual exclusion for long jobs: Postgres session advisory locks.

A nightly retraining holds ``retrain:<estimator>`` for its whole run on a dedicated connection.
Postgres releases a session lock when its connection ends, so a trainer that is killed (OOM,
SIGKILL, a lost machine) frees it at once: whoever takes the lock next knows that any run still
marked ``running`` has no live trainer. On SQLite (embedded mode: one process) the lock is a
process-local one, and dead runs are found by their heartbeat instead.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (what ``pg_try_advisory_lock`` takes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def supports_advisory_locks(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def try_advisory_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Try to take the lock ``name`` without waiting; yields whether it is held for the block."""
    if not supports_advisory_locks(engine):
        with _local_guard:
            local = _local_locks.setdefault(name, threading.Lock())
        acquired = local.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                local.release()
        return
    key = lock_key(name)
    with engine.connect() as connection:
        held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        # Not inside a transaction while the block runs: an idle-in-transaction timeout must not
        # cut the connection (and with it the lock) during an hour of training.
        connection.commit()
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
