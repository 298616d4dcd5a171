"""Faults the dev server injects on demand, so tests exercise the clients' failure handling for real.

Three knobs, combinable: a script of statuses for the next N generation requests (e.g. two 429s
with ``Retry-After: 0.05``, then normal answers), a random error rate (seeded, so a run is
reproducible), and latency added before every answer (a latency above the client's timeout is a
timeout). Only generation routes are affected; ``/health``, ``/info`` and ``/v1/models`` stay
truthful so that probes still tell "up" from "broken".
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, Field


class ScriptedFault(BaseModel):
    """One scripted answer: an HTTP status, optionally with a ``Retry-After`` header."""

    status: int = Field(ge=400, le=599)
    retry_after: str | None = None
    """Sent verbatim: seconds (``"0.05"``) or an HTTP date."""


class FaultConfig(BaseModel):
    """The body of ``POST /_faults`` (and the dev server's constructor argument)."""

    statuses: list[ScriptedFault] = Field(default_factory=list)
    """Answer the next ``len(statuses)`` generation requests with these, in order."""
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=500, ge=400, le=599)
    latency_s: float = Field(default=0.0, ge=0)
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Fault:
    status: int
    retry_after: str | None = None


class FaultInjector:
    """Thread-safe: the server's event loop and the admin route share it."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.generation_requests = 0
        """Generation requests received (faulted or not): lets a test see that none was sent."""
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config
            self._script = deque(Fault(s.status, s.retry_after) for s in config.statuses)
            self._rng = random.Random(config.seed)

    def reset(self) -> None:
        self.configure(FaultConfig())
        with self._lock:
            self.generation_requests = 0

    @property
    def latency_s(self) -> float:
        return self._config.latency_s

    def next_fault(self) -> Fault | None:
        """Count a generation request and decide whether it fails, and how."""
        with self._lock:
            self.generation_requests += 1
            if self._script:
                return self._script.popleft()
            if self._config.error_rate > 0 and self._rng.random() < self._config.error_rate:
                return Fault(self._config.error_status)
            return None

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "config": self._config.model_dump(),
                "scripted_remaining": len(self._script),
                "generation_requests": self.generation_requests,
            }
