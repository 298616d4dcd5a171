"""Shadow execution: a sampled share of finished live requests, re-run as profiling trees.

Routed traffic runs each step on one model only, but an S-L distance label needs both the SLM's
and the LLM's continuation of the same prefix. So when a live request finishes, a deterministic
sample of them (``HERA_CONTINUAL__SHADOW_RATE``) is queued, through the outbox in the same
transaction as the request's success, to ``training.shadow_request`` on the training queue. That
task builds the request's binary tree with the profiling code (``profiling.build_tree``, budget
``shadow_node_budget``: the All-SLM and All-LLM chains first) and stores it as a one-request
profile run of source ``shadow``. The user's answer was committed before any of this is queued,
so shadow work never delays it.

While no trained estimators are active, each stored tree also refits the cold-start threshold of
``hera`` (``training/coldstart.py``): shadow traffic is what cold-start mode learns from.

Shadow cost is recorded on the ``shadow_runs`` row (never on the request) and capped per UTC day
(``shadow_daily_cost_cap_usd``): the cap is checked before each tree, so the spend can exceed it by
at most one tree per concurrent training worker.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hera_router.db.enums import Executor, RunStatus

if TYPE_CHECKING:
    from hera_router.backends.base import ModelBackend
    from hera_router.db.runtime import Runtime
    from hera_router.training.profiling import TreeNode

log = logging.getLogger(__name__)

SHADOW_SOURCE = "shadow"
"""``profile_runs.source`` of shadow trees (kept out of ``ProfilingRepository.latest_run``)."""


def sampled(request_id: uuid.UUID, rate: float) -> bool:
    """Whether ``request_id`` is in the shadow sample: a hash, so every process agrees."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.blake2b(f"shadow:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    status: str
    """``succeeded``, ``skipped``, or ``claimed`` (another delivery has it or had it)."""
    cost_usd: float = 0.0
    nodes: int = 0
    reason: str | None = None


def _over_daily_cap(runtime: Runtime, request_id: uuid.UUID, now: datetime | None) -> ShadowOutcome | None:
    """The skipped outcome (recorded on the claim) when today's shadow spend has reached the cap."""
    from hera_router.db.base import utcnow
    from hera_router.db.repositories import ShadowRunRepository
    from hera_router.db.session import session_scope

    continual = runtime.settings.continual
    with session_scope(runtime.sessions) as session:
        shadow = ShadowRunRepository(session)
        spent = shadow.spent_since(day_start(now or utcnow()))
        if spent < continual.shadow_daily_cost_cap_usd:
            return None
        reason = (
            f"daily shadow cost cap reached: {spent:.4f} USD spent today, cap "
            f"{continual.shadow_daily_cost_cap_usd:g} USD (HERA_CONTINUAL__SHADOW_DAILY_COST_CAP_USD)"
        )
        shadow.finish(request_id, RunStatus.SKIPPED, reason=reason)
        return ShadowOutcome("skipped", reason=reason)


def _store(runtime: Runtime, request_id: uuid.UUID, tree: Sequence[TreeNode]) -> float:
    """Store the shadow tree as a one-request profile run and finish the claim, in one transaction;
    returns the tree's cost."""
    from hera_router.db.repositories import ProfilingRepository, ShadowRunRepository
    from hera_router.db.session import session_scope
    from hera_router.training.profiling import store_tree

    settings = runtime.settings
    continual = settings.continual
    total = sum(node.cost_usd for node in tree)
    config = {
        "request_id": str(request_id),
        "node_budget": continual.shadow_node_budget,
        "max_depth": settings.estimators.max_depth,
        "decompose": continual.shadow_decompose,
        "edge": {"backend": settings.edge.backend, "model": settings.edge.model},
        "cloud": {"backend": settings.cloud.backend, "model": settings.cloud.model},
    }
    with session_scope(runtime.sessions) as session:
        profiling = ProfilingRepository(session)
        run = profiling.create_run(f"shadow:{request_id}", SHADOW_SOURCE, config)
        store_tree(profiling, run.id, str(request_id), tree)
        profiling.finish_run(run.id, RunStatus.SUCCEEDED, n_requests=1)
        ShadowRunRepository(session).finish(
            request_id, RunStatus.SUCCEEDED, profile_run_id=run.id, cost_usd=total, nodes=len(tree)
        )
    return total


def shadow_request(
    runtime: Runtime,
    request_id: uuid.UUID,
    *,
    backends: Mapping[Executor, ModelBackend] | None = None,
    now: datetime | None = None,
) -> ShadowOutcome:
    """Build and store the shadow tree of a finished request (idempotent per request).

    Claims the request's ``shadow_runs`` row first (a second delivery stops there), skips with a
    reason when today's shadow spend has reached the cap, and otherwise stores the tree and its
    cost in one transaction. An error releases the claim and propagates (the task retries
    transient ones); nothing half-written is left behind.
    """
    from hera_router.backends.base import Generation
    from hera_router.backends.pricing import generation_cost
    from hera_router.db.repositories import RequestRepository, ShadowRunRepository
    from hera_router.db.session import session_scope
    from hera_router.training.profiling import ProfileItem, build_tree

    settings = runtime.settings
    continual = settings.continual
    with session_scope(runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        if request is None:
            return ShadowOutcome("skipped", reason=f"request {request_id} no longer exists")
        item = ProfileItem(
            str(request_id), request.input, request.gold_answer, str(request.meta.get("metric") or "") or None
        )
        if not ShadowRunRepository(session).claim(request_id):
            return ShadowOutcome("claimed")
    if (capped := _over_daily_cap(runtime, request_id, now)) is not None:
        return capped
    if backends is None:
        from hera_router.backends.registry import create_backend

        backends = {Executor.SLM: create_backend(settings, "edge"), Executor.LLM: create_backend(settings, "cloud")}

    def cost(model: Executor, generation: Generation) -> float:
        return generation_cost(settings, generation, "edge" if model is Executor.SLM else "cloud")

    try:
        tree = build_tree(
            item,
            backends,
            node_budget=continual.shadow_node_budget,
            max_depth=settings.estimators.max_depth,
            decompose=continual.shadow_decompose,
            cost=cost,
        )
        total = _store(runtime, request_id, tree)
    except BaseException:
        with session_scope(runtime.sessions) as session:
            ShadowRunRepository(session).release(request_id)
        raise
    if settings.routing.cold_start:
        from hera_router.training.coldstart import refit_quietly

        refit_quietly(runtime)  # while no estimators are trained, HERA's cold-start threshold learns from this tree
    return ShadowOutcome("succeeded", cost_usd=total, nodes=len(tree))
