"""Deterministic estimators and in-memory profiles for the evaluation tests.

:func:`hashed_estimators` answers from a hash of what it is asked, so HERA's decisions vary from
step to step and request to request (every branch gets exercised) while staying reproducible in
any process: a replay and a live run of the same request see the same answers.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from hera_router.backends.base import Generation
from hera_router.db.enums import Executor
from hera_router.routing.estimators import ChainState, Estimators, Vector
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import TaskRecord, generate
from hera_router.training.profiling import ProfileItem
from hera_router.training.profiling import build_tree as profile_tree
from hera_router.training.replay import ProfileSet, RequestMeta, build_tree

BASE: Vector = np.array([1.0, 0.0], dtype=np.float32)


def draw(*parts: object) -> float:
    """A uniform number in [0, 1) from the hash of ``parts``."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def unit(similarity: float) -> Vector:
    return np.array([similarity, math.sqrt(max(0.0, 1.0 - similarity**2))], dtype=np.float32)


class HashedScorer:
    version = "urc-hash"

    def score(self, request: str) -> float:
        return draw("urc", request)


class HashedPredictor:
    """SP_SLM: the j-th prediction's similarity to the LLM's is a hash of (state, j)."""

    version = "sp-slm-hash"

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        return [unit(draw("sp", state.current, state.seq, j)) for j in range(1, steps + 1)]


class ConstantPredictor:
    version = "sp-llm-const"

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        return [BASE] * steps


class HashedDistance:
    version = "dp-hash"

    def predict(self, subtask: str, seq: int) -> int | None:
        value = draw("dp", subtask, seq)
        return None if value < 0.5 else int((value - 0.5) * 6)


class NoDecomposition:
    """SD that never splits a step (the SD branch has no node in a profiled tree)."""

    version = "sd-none"

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        return []


def hashed_estimators() -> Estimators:
    return Estimators(
        urc=HashedScorer(),
        sp_slm=HashedPredictor(),
        sp_llm=ConstantPredictor(),
        dp=HashedDistance(),
        sd=NoDecomposition(),
        versions={
            "urc": "urc-hash",
            "sp_slm": "sp-slm-hash",
            "sp_llm": "sp-llm-const",
            "dp": "dp-hash",
            "sd": "sd-none",
        },
    )


def cloud_price(model: Executor, generation: Generation) -> float:
    """sim-llm's default price (2.5 / 10 USD per million tokens); the SLM is free."""
    if model is Executor.SLM:
        return 0.0
    return (2.5 * generation.prompt_tokens + 10.0 * generation.completion_tokens) / 1e6


def simulated_profile(records: list[TaskRecord], seed: int, budget: int, max_depth: int = 15) -> ProfileSet:
    """Profile ``records`` in memory with the simulated backends (no database)."""
    backends = {
        Executor.SLM: SimBackend("slm", "sim-slm", seed=seed),
        Executor.LLM: SimBackend("llm", "sim-llm", seed=seed),
    }
    trees = []
    for record in records:
        item = ProfileItem(record.id, record.request, record.gold, record.metric)
        nodes = profile_tree(item, backends, node_budget=budget, max_depth=max_depth, decompose=False, cost=cloud_price)
        trees.append(build_tree(record.id, nodes, RequestMeta(record.family, record.gold, record.metric)))
    return ProfileSet(None, trees, {"max_depth": max_depth}, simulated=True)


def simulated_records(family: str, n: int, seed: int) -> list[TaskRecord]:
    return generate(family, n, seed)
