"""Retry policy and circuit breaker, with a fake clock and sleeper: nothing here sleeps."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime

import pytest

from hera_router.backends.base import (
    BackendError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    Generation,
    GenerationParams,
    Message,
)
from hera_router.backends.echo import EchoBackend
from hera_router.backends.resilience import (
    BreakerState,
    CircuitBreaker,
    ResilientBackend,
    RetryPolicy,
    error_for_status,
    parse_retry_after,
)

HELLO = [Message(role="user", content="hello")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A backend that raises the scripted errors in order, then answers like echo."""

    name = "scripted"
    model = "scripted-model"

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return EchoBackend(self.model).generate(messages, params)


def resilient(
    inner: Scripted, *, retries: int = 3, threshold: int = 100, clock: FakeClock | None = None
) -> tuple[ResilientBackend, list[float]]:
    slept: list[float] = []
    breaker = CircuitBreaker("scripted", failure_threshold=threshold, reset_s=30.0, clock=clock or FakeClock())
    backend = ResilientBackend(
        inner,
        retry=RetryPolicy(max_retries=retries, backoff_base_s=0.5, backoff_max_s=8.0),
        breaker=breaker,
        sleep=slept.append,
        rng=random.Random(7),
    )
    return backend, slept


def unavailable(retry_after: float | None = None) -> BackendUnavailable:
    return BackendUnavailable("scripted", "HTTP 503: busy", status_code=503, retry_after_s=retry_after)


def test_transient_errors_are_retried_with_growing_jittered_backoff() -> None:
    inner = Scripted(unavailable(), unavailable(), BackendTimeout("scripted", "slow"))
    backend, slept = resilient(inner)

    generation = backend.generate(HELLO, GenerationParams())

    assert generation.text == "echo: hello"
    assert generation.attempts == 4
    assert inner.calls == 4
    assert len(slept) == 3
    for retry, wait in enumerate(slept):
        assert 0.0 <= wait <= min(8.0, 0.5 * 2**retry)


def test_retry_after_is_a_floor_on_the_wait() -> None:
    inner = Scripted(unavailable(retry_after=2.5))
    backend, slept = resilient(inner)

    backend.generate(HELLO, GenerationParams())

    assert slept[0] >= 2.5


def test_a_retry_after_longer_than_the_backoff_cap_is_handed_to_the_caller() -> None:
    inner = Scripted(unavailable(retry_after=120.0))
    backend, slept = resilient(inner)

    with pytest.raises(BackendUnavailable) as caught:
        backend.generate(HELLO, GenerationParams())

    assert caught.value.retry_after_s == 120.0
    assert slept == []
    assert inner.calls == 1


def test_exhausted_retries_raise_the_last_error_type_with_the_attempt_count() -> None:
    inner = Scripted(*(BackendTimeout("scripted", "no answer") for _ in range(3)))
    backend, _ = resilient(inner, retries=2)

    with pytest.raises(BackendTimeout, match="gave up after 3 attempts"):
        backend.generate(HELLO, GenerationParams())
    assert inner.calls == 3


def test_rejections_are_not_retried() -> None:
    inner = Scripted(BackendRejected("scripted", "HTTP 400: bad", status_code=400))
    backend, slept = resilient(inner)

    with pytest.raises(BackendRejected):
        backend.generate(HELLO, GenerationParams())
    assert inner.calls == 1
    assert slept == []


def test_breaker_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = FakeClock()
    inner = Scripted(*(unavailable() for _ in range(3)))
    backend, _ = resilient(inner, retries=0, threshold=3, clock=clock)

    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            backend.generate(HELLO, GenerationParams())
    assert backend.breaker.state is BreakerState.OPEN

    with pytest.raises(CircuitOpen) as caught:
        backend.generate(HELLO, GenerationParams())
    assert inner.calls == 3  # the fourth call never reached the backend
    assert caught.value.retry_after_s == pytest.approx(30.0)


def test_breaker_lets_one_trial_through_after_the_reset_time_and_closes_on_success() -> None:
    clock = FakeClock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(
        "b", failure_threshold=1, reset_s=10.0, clock=clock, on_change=lambda _, s: changes.append(s)
    )
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN

    clock.now += 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the trial call
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller waits for the trial's outcome
    breaker.record_success()

    assert breaker.state is BreakerState.CLOSED
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_trial_reopens_the_breaker_for_a_full_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("b", failure_threshold=5, reset_s=10.0, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 10.0
    breaker.before_call()
    breaker.record_failure()

    assert breaker.state is BreakerState.OPEN
    clock.now += 9.0
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_a_rejection_counts_as_the_server_being_healthy() -> None:
    clock = FakeClock()
    inner = Scripted(unavailable(), unavailable(), BackendRejected("scripted", "HTTP 400", status_code=400))
    backend, _ = resilient(inner, retries=0, threshold=3, clock=clock)
    for _ in range(3):
        with pytest.raises(BackendError):
            backend.generate(HELLO, GenerationParams())
    assert backend.breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 0.25 ", 0.25), ("-4", 0.0), ("soon", None), (None, None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 26 Nov 2026 12:00:30 GMT", now=now) == 30.0


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, BackendUnavailable, True),
        (500, BackendUnavailable, True),
        (503, BackendUnavailable, True),
        (504, BackendTimeout, True),
        (408, BackendTimeout, True),
        (400, BackendRejected, False),
        (401, BackendRejected, False),
        (422, BackendRejected, False),
    ],
)
def test_error_for_status(status: int, kind: type[BackendError], retryable: bool) -> None:
    error = error_for_status("tgi", status, "detail", retry_after="1")
    assert type(error) is kind
    assert error.retryable is retryable
    assert f"HTTP {status}" in str(error)


def test_backend_errors_survive_pickling() -> None:
    error = BackendUnavailable("tgi", "HTTP 503: busy", status_code=503, retry_after_s=2.0)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is BackendUnavailable
    assert str(copy) == str(error)
    assert copy.retry_after_s == 2.0
    assert copy.backend == "tgi"
