"""Baseline policies that need no estimators: everything on one model, or a seeded coin."""

from __future__ import annotations

import hashlib
import time

from hera_router.config import RoutingSettings
from hera_router.routing.base import Decision, Executor, RoutingContext
from hera_router.routing.estimators import Estimators


class AllSLM:
    """Every step on the edge SLM: the cheapest, least accurate reference."""

    name = "all-slm"

    def __init__(self, settings: RoutingSettings) -> None:
        self.settings = settings

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        return Decision(executor=Executor.SLM, branch=self.name, policy=self.name)


class AllLLM:
    """Every step on the cloud LLM: the accuracy reference and cost 1.0."""

    name = "all-llm"

    def __init__(self, settings: RoutingSettings) -> None:
        self.settings = settings

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        return Decision(executor=Executor.LLM, branch=self.name, policy=self.name)


class RandomPolicy:
    """Each step on the SLM with probability p.

    The coin is a hash of (seed, request text, step) rather than a shared RNG: a redelivered or
    re-driven step gets the answer it got the first time, and the same requests are routed the
    same way in every run and every deployment mode, so runs can be compared request by request.
    """

    name = "random"

    def __init__(self, settings: RoutingSettings) -> None:
        self.p_slm = settings.random_p_slm
        self.seed = settings.random_seed

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        started = time.perf_counter()
        key = f"{self.seed}:{context.seq}:{context.request}"
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / 2**64
        executor = Executor.SLM if draw < self.p_slm else Executor.LLM
        return Decision(
            executor=executor,
            branch=self.name,
            policy=self.name,
            scores={"draw": draw, "p_slm": self.p_slm},
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )
