"""Failure policy shared by every backend: retries with backoff, and a circuit breaker.

The policy lives here, once, rather than in each client: the ``openai`` client's own retries are
switched off and ``huggingface_hub`` has none, so :class:`ResilientBackend` is the only place that
decides whether a call is tried again.

- Retried: :class:`BackendUnavailable` (connection errors, timeouts, 429, 5xx). Backoff is
  exponential with full jitter, so that many workers hitting one overloaded server spread out
  instead of retrying in lock-step. A ``Retry-After`` from the server is a floor on the wait; one
  longer than ``backoff_max_s`` is not slept through (it would pin a worker thread): the call fails
  at once with ``retry_after_s`` set so the task can retry later with a countdown.
- Not retried: :class:`BackendRejected` (4xx: the same request fails the same way) and any other
  error (a malformed answer would come back the same way).
- Circuit breaker per backend instance: after ``failure_threshold`` consecutive failed attempts it
  opens and calls fail fast with :class:`CircuitOpen` (no request is sent) until ``reset_s`` has
  passed; then one trial call is let through (half-open) and its outcome closes or re-opens it.
  A rejection counts as a success: a 4xx says the request was bad, not that the server is unhealthy.

Clock, sleep and randomness are injectable so tests never sleep for real.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from hera_router.backends.base import (
    BackendError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    Generation,
    GenerationParams,
    Message,
    ModelBackend,
)
from hera_router.config import BackendSettings

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date), or None.

    Malformed values are ignored rather than raised: a bad header must not turn a retryable 429
    into a crash.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    @classmethod
    def from_settings(cls, config: BackendSettings) -> RetryPolicy:
        return cls(
            max_retries=config.max_retries,
            backoff_base_s=config.backoff_base_s,
            backoff_max_s=config.backoff_max_s,
        )

    def delay(self, retry: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Wait before retry number ``retry`` (0-based): full jitter, floored by ``Retry-After``."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**retry))
        jittered = rng.uniform(0.0, ceiling)
        return jittered if retry_after_s is None else max(retry_after_s, jittered)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker, thread-safe, reporting its state for metrics and health checks."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_s: float = 30.0,
        clock: Clock = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """``open`` while failing fast; ``half_open`` once the reset time has passed."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_s:
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def is_open(self) -> bool:
        return self.state is BreakerState.OPEN

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go out now."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return
            waited = self._clock() - self._opened_at
            # Only one trial call at a time while half-open: a recovering server should see one
            # request, not the whole backlog at once.
            if waited >= self.reset_s and not self._trial_in_flight:
                self._trial_in_flight = True
                self._set(BreakerState.HALF_OPEN)
                return
            remaining = max(0.0, self.reset_s - waited)
            raise CircuitOpen(
                self.name,
                f"circuit breaker is open after {self._failures} consecutive failures; "
                f"not calling the server for another {remaining:.1f}s",
                retry_after_s=remaining,
            )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_in_flight = False
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_in_flight = False
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
                self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(self.name, state)


class ResilientBackend:
    """Wraps a backend with the retry policy and a circuit breaker; itself a :class:`ModelBackend`.

    Create one per process and reuse it (a worker does so at start-up): the breaker only protects a
    server if every call to that server goes through the same instance.
    """

    def __init__(
        self,
        inner: ModelBackend,
        *,
        retry: RetryPolicy,
        breaker: CircuitBreaker,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.retry = retry
        self.breaker = breaker
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        attempt = 0
        while True:
            self.breaker.before_call()
            try:
                generation = self.inner.generate(messages, params)
            except BackendUnavailable as exc:
                self.breaker.record_failure()
                if attempt >= self.retry.max_retries:
                    raise _exhausted(exc, attempt + 1) from exc
                if exc.retry_after_s is not None and exc.retry_after_s > self.retry.backoff_max_s:
                    raise  # the server asked for a long pause: let the task reschedule
                with self._rng_lock:
                    wait = self.retry.delay(attempt, self._rng, exc.retry_after_s)
                self._sleep(wait)
                attempt += 1
                continue
            except BackendRejected:
                # The server answered, if only to say no: it is healthy, the request was not.
                self.breaker.record_success()
                raise
            except Exception:
                # A malformed answer (or a bug in a client) is not retried, since the same call
                # would get the same answer, but it does say the server is not well.
                self.breaker.record_failure()
                raise
            self.breaker.record_success()
            return replace(generation, attempts=attempt + 1)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def _exhausted(exc: BackendUnavailable, attempts: int) -> BackendUnavailable:
    """The last error, re-raised with how many attempts were made (same type, so timeouts stay timeouts)."""
    message = str(exc).removeprefix(f"{exc.backend}: ")
    again = type(exc).__new__(type(exc))
    again.__dict__.update(exc.__dict__)
    again.args = (f"{exc.backend}: {message} (gave up after {attempts} attempts)",)
    return again


def error_for_status(backend: str, status_code: int, detail: str, *, retry_after: str | None = None) -> BackendError:
    """The typed error for an HTTP failure status, shared by the HTTP clients.

    429 and 5xx are transient (the server is busy or broken right now); 408 and 504 are timeouts
    on the server's side; any other 4xx is a rejection that retrying cannot fix.
    """
    message = f"HTTP {status_code}: {detail}"
    if status_code in (408, 504):
        return BackendTimeout(backend, message, status_code=status_code)
    if status_code == 429 or status_code >= 500:
        return BackendUnavailable(
            backend, message, status_code=status_code, retry_after_s=parse_retry_after(retry_after)
        )
    if 400 <= status_code < 500:
        return BackendRejected(backend, message, status_code=status_code)
    return BackendError(backend, f"unexpected {message}")
