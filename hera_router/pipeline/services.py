"""What the hops of one process share: settings, database, outbox, backends, policies, estimators.

Each hop (``routing``, ``execution``, ``recovery``) is a small class over one :class:`Services`;
``hera_router.workers`` builds the services once per process (after the fork) and the Celery tasks
call the hops. Nothing here knows Celery: messages go out through the outbox's publish callable.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from hera_router.backends.base import BackendRole, Message, ModelBackend
from hera_router.config import Settings
from hera_router.db.enums import Executor, ModelRole, SubtaskStatus
from hera_router.db.models import Subtask
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.pipeline.liveness import Liveness
from hera_router.pipeline.names import TaskName, plan_task_id, run_kwargs, run_task_id, verify_task_id
from hera_router.pipeline.outbox import Dispatcher
from hera_router.pipeline.queues import Queue
from hera_router.routing.base import Policy, Step
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import create_policy

log = logging.getLogger(__name__)

ROLE_OF: dict[Executor, BackendRole] = {Executor.SLM: "edge", Executor.LLM: "cloud"}
MODEL_ROLE_OF: dict[Executor, ModelRole] = {Executor.SLM: ModelRole.EDGE, Executor.LLM: ModelRole.CLOUD}

BackendFactory = Callable[[Settings, BackendRole], ModelBackend]
EstimatorSource = Callable[[], Estimators | None]
QueueDepth = Callable[[Queue | str], int | None]
"""Messages waiting in a logical queue (or a physical one, by name: a model tier's), or None if
the broker cannot say."""
HeldMessages = Callable[[float], set[str] | None]
"""Task ids of messages taken by a worker at least this many seconds ago and not acknowledged,
or None if the broker cannot say."""


def default_backend_factory(settings: Settings, role: BackendRole) -> ModelBackend:
    from hera_router.backends.registry import create_backend

    return create_backend(settings, role)


def no_estimators() -> Estimators | None:
    return None


def unknown_depth(queue: Queue | str) -> int | None:
    return None


def unknown_held(older_than_s: float) -> set[str] | None:
    return None


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a claimed subtask needs for its model call, read inside the claiming transaction."""

    subtask_id: uuid.UUID
    request_id: uuid.UUID
    seq: int
    part: int
    attempt: int
    executor: Executor
    messages: list[Message]
    escalated: bool = False
    """The LLM re-run of a step whose SLM result the verify stage rejected."""
    verify: bool = False
    """An SLM step of a policy with a verify stage: completing it queues the verify hop."""
    tier: str | None = None
    """The model tier (``HERA_MODELS``) the step runs on; None: the executor's role backend."""

    @property
    def call_key(self) -> str:
        """The model call's idempotency key: one call per claimed attempt on an executor or tier
        (a fallback or the verify stage's re-run moves the step, a new key)."""
        if self.tier is not None:
            return f"call:{self.subtask_id}:tier:{self.tier}:{self.attempt}"
        return f"call:{self.subtask_id}:{self.executor.value}:{self.attempt}"


def history(subtasks: Sequence[Subtask | Row[Any]], before_seq: int) -> list[Step]:
    """The request's finished steps before ``before_seq``, as the policy and the prompt see them."""
    return [
        Step(subtask=s.text, result=s.output or "", executor=s.executor, confidence=s.confidence)
        for s in subtasks
        if s.part == 0 and s.seq < before_seq and s.status is SubtaskStatus.SUCCEEDED
    ]


class Services:
    def __init__(
        self,
        runtime: Runtime,
        dispatcher: Dispatcher,
        *,
        backend_factory: BackendFactory = default_backend_factory,
        estimator_source: EstimatorSource = no_estimators,
        queue_depth: QueueDepth = unknown_depth,
        held_messages: HeldMessages = unknown_held,
    ) -> None:
        self.runtime = runtime
        self.queue_depth = queue_depth
        self.held_messages = held_messages
        self.liveness = Liveness(lambda: runtime.sessions, runtime.settings.worker_heartbeat_s)
        self.settings = runtime.settings
        self.dispatcher = dispatcher
        self._backend_factory = backend_factory
        # Called for every decision, so a newly promoted estimator version is picked up by a
        # running router without a restart (the source caches and checks the registry itself).
        self.estimator_source = estimator_source
        self._backends: dict[tuple[BackendRole, str | None], ModelBackend] = {}
        self._building: dict[tuple[BackendRole, str | None], threading.Lock] = {}
        self._policies: dict[str, Policy] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def backend(self, role: BackendRole, tier: str | None = None) -> ModelBackend:
        """The process's backend for ``role`` (or for model tier ``tier``, whose role it is), built
        on first use (after the worker forked).

        Building one may load a model, which is slow: call this outside any transaction (on SQLite
        a transaction holds the process's write lock). It is built under a lock of its own, so a
        thread that needs a policy, a tier slot or another backend, possibly inside a transaction,
        never waits for a model to load.
        """
        key = (role, tier)
        built = self._backends.get(key)
        if built is not None:
            return built
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            if key not in self._backends:
                settings = self.settings if tier is None else self.settings.for_tier(self.settings.tier(tier))
                self._backends[key] = self._backend_factory(settings, role)
            return self._backends[key]

    def build_backends(self) -> None:
        """Build every configured backend now (both roles, every model tier), before any hop runs.

        A hop takes its message and claims its step at once; one that first waited for a model to
        load would look lost to the reconciler meanwhile. A backend that cannot be built is left to
        the first hop that needs it, which fails with the reason as it would have without this.
        """
        keys: list[tuple[BackendRole, str | None]] = [("edge", None), ("cloud", None)]
        keys += [(tier.role, tier.name) for tier in self.settings.models]
        for role, tier in keys:
            try:
                self.backend(role, tier)
            except Exception:
                log.debug("building the %s backend (tier %s) ahead of use failed", role, tier, exc_info=True)

    def tier_slot(self, tier: str | None) -> AbstractContextManager[Any]:
        """Hold one of the tier's ``capacity`` call slots while its model is called (a process
        serving several tiers from a thread pool, the embedded worker, never has more of one
        tier's calls in flight); a step without a tier takes no slot."""
        if tier is None:
            return nullcontext()
        with self._lock:
            if tier not in self._slots:
                self._slots[tier] = threading.BoundedSemaphore(self.settings.tier(tier).capacity)
            return self._slots[tier]

    def policy(self, name: str) -> Policy:
        with self._lock:
            if name not in self._policies:
                policy = create_policy(name, self.settings.routing)
                policy.check_tiers([tier.name for tier in self.settings.models])  # the ladder's start estimators
                self._policies[name] = policy
            return self._policies[name]

    def publish_after(
        self, work: Callable[[Session], list[uuid.UUID]], *, hold: Callable[[], Collection[uuid.UUID]] = tuple
    ) -> list[uuid.UUID]:
        """Run ``work`` in one transaction, then publish the outbox rows it queued, except those
        ``hold`` names after ``work`` ran (the caller delivers them in-process).

        The same transaction marks what this process published before as published (no
        transaction of its own for that, see ``Dispatcher.marking``)."""
        with session_scope(self.runtime.hop_sessions) as session, self.dispatcher.marking(session):
            queued = work(session)
        held = set(hold())
        self.dispatcher.publish([message_id for message_id in queued if message_id not in held])
        return queued

    # -- the next hop, queued in the caller's transaction ---------------------------------------

    def queue_run(
        self, session: Session, subtask_id: uuid.UUID, executor: Executor, tier: str | None = None
    ) -> uuid.UUID:
        """The execution hop of a step; on a model tier, to that tier's queue (the message's
        ``tier`` argument routes it: ``workers/queues.py``)."""
        kwargs = run_kwargs(subtask_id, executor, tier)
        task_id = run_task_id(subtask_id, executor, tier)
        return self.dispatcher.enqueue(session, TaskName.RUN_SUBTASK, kwargs, task_id)

    def queue_plan(self, session: Session, request_id: uuid.UUID, seq: int) -> uuid.UUID:
        kwargs = {"request_id": str(request_id), "seq": seq}
        return self.dispatcher.enqueue(session, TaskName.PLAN_STEP, kwargs, plan_task_id(request_id, seq))

    def queue_verify(self, session: Session, subtask_id: uuid.UUID, tier: str | None = None) -> uuid.UUID:
        kwargs = {"subtask_id": str(subtask_id)}
        return self.dispatcher.enqueue(session, TaskName.VERIFY_STEP, kwargs, verify_task_id(subtask_id, tier))
