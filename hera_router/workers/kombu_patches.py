"""Work around kombu 5.7.0's redis channel being closed twice after a broker connection loss.

Without this, restarting Redis kills a worker (any pool) with ``Unrecoverable error:
AttributeError("'NoneType' object has no attribute 'hostname'")``. The root cause, reproduced, is
in docs/research/issue16-kombu-redis-restart.md; in short:

1. celery 5.7 cleans up a broken connection with ``Connection.collect()`` and then
   ``Connection.close()`` (``celery.worker.consumer.consumer``).
2. If a BRPOP was outstanding, the first ``Channel.close()`` (inside ``collect()``) calls
   ``_brpop_read()``, which raises redis ``ConnectionError``; ``close()`` only expects ``Empty``,
   so it aborts before the channel is marked closed. ``collect()`` swallows the error and then
   detaches the transport (``Transport.client = None``).
3. The second close restores the unacked messages, which rebuilds a redis pool through
   ``_connparams()`` from ``self.connection.client`` — now None — and raises AttributeError.
   AttributeError is not a connection error, so celery treats it as unrecoverable and stops.

The patch has two halves, each sufficient on its own in the repro (both are applied):

- ``Channel.close()`` drains an outstanding BRPOP whatever it raises, so the first close
  completes and the channel is really closed;
- ``Channel._connparams()`` raises redis ``ConnectionError`` (a recoverable error for kombu and
  celery) instead of AttributeError when the channel's transport has been detached, which covers
  every other late use of a dead channel (a thread's late ack, a restore).

Messages are not lost by it: unacked deliveries of the dead connection cannot be pushed back
while Redis is down anyway; if Redis kept its data they come back after the visibility timeout,
if it restarted empty the reconciler re-drives their requests from Postgres.

It patches private kombu internals, so it applies only on the versions it was written and
tested for (:data:`PATCHED_FOR`); pyproject.toml accepts a range of kombu. On any other version,
or when the internals it wraps are gone, it does not patch and logs a warning (the worker runs,
without the Redis-restart fix): re-run tests/integration/workers/test_broker_restart.py against
the new version and either extend :data:`PATCHED_FOR` or delete this module if kombu fixed it.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PATCHED_FOR: frozenset[str] = frozenset({"5.7.0"})
"""kombu versions whose redis ``Channel.close`` / ``_connparams`` this patch was checked against."""

_MARK = "_hera_restart_patch"
_WRAPPED = ("_connparams", "close", "_brpop_read")
"""The Channel methods the patch wraps or calls."""


def install() -> bool:
    """Patch kombu's redis Channel once per process; True if the patch is (now) in place."""
    import kombu
    from kombu.transport import redis as kombu_redis

    channel: Any = kombu_redis.Channel
    if getattr(channel, _MARK, False):
        return True
    problem = unpatchable(kombu.__version__, channel)
    if problem is not None:
        log.warning(
            "%s: NOT patching; workers may die with AttributeError 'hostname' when Redis restarts. Re-check "
            "hera_router/workers/kombu_patches.py against this kombu and update PATCHED_FOR.",
            problem,
        )
        return False
    from redis.exceptions import ConnectionError as RedisConnectionError

    original_connparams = channel._connparams
    original_close = channel.close

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            # The kombu Connection was collected: never rebuild a pool from nothing.
            raise RedisConnectionError("kombu redis channel used after its connection was closed")
        return original_connparams(self, asynchronous=asynchronous)

    def close(self: Any) -> Any:
        if self._in_poll:
            try:
                self._brpop_read()  # clears _in_poll in its finally
            except Exception:  # Empty, or the ConnectionError that broke the socket
                log.debug("outstanding BRPOP drained with an error while closing the channel", exc_info=True)
        return original_close(self)

    channel._connparams = _connparams
    channel.close = close
    setattr(channel, _MARK, True)
    return True


def unpatchable(version: str, channel: Any) -> str | None:
    """Why the patch must not be applied to kombu ``version``'s redis ``channel`` class, or None."""
    if version not in PATCHED_FOR:
        return (
            f"kombu {version} is not a version the Redis-restart patch was checked against "
            f"({', '.join(sorted(PATCHED_FOR))})"
        )
    missing = [name for name in _WRAPPED if not callable(getattr(channel, name, None))]
    if missing:
        return f"kombu {version}'s redis Channel has no {', '.join(missing)}"
    return None


def installed() -> bool:
    """Is the patch in place in this process (for tests and the worker's startup log)?"""
    from kombu.transport import redis as kombu_redis

    return bool(getattr(kombu_redis.Channel, _MARK, False))
