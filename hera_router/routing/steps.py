"""The rules of a request's chain, written once: what happens after a step. Pure.

The live hops (``pipeline/progress.py``, ``pipeline/routing.py``, ``pipeline/execution.py``) and
every replay (``training/replay.py`` for chains and, through it, ``evaluation/graphs.py`` for
plans with dependencies; ``evaluation/ladder.py``'s loop over rungs) ask these functions, over
plain values, and only carry out the answer: the hops in their guarded transactions, the replays
on their trees. Nothing here reads a database, a queue or a model.

Executor and tier are one idea: a step runs on a rung of an ordered ladder of models, cheapest
first. With ``HERA_MODELS`` the rungs are its tiers; without, the ladder has two rungs, the edge
SLM (rung 0) and the cloud LLM (rung 1), and :func:`rung_of_executor` / :data:`TWO_TIERS` say so.
Every decision that moves a step up (a rejected verify, an edge that failed) is a move one rung
up on that ladder.

After a step, in this order:

* a part of a decomposition (SD) that did not answer hands on to the next part
  (:func:`next_part`); the last part, or one that answered, completes the step;
* a step with a final answer, or with no next subtask, finishes the request (:class:`Finish`:
  the final answer, else the step's result, the best answer there is);
* a next subtask that is a plan with dependencies fans out into its nodes (:class:`FanOut`), each
  a request of its own that starts once the nodes it needs answered (:func:`ready`); the final
  node's answer is the request's, and a node that fails fails it (:func:`node_failed`);
* at the step limit the request fails (:class:`Fail`);
* otherwise the next step (:class:`Next`) runs inside the current span on the SLM without asking
  the policy (:func:`continues_span`), or is routed afresh.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from hera_router.agent.plan import PlanNode, parse_plan
from hera_router.db.enums import Executor
from hera_router.routing.base import Decision, Policy, RoutingContext, Verdict
from hera_router.routing.coldstart import ColdStart
from hera_router.routing.estimators import Estimators

__all__ = [
    "TWO_TIERS",
    "BackendFailure",
    "Climb",
    "Fail",
    "FanOut",
    "Finish",
    "GiveBack",
    "Move",
    "Next",
    "Rung",
    "StepEnd",
    "after_step",
    "after_verdict",
    "continues_span",
    "decide",
    "executor_of_rung",
    "next_part",
    "node_failed",
    "on_backend_error",
    "ready",
    "rung_of_executor",
    "verdict",
    "verifies",
]


# -- the ladder a step runs on -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rung:
    """Where a step runs: its place on the ladder (0 the cheapest), how many rungs there are, and
    whether the rung is on the edge (an edge rung that fails may hand its step up)."""

    index: int
    rungs: int
    edge: bool

    @property
    def top(self) -> bool:
        return self.index >= self.rungs - 1

    @property
    def up(self) -> int | None:
        """The rung one up (never skipping one), None at the top."""
        return None if self.top else self.index + 1


TWO_TIERS = 2
"""Rungs of the two-model configuration (no ``HERA_MODELS``): the edge SLM, the cloud LLM."""


_TWO_TIER_RUNGS = {
    Executor.SLM: Rung(index=0, rungs=TWO_TIERS, edge=True),
    Executor.LLM: Rung(index=1, rungs=TWO_TIERS, edge=False),
}


def rung_of_executor(executor: Executor) -> Rung:
    """The two-tier case: the SLM is rung 0 on the edge, the LLM the top rung in the cloud."""
    return _TWO_TIER_RUNGS[executor]


def executor_of_rung(index: int) -> Executor:
    """The two-tier case: the role of rung ``index``."""
    return Executor.SLM if index == 0 else Executor.LLM


# -- routing a step -----------------------------------------------------------------------------


def decide(
    policy: Policy, context: RoutingContext, estimators: Estimators | None, cold_start: ColdStart | None = None
) -> Decision:
    """The policy's decision for the step; without estimators a cold-starting policy decides in
    cold-start mode (``cold_start``: the threshold in force, None for the policy's configured one)."""
    if estimators is None and policy.cold_starts:
        return policy.decide_cold(context, cold_start)
    return policy.decide(context, estimators)


def verdict(
    policy: Policy,
    context: RoutingContext,
    confidence: float | None,
    estimators: Estimators | None,
    cold_start: ColdStart | None = None,
) -> Verdict | None:
    """The verify stage's judgement of the SLM's result in the two-tier case (``cold_start`` as for
    :func:`decide`); on a model tier the pipeline asks ``policy.judge`` instead."""
    cold = cold_start if estimators is None and policy.cold_starts else None
    return policy.verify(context, confidence, estimators, cold_start=cold)


# -- after a step --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepEnd:
    """What a step (or the last part of a decomposed step) left behind."""

    seq: int
    result: str
    final_answer: str | None
    next_subtask: str | None


@dataclass(frozen=True, slots=True)
class Finish:
    answer: str


@dataclass(frozen=True, slots=True)
class FanOut:
    plan: list[PlanNode]
    text: str


@dataclass(frozen=True, slots=True)
class Fail:
    reason: str


@dataclass(frozen=True, slots=True)
class Next:
    seq: int
    text: str


Move = Finish | FanOut | Fail | Next


def after_step(end: StepEnd, max_steps: int, *, plans: bool = True) -> Move:
    """What the request does after step ``end.seq`` (see the module docstring for the order).
    ``plans=False`` follows a plan's text as an ordinary next subtask (a chain-only replay)."""
    if end.final_answer is not None or not end.next_subtask:
        # No next subtask and no final answer: the parser recorded the problem; the result is the
        # best answer there is, and looping on a step that proposes nothing cannot help.
        return Finish(end.final_answer if end.final_answer is not None else end.result)
    if plans and (plan := parse_plan(end.next_subtask)) is not None:
        return FanOut(plan, end.next_subtask)
    if end.seq + 1 >= max_steps:
        return Fail(f"stopped after {max_steps} steps without a final answer (HERA_ROUTING__MAX_STEPS)")
    return Next(end.seq + 1, end.next_subtask)


def next_part(part: int, parts: int, *, answered: bool) -> int | None:
    """The decomposition part that runs after part ``part`` (1-based) of ``parts``; None when the
    step is complete (the last part ran, or this part gave the final answer)."""
    if answered or part >= parts:
        return None
    return part + 1


def continues_span(span: int, *, interrupted: bool) -> bool:
    """Whether the step after one covered by a decision of ``span`` steps (the current one
    included) runs inside the span, on the SLM without routing (SLE, CD, URC). A step moved off
    the policy's choice (a rejected verify, a fallback, a budget) ends the span: the chain now
    follows another model's result, so the next step is routed afresh."""
    return span > 1 and not interrupted


# -- fan-in: the nodes of a plan with dependencies -------------------------------------------------


def ready(needs: Sequence[str], answered: Collection[str]) -> bool:
    """Whether a waiting node of a plan starts: every node it needs has its answer (a node whose
    need failed never starts; the others run on)."""
    return all(need in answered for need in needs)


def node_failed(key: str, why: str) -> Fail:
    """A node's request that did not answer fails the plan's request, naming the node."""
    return Fail(f"part [{key}] of the plan failed: {why}")


# -- the verify stage ----------------------------------------------------------------------------


def verifies(policy_verifies: bool, rung: Rung, part: int) -> bool:
    """Whether a step's result goes to the verify stage before the request moves on: a verifying
    policy's step on any rung but the top (the top is the reference); decomposition parts are
    judged as SD's, not one by one."""
    return policy_verifies and part == 0 and not rung.top


@dataclass(frozen=True, slots=True)
class Climb:
    """Re-run the step one rung up."""

    to: int


def after_verdict(verdict: Verdict | None, rung: Rung, *, kept_by: str | None = None) -> Climb | None:
    """Keep the step's result (None) or re-run it one rung up. No verdict (the stage does not
    apply), an accepting one, the top rung, or a reason to keep it anyway (``kept_by``: a tenant
    over a budget with action ``cheapest``) keep it."""
    if verdict is None or verdict.accept or kept_by is not None or rung.up is None:
        return None
    return Climb(rung.up)


# -- a backend that failed -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GiveBack:
    """Release the step for a retry of the same message (a transient error, retries left)."""


@dataclass(frozen=True, slots=True)
class BackendFailure:
    """Fail the step and its request."""


def on_backend_error(
    rung: Rung, part: int, *, fallback: bool, retryable: bool, final_attempt: bool
) -> Climb | GiveBack | BackendFailure:
    """After a model call failed on ``rung``: an edge rung's failure (down, overloaded, or refusing
    a prompt too long for it) is worth one try one rung up, when fallback is on; decomposition
    parts have no twin up the ladder, so they do not climb. Otherwise a transient error with
    retries left gives the step back; anything else fails the request."""
    if fallback and part == 0 and rung.edge and rung.up is not None:
        return Climb(rung.up)
    if retryable and not final_attempt:
        return GiveBack()
    return BackendFailure()
