"""Per-key rate limits: calls per minute and tokens per minute, in fixed one-minute windows.

Every authenticated call is admitted or refused by the caller's API key: the key's own limits
(``api_keys.requests_per_minute`` / ``tokens_per_minute``, set with ``hera-router keys limit``)
or the deployment's (``HERA_API__REQUESTS_PER_MINUTE`` / ``__TOKENS_PER_MINUTE``); 0 is
unlimited. Tokens are counted at admission from the body's declared size at four bytes a token
(what the call sends; answers are not counted), and a call larger than the whole token limit is
admitted only into an otherwise empty window, so it is slowed, never locked out. A refused call
is not counted.

Windows are the UTC minutes. In distributed mode the counters live in Redis (``HERA_REDIS_URL``)
and one Lua script checks and counts atomically, so every API process shares them; in embedded
mode they live in the process. Redis being unreachable admits the call and logs a warning:
the limits protect capacity, and an outage of the limiter should not become an outage of the API.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from hera_router.config import Mode, Settings

log = logging.getLogger(__name__)

WINDOW_S = 60
BYTES_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A key's limits per minute; 0: unlimited."""

    requests_per_minute: int
    tokens_per_minute: int

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute <= 0 and self.tokens_per_minute <= 0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call was refused and when the window that refused it ends."""

    limit: Literal["requests", "tokens"]
    per_minute: int
    retry_after_s: int


class RateLimiter(Protocol):
    def admit(self, key_id: uuid.UUID, tokens: int, limits: KeyLimits) -> Refusal | None:
        """Count the call against the key's window, or say why it is refused (counting nothing)."""
        ...


def tokens_of(content_length: str | None) -> int:
    """Tokens a call sends, from its declared ``Content-Length`` (0 without one)."""
    if content_length is None or not content_length.isdigit():
        return 0
    return math.ceil(int(content_length) / BYTES_PER_TOKEN)


def _window(now: float) -> tuple[int, int]:
    """The window's number and the whole seconds until it ends (at least 1)."""
    window = int(now // WINDOW_S)
    return window, max(1, math.ceil((window + 1) * WINDOW_S - now))


Limit = Literal["requests", "tokens"]


def _verdict(used_requests: int, used_tokens: int, tokens: int, limits: KeyLimits) -> Limit | None:
    if limits.requests_per_minute > 0 and used_requests >= limits.requests_per_minute:
        return "requests"
    if limits.tokens_per_minute > 0 and used_tokens > 0 and used_tokens + tokens > limits.tokens_per_minute:
        return "tokens"
    return None


class MemoryRateLimiter:
    """The counters in this process (embedded mode: one process serves the API)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[uuid.UUID, tuple[int, int, int]] = {}
        """key → (window, requests, tokens) of the key's current window."""

    def admit(self, key_id: uuid.UUID, tokens: int, limits: KeyLimits) -> Refusal | None:
        window, retry_after = _window(self.clock())
        with self._lock:
            seen, used_requests, used_tokens = self._counts.get(key_id, (window, 0, 0))
            if seen != window:
                used_requests = used_tokens = 0
            refused = _verdict(used_requests, used_tokens, tokens, limits)
            if refused is not None:
                per_minute = limits.requests_per_minute if refused == "requests" else limits.tokens_per_minute
                return Refusal(refused, per_minute, retry_after)
            self._counts[key_id] = (window, used_requests + 1, used_tokens + tokens)
            if len(self._counts) > 100_000:  # drop the keys of past windows
                self._counts = {key: value for key, value in self._counts.items() if value[0] == window}
        return None


# KEYS: the window's request and token counters. ARGV: rpm, tpm, tokens, ttl. Returns 0 (admitted
# and counted), 1 (over the request limit) or 2 (over the token limit); a refusal counts nothing.
ADMIT_SCRIPT = """
local used_requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local used_tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
if rpm > 0 and used_requests >= rpm then return 1 end
if tpm > 0 and used_tokens > 0 and used_tokens + tokens > tpm then return 2 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ttl)
if tokens > 0 then
  redis.call('INCRBY', KEYS[2], tokens)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 0
"""


class RedisRateLimiter:
    """The counters in Redis, shared by every API process of the deployment."""

    def __init__(self, url: str, *, prefix: str = "hera:ratelimit", clock: Callable[[], float] = time.time) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.script = self.client.register_script(ADMIT_SCRIPT)
        self.prefix = prefix
        self.clock = clock

    def admit(self, key_id: uuid.UUID, tokens: int, limits: KeyLimits) -> Refusal | None:
        import redis

        window, retry_after = _window(self.clock())
        base = f"{self.prefix}:{key_id}:{window}"
        args = [limits.requests_per_minute, limits.tokens_per_minute, tokens, WINDOW_S * 2]
        try:
            outcome = int(self.script(keys=[f"{base}:requests", f"{base}:tokens"], args=args))
        except redis.RedisError as exc:
            log.warning("rate limits not enforced: Redis did not answer (%s)", exc)
            return None
        if outcome == 1:
            return Refusal("requests", limits.requests_per_minute, retry_after)
        if outcome == 2:
            return Refusal("tokens", limits.tokens_per_minute, retry_after)
        return None

    def close(self) -> None:
        self.client.close()


def rate_limiter(settings: Settings) -> MemoryRateLimiter | RedisRateLimiter:
    """Redis-backed in distributed mode, in-process in embedded mode."""
    if settings.mode is Mode.DISTRIBUTED:
        return RedisRateLimiter(settings.redis_url)
    return MemoryRateLimiter()


def refusal_message(refusal: Refusal, key_prefix: str) -> str:
    setting = "HERA_API__REQUESTS_PER_MINUTE" if refusal.limit == "requests" else "HERA_API__TOKENS_PER_MINUTE"
    return (
        f"the API key {key_prefix}… is over its limit of {refusal.per_minute:,} {refusal.limit} per minute "
        f"({setting}, or the key's own: `hera-router keys limit`); retry in {refusal.retry_after_s} s"
    )
