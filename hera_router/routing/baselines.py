"""Baseline policies that need no estimators: everything on one model, a seeded coin, or the SLM's
own confidence (Minions)."""

from __future__ import annotations

import hashlib
import time

from hera_router.config import RoutingSettings
from hera_router.routing.base import Decision, Executor, PolicyBase, PolicyUnavailableError, RoutingContext
from hera_router.routing.estimators import Estimators


class AllSLM(PolicyBase):
    """Every step on the edge SLM: the cheapest, least accurate reference."""

    name = "all-slm"

    def __init__(self, settings: RoutingSettings) -> None:
        self.settings = settings

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        return Decision(executor=Executor.SLM, branch=self.name, policy=self.name)


class AllLLM(PolicyBase):
    """Every step on the cloud LLM: the accuracy reference and cost 1.0."""

    name = "all-llm"

    def __init__(self, settings: RoutingSettings) -> None:
        self.settings = settings

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        return Decision(executor=Executor.LLM, branch=self.name, policy=self.name)


class RandomPolicy(PolicyBase):
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


class MissingConfidenceError(PolicyUnavailableError):
    """Minions needs the SLM's confidence on the step before, and the pipeline did not record it."""

    def __init__(self, seq: int) -> None:
        super().__init__(
            f"policy 'minions' needs the mean token log-probability of step {seq - 1} (run on the SLM), "
            "and the history does not carry it: the pipeline must request logprobs from the edge "
            "backend and pass them as Step.confidence"
        )


class MinionsPolicy(PolicyBase):
    """SLM first; escalate to the LLM when the SLM's confidence is low (Minions, the HERA paper, §5.3).

    Minions measures confidence as the mean token log-probability of the SLM's answer. A policy
    decides *before* a step runs, so the signal it can use is the confidence of the step before:
    every step goes to the SLM unless the previous step ran on the SLM and its mean token logprob
    was below ``minions_logprob_threshold``; then this step goes to the LLM, which re-examines a
    chain the SLM was unsure of. After an LLM step the SLM is tried again. The root step (no
    history) starts on the SLM.

    This is a one-step-lagged escalation: Minions proper re-runs the *same* subtask on the cloud
    when the local answer is uncertain (a cascade), which needs the execution path, not the router,
    to check the confidence after the SLM call.
    """

    name = "minions"

    def __init__(self, settings: RoutingSettings) -> None:
        self.threshold = settings.minions_logprob_threshold

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        started = time.perf_counter()
        previous = context.history[-1] if context.history else None
        scores: dict[str, float] = {"threshold": self.threshold}
        executor = Executor.SLM
        if previous is not None and previous.executor is Executor.SLM:
            if previous.confidence is None:
                raise MissingConfidenceError(context.seq)
            scores["previous_logprob"] = previous.confidence
            if previous.confidence < self.threshold:
                executor = Executor.LLM
        return Decision(
            executor=executor,
            branch=self.name,
            policy=self.name,
            scores=scores,
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )
