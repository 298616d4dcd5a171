"""The pipeline's hops over SQLite with a recording broker: no Celery, no worker, milliseconds.

:class:`Harness` plays the broker and the workers: every message the outbox publishes is recorded,
and :meth:`Harness.drain` delivers them one by one to the hop the task name names, the way a worker
would (a backend error propagating out of a hop is a Celery retry: the message is delivered again).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_router.backends.base import BackendError, BackendRole, ModelBackend
from hera_router.config import Settings, load_settings
from hera_router.db.enums import Executor
from hera_router.db.migrate import upgrade
from hera_router.db.runtime import Runtime
from hera_router.pipeline import Pipeline, Services
from hera_router.pipeline.names import TaskName
from hera_router.pipeline.outbox import Dispatcher
from hera_router.pipeline.services import BackendFactory, default_backend_factory
from hera_router.simulator.generate import TaskRecord
from tests.integration.pipeline.helpers import submit


@dataclass(frozen=True)
class Sent:
    task: str
    kwargs: dict[str, Any]
    task_id: str


@dataclass
class Harness:
    settings: Settings
    runtime: Runtime
    pipeline: Pipeline
    sent: list[Sent] = field(default_factory=list)
    queue: deque[Sent] = field(default_factory=deque)

    def publish(self, task_name: str, kwargs: Mapping[str, Any], task_id: str) -> None:
        message = Sent(str(task_name), dict(kwargs), task_id)
        self.sent.append(message)
        self.queue.append(message)

    def submit(self, tasks: list[TaskRecord], policy: str) -> list[uuid.UUID]:
        return submit(self.runtime.sessions, self.pipeline.services.dispatcher, tasks, policy)

    def deliver(self, message: Sent) -> object:
        kwargs = message.kwargs
        match message.task:
            case TaskName.PLAN_STEP:
                return self.pipeline.plan_step(uuid.UUID(kwargs["request_id"]), int(kwargs["seq"]))
            case TaskName.VERIFY_STEP:
                return self.pipeline.verify_step(uuid.UUID(kwargs["subtask_id"]))
            case TaskName.RUN_SUBTASK:
                return self.pipeline.run_subtask(
                    uuid.UUID(kwargs["subtask_id"]), Executor(kwargs["executor"]), tier=kwargs.get("tier")
                )
            case TaskName.SHADOW_REQUEST:
                return None  # the training queue is not part of these tests
        raise AssertionError(f"unexpected task {message.task}")

    def drain(self, *, twice: bool = False, drop: Callable[[Sent], bool] | None = None, limit: int = 1000) -> int:
        """Deliver queued messages until none is left; ``twice`` delivers each one a second time
        (a redelivery), ``drop`` loses the messages it selects (a broker that lost them)."""
        delivered = 0
        while self.queue:
            message = self.queue.popleft()
            if drop is not None and drop(message):
                continue
            for _ in range(2 if twice else 1):
                self.deliver(message)
            delivered += 1
            assert delivered < limit, "the pipeline keeps sending messages"
        return delivered

    def reconciler_has_watched_for(self, seconds: float) -> None:
        """As if the reconciler had reached the database for ``seconds`` without a break (it only
        takes a worker for dead after every worker had its timeout to beat)."""
        self.pipeline.recovery._healthy_since = time.monotonic() - seconds

    def close(self) -> None:
        self.runtime.close()


def make_harness(
    tmp_path: Path, template: Path, *, backend_factory: BackendFactory = default_backend_factory, **overrides: Any
) -> Harness:
    tmp_path.mkdir(parents=True, exist_ok=True)
    database_url = overrides.pop("database_url", None)  # a migrated database of the caller's (Postgres)
    if database_url is None:
        database = tmp_path / "hera.db"
        shutil.copy(template, database)
        database_url = f"sqlite:///{database}"
    settings = load_settings(data_dir=tmp_path, database_url=database_url, **overrides)
    runtime = Runtime(settings)
    harness = Harness(settings, runtime, pipeline=None)  # type: ignore[arg-type]
    dispatcher = Dispatcher(lambda: runtime.sessions, harness.publish, relay_grace_s=settings.relay_grace_s)
    harness.pipeline = Pipeline(Services(runtime, dispatcher, backend_factory=backend_factory))
    return harness


def migrated_template(directory: Path) -> Path:
    path = directory / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


class Failing:
    """A backend that raises ``error`` on every call (an edge that is down)."""

    def __init__(self, inner: ModelBackend, error: BackendError) -> None:
        self.inner, self.error = inner, error
        self.name, self.model = inner.name, inner.model

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def failing_edge(error: BackendError) -> BackendFactory:
    def factory(settings: Settings, role: BackendRole) -> ModelBackend:
        backend = default_backend_factory(settings, role)
        return Failing(backend, error) if role == "edge" else backend  # type: ignore[return-value]

    return factory
