"""The model tiers of the live pipeline (``HERA_MODELS``): which tier runs a step.

A step runs on a rung of a ladder (``routing/steps.py``). Without ``HERA_MODELS`` the ladder is
the two-tier case: steps carry no tier, rung 0 is the ``edge`` backend and rung 1 the ``cloud``
one, from the role queues (:func:`rung`, :func:`placement` say so). With it, a ladder policy's decision names a
rung (``Decision.rung``); the step records the rung's tier (``subtasks.tier``), its run message
carries the tier and goes to the tier's queue, the execution hop calls the tier's backend with
the tier's prices, and the verify stage (or an edge fallback) moves the step one rung up.

Only ladder decisions are tiered: a two-role policy (``hera``, the baselines) keeps routing
between the ``edge`` and ``cloud`` backends whatever ``HERA_MODELS`` says.
"""

from __future__ import annotations

from dataclasses import replace

from hera_router.config import ModelTier, Settings
from hera_router.db.enums import Executor
from hera_router.routing import steps
from hera_router.routing.base import Decision

__all__ = [
    "Placement",
    "at_rung",
    "cheapest_edge",
    "cheapest_edge_placement",
    "executor_of",
    "next_tier",
    "placement",
    "rung",
    "rung_of",
    "step_tier",
    "tier_concurrency",
    "tier_only_queues",
    "tier_queues",
]


def executor_of(tier: ModelTier) -> Executor:
    return Executor.SLM if tier.role == "edge" else Executor.LLM


def rung_of(settings: Settings, tier: str) -> int:
    """The tier's place on the ladder, 0 the cheapest."""
    return [t.name for t in settings.models].index(tier)


def next_tier(settings: Settings, tier: str) -> ModelTier | None:
    """The next rung up from ``tier``; None at the top."""
    rung = rung_of(settings, tier)
    return settings.models[rung + 1] if rung + 1 < len(settings.models) else None


Placement = tuple[Executor, str | None]
"""Where a step runs: its executor (the role) and its model tier (None in the two-tier case)."""


def rung(settings: Settings, executor: Executor, tier: str | None) -> steps.Rung:
    """The rung a step on ``executor`` / ``tier`` runs on: its tier's place on ``HERA_MODELS``, or
    the two-tier case for a step without a tier."""
    if tier is None:
        return steps.rung_of_executor(executor)
    edge = settings.tier(tier).role == "edge"
    return steps.Rung(index=rung_of(settings, tier), rungs=len(settings.models), edge=edge)


def placement(settings: Settings, tier: str | None, index: int) -> Placement:
    """Where rung ``index`` of the ladder a step with ``tier`` is on runs: that model tier, or (the
    two-tier case, no tier) the role of the rung."""
    if tier is None:
        return steps.executor_of_rung(index), None
    up = settings.models[index]
    return executor_of(up), up.name


def _start(settings: Settings, decision: Decision) -> ModelTier | None:
    if decision.rung is None or not settings.models:
        return None
    return settings.models[min(decision.rung, len(settings.models) - 1)]


def at_rung(settings: Settings, decision: Decision) -> Decision:
    """A ladder decision with its executor set to its rung's role, so the budget and SLA rules
    (``routing/constraints.py``) judge the model that will actually run."""
    tier = _start(settings, decision)
    if tier is None or executor_of(tier) is decision.executor:
        return decision
    return replace(decision, executor=executor_of(tier))


def step_tier(settings: Settings, decision: Decision) -> str | None:
    """The tier that runs a (constrained) ladder decision's step; None for a two-role decision.

    A constraint that moved the step to the other role picks that role's end of the ladder: the
    cloud (a tight latency budget) means the top rung, the edge (a budget, a cost cap) the
    cheapest edge tier (the cheapest rung if no tier is on the edge)."""
    tier = _start(settings, decision)
    if tier is None or executor_of(tier) is decision.executor:
        return None if tier is None else tier.name
    if decision.executor is Executor.LLM:
        return settings.models[-1].name
    return cheapest_edge(settings).name


def cheapest_edge(settings: Settings) -> ModelTier:
    return next((t for t in settings.models if t.role == "edge"), settings.models[0])


def cheapest_edge_placement(settings: Settings, tier: str | None) -> Placement | None:
    """Where a step that must run on the edge goes (a tenant over budget, action ``cheapest``): the
    edge in the two-tier case, the cheapest edge tier on a ladder; None if no tier is on the edge."""
    if tier is None:
        return Executor.SLM, None
    edge = cheapest_edge(settings)
    return (Executor.SLM, edge.name) if edge.role == "edge" else None


def tier_queues(settings: Settings) -> dict[str, str]:
    """Tier name -> the physical queue its workers consume."""
    return {tier.name: settings.tier_queue(tier) for tier in settings.models}


def tier_concurrency(settings: Settings, queues: list[str]) -> int | None:
    """The slots of a worker that consumes only model tiers' queues: the sum of those tiers'
    ``capacity`` (what their servers take at once); None if a queue is not only a tier's (a role
    queue shared with two-role steps, the router's), so the worker's own default applies."""
    by_queue: dict[str, list[ModelTier]] = {}
    for tier in settings.models:
        by_queue.setdefault(settings.tier_queue(tier), []).append(tier)
    role_queues = set(settings.queues.model_dump().values())
    if not queues or any(queue not in by_queue or queue in role_queues for queue in queues):
        return None
    return sum(tier.capacity for queue in dict.fromkeys(queues) for tier in by_queue[queue])


def tier_only_queues(settings: Settings) -> dict[str, str]:
    """Physical queues that only model tiers use (not a role queue) -> their label, ``tier:<name>``
    (names joined by ``+`` where tiers share one): what the queue-depth gauge adds to the roles'."""
    role_queues = set(settings.queues.model_dump().values())
    names: dict[str, list[str]] = {}
    for tier in settings.models:
        queue = settings.tier_queue(tier)
        if queue not in role_queues:
            names.setdefault(queue, []).append(tier.name)
    return {queue: "tier:" + "+".join(tiers) for queue, tiers in names.items()}
