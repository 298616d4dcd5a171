"""One log line per outage, not one per failed attempt.

When Postgres restarts, every task in every worker process fails at once and retries with
backoff; logging each attempt (plus celery's own "retry" and "raised unexpected" lines with
tracebacks) buried a short outage under thousands of lines. :class:`OutageLog` keeps, per process and per
dependency ("database"), whether an outage is in progress: the first failure logs a WARNING, the
repeats are only counted (with a short reminder every ``remind_every_s`` while it lasts), and the
first success afterwards logs one INFO line with the outage's length and how many failures it
absorbed.

:class:`CountOutageFailures` is the logging filter that keeps celery's own per-attempt records
about the same errors (``celery.app.trace``) out of the log while the outage is open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class _Outage:
    started: float
    last_logged: float
    failures: int
    first_error: str


class OutageLog:
    """Per-process record of ongoing outages, keyed by dependency name. Thread-safe."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        remind_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger or log
        self._remind_every_s = remind_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._outages: dict[str, _Outage] = {}

    def failure(self, dependency: str, error: BaseException | str) -> None:
        """A call to ``dependency`` failed with a transient error: log it if it opens an outage."""
        now = self._clock()
        text = one_line(error)
        with self._lock:
            outage = self._outages.get(dependency)
            if outage is None:
                self._outages[dependency] = _Outage(started=now, last_logged=now, failures=1, first_error=text)
                self._log.warning(
                    "%s unavailable: %s; tasks retry with backoff, further failures are counted until it is back",
                    dependency,
                    text,
                )
                return
            outage.failures += 1
            if now - outage.last_logged >= self._remind_every_s:
                outage.last_logged = now
                self._log.warning(
                    "%s still unavailable after %.0f s (%d failures so far): %s",
                    dependency,
                    now - outage.started,
                    outage.failures,
                    text,
                )

    def recovered(self, dependency: str) -> None:
        """A call to ``dependency`` succeeded: close its outage, if one is open, with a summary."""
        if dependency not in self._outages:  # the common case, without the lock
            return
        now = self._clock()
        with self._lock:
            outage = self._outages.pop(dependency, None)
        if outage is not None:
            self._log.info(
                "%s back after %.1f s; %d failed attempts during the outage (first: %s)",
                dependency,
                now - outage.started,
                outage.failures,
                outage.first_error,
            )

    def in_outage(self, dependency: str) -> bool:
        return dependency in self._outages

    def failures(self, dependency: str) -> int:
        outage = self._outages.get(dependency)
        return outage.failures if outage is not None else 0


class CountOutageFailures(logging.Filter):
    """Drop log records about an error of a known transient kind while its outage is open.

    Attached to ``celery.app.trace``: celery logs every retry ("Retry in 4s: OperationalError…")
    and every task that gave up ("raised unexpected" with a traceback). For the database those
    are the same outage again: HeraTask's ``on_retry``/``on_failure`` (which celery calls before
    it logs) has already counted the attempt, and the outage log's WARNING and summary say it
    once. A record of that kind while no outage is open is kept.
    """

    def __init__(self, outages: OutageLog, dependency: str, kinds: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self._outages = outages
        self._dependency = dependency
        self._kinds = kinds
        self._names = tuple(kind.__name__ for kind in kinds)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._outages.in_outage(self._dependency):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, self._kinds):
            return False
        if error is None and isinstance(record.args, dict):
            # celery's retry record carries the Retry (whose .exc is the cause), shown as text.
            reason = record.args.get("exc")
            if isinstance(getattr(reason, "exc", None), self._kinds):
                return False
            if any(f"{name}(" in str(reason) for name in self._names):
                return False
        return True


def one_line(error: BaseException | str) -> str:
    """``error`` as one short line (its type and the first line of its text), for a log record."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    first = text.strip().splitlines()[0] if text.strip() else text
    return first[:300]
