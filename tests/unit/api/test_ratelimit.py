"""The in-process rate limiter's windows and counting, on a controlled clock."""

from __future__ import annotations

import uuid

from hera_router.api.ratelimit import KeyLimits, MemoryRateLimiter, tokens_of


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_requests_are_refused_until_the_minute_ends_and_refusals_are_not_counted() -> None:
    clock = Clock(600.0 + 15.2)
    limiter = MemoryRateLimiter(clock)
    key = uuid.uuid4()
    limits = KeyLimits(requests_per_minute=2, tokens_per_minute=0)

    assert limiter.admit(key, 0, limits) is None
    assert limiter.admit(key, 0, limits) is None
    refusal = limiter.admit(key, 0, limits)
    assert refusal is not None
    assert (refusal.limit, refusal.per_minute, refusal.retry_after_s) == ("requests", 2, 45)
    assert limiter.admit(uuid.uuid4(), 0, limits) is None  # another key has its own window

    clock.now = 660.0
    assert limiter.admit(key, 0, limits) is None
    assert limiter.admit(key, 0, limits) is None
    assert limiter.admit(key, 0, limits) is not None


def test_tokens_fill_the_window_and_an_oversized_call_fits_only_an_empty_one() -> None:
    clock = Clock(0.0)
    limiter = MemoryRateLimiter(clock)
    key = uuid.uuid4()
    limits = KeyLimits(requests_per_minute=0, tokens_per_minute=100)

    assert limiter.admit(key, 60, limits) is None
    assert limiter.admit(key, 40, limits) is None
    refusal = limiter.admit(key, 1, limits)
    assert refusal is not None
    assert refusal.limit == "tokens"
    clock.now = 61.0
    assert limiter.admit(key, 500, limits) is None  # larger than the limit, alone in its window
    assert limiter.admit(key, 1, limits) is not None


def test_tokens_come_from_the_declared_body_size() -> None:
    assert tokens_of(None) == 0
    assert tokens_of("abc") == 0
    assert tokens_of("0") == 0
    assert tokens_of("9") == 3
    assert tokens_of("400") == 100
