"""Continual fine-tuning in a distributed deployment: `hera-router worker` processes on Redis and
Postgres (``tests/integration/pipeline/distributed.py``), the session's five trained estimators
registered and active, simulated models behind loopback HTTP servers.

- A trainer SIGKILLed in the middle of a LoRA update leaves its run ``running`` with its advisory
  lock gone; a replacement worker's ``training.reap_abandoned_runs`` marks it failed. Nothing was
  registered and the active DP never changed.
- Live ``hera`` traffic is shadowed on the training queue; a retraining queued like the admin
  route does promotes a new DP, and the same router process (no restart) puts the new version on
  the decisions of the requests that follow.

The gate itself (candidate better / worse on purpose) is tested in ``test_retrain.py``; here the
tolerance is set wide so that the promotion, not the gate, is what is exercised.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hera_router.db.enums import RequestStatus, RunStatus
from hera_router.db.locks import try_advisory_lock
from hera_router.db.migrate import upgrade
from hera_router.db.models import TrainingRun
from hera_router.db.repositories import (
    DecisionRepository,
    EstimatorVersionRepository,
    ShadowRunRepository,
    TrainingRunRepository,
)
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.estimators.artifacts import version_dir
from hera_router.pipeline.names import TaskName
from hera_router.simulator.generate import generate
from hera_router.training.continual import ABANDONED, lock_name, reap_abandoned_runs
from hera_router.training.shadow import shadow_request
from hera_router.workers.publisher import celery_dispatcher
from tests.conftest import REDIS_URL, fresh_postgres_database
from tests.integration.conftest import TrainedEstimators
from tests.integration.continual.conftest import live_requests
from tests.integration.pipeline.distributed import DistributedSystem, WorkerProcess, distributed_system, wait_for
from tests.integration.pipeline.helpers import submit, wait_until_finished

# The timeout covers the module fixture, which trains the session's five estimators unless an
# earlier test did (15+ minutes on a loaded 2-core machine, SD's SmolLM2 LoRA most of it).
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(2400)]

ESTIMATORS = ("urc", "sp_slm", "sp_llm", "dp", "sd")
RELOAD_INTERVAL_S = 1.0

# Training worker settings shared by both tests: few labels suffice, a third of the shadow
# requests are held out for the gate, and the beat-less reaper may fail a run silent for 1 s.
TRAINER_ENV = {
    "HERA_CONTINUAL__MIN_LABELS": "4",
    "HERA_CONTINUAL__HEARTBEAT_INTERVAL_S": "0.5",
    "HERA_CONTINUAL__STALE_AFTER_S": "1",
    "HERA_CONTINUAL__SHADOW_DAILY_COST_CAP_USD": "1000",
    "HERA_ESTIMATORS__VALIDATION_FRACTION": "0.34",
}
SLOW_UPDATE = {
    # A LoRA update that does not end by itself within the test: the kill always lands mid-training.
    "HERA_CONTINUAL__UPDATE_MIN_STEPS": "1000000",
    "HERA_ESTIMATORS__ENCODER_EARLY_STOPPING_FRACTION": "0",
}
FAST_UPDATE = {
    "HERA_CONTINUAL__UPDATE_EPOCHS": "1",
    "HERA_CONTINUAL__UPDATE_MIN_STEPS": "8",
    # Promotion is what is under test here, not the gate (test_retrain.py tests the gate both ways).
    "HERA_CONTINUAL__TOLERANCE": "1",
}


@dataclass
class Deployment:
    system: DistributedSystem
    runtime: Runtime
    versions: dict[str, int]
    """The five registered and promoted versions (name -> version)."""
    seed: int


def register(runtime: Runtime, trained: TrainedEstimators) -> dict[str, int]:
    versions = {}
    with session_scope(runtime.sessions) as session:
        registry = EstimatorVersionRepository(session)
        for name, result in trained.default_set().items():
            row = registry.add_candidate(name, str(result.path), metrics=dict(result.metrics), backbone=result.backbone)
            registry.promote(name, row.version)
            versions[name] = row.version
    return versions


@pytest.fixture(scope="module")
def deployment(
    trained_estimators: TrainedEstimators, runtime: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    trained_estimators.default_set()  # train before the workers start (minutes on two cores)
    seed = runtime.settings.simulator.seed
    overrides = {
        "HERA_CONTINUAL__SHADOW_RATE": "1",
        "HERA_ESTIMATORS__RELOAD_INTERVAL_S": str(RELOAD_INTERVAL_S),
    }
    log_dir = tmp_path_factory.mktemp("continual-dist")
    with fresh_postgres_database("hera_continual_dist") as url:
        upgrade(url)
        with distributed_system(url, REDIS_URL, log_dir, seed=seed, overrides=overrides, start=()) as system:
            system.start_worker("router", pool="prefork", concurrency=2)
            system.start_worker("edge")
            system.start_worker("cloud")
            live = system.app.hera_runtime
            yield Deployment(system, live, register(live, trained_estimators), seed)


def training_worker(system: DistributedSystem, **env: str) -> WorkerProcess:
    """A `hera-router worker -Q training -P prefork -c 1`, the documented training deployment."""
    return system.start_worker("training", pool="prefork", concurrency=1, env={**TRAINER_ENV, **env})


def stop_worker(system: DistributedSystem, queue: str) -> None:
    worker = system.workers.pop(queue, None)
    if worker is not None and worker.process.poll() is None:
        worker.process.terminate()
        worker.process.wait(timeout=60)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the prefork pool's children), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_everything(worker: WorkerProcess) -> None:
    """SIGKILL the worker and its pool children at once: a killed container, an OOM-killed cgroup."""
    for pid in [worker.process.pid, *descendants(worker.process.pid)]:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(pid, signal.SIGKILL)
    worker.process.wait(timeout=30)


def run_row(runtime: Runtime, slot: datetime) -> TrainingRun | None:
    with session_scope(runtime.sessions) as session:
        row = TrainingRunRepository(session).by_schedule("dp", slot)
        if row is not None:
            session.expunge(row)
        return row


def dp_versions(runtime: Runtime) -> tuple[int | None, list[int]]:
    """(the active DP version, every registered DP version)."""
    with session_scope(runtime.sessions) as session:
        registry = EstimatorVersionRepository(session)
        active = registry.active("dp")
        return (active.version if active else None), [row.version for row in registry.list_versions("dp")]


def queue_retrain(system: DistributedSystem, slot: datetime) -> None:
    """What ``POST /v1/admin/retrain`` and ``hera-router retrain --queue`` send."""
    system.app.send_task(
        TaskName.RETRAIN_NIGHTLY,
        kwargs={"scheduled_for": slot.isoformat(), "trigger": "api", "names": ["dp"]},
        task_id=f"retrain:{slot.isoformat()}:{uuid.uuid4().hex[:6]}",
    )


def logs_of(system: DistributedSystem, *workers: WorkerProcess) -> str:
    return "\n".join(f"--- {w.queue}\n{w.log()[-6000:]}" for w in workers) + "\n" + system.logs()


def test_a_killed_trainer_leaves_a_failed_run_and_the_active_dp_unchanged(deployment: Deployment) -> None:
    system, runtime = deployment.system, deployment.runtime
    for request_id in live_requests(runtime, 8, tenant="killed-trainer"):
        assert shadow_request(runtime, request_id).status == "succeeded"
    active_before, registered_before = dp_versions(runtime)
    assert active_before is not None
    slot = datetime(2032, 3, 1, 2, 0, tzinfo=UTC)

    trainer = training_worker(system, **SLOW_UPDATE)
    try:
        queue_retrain(system, slot)

        def training() -> bool:
            row = run_row(runtime, slot)
            assert row is None or row.status is RunStatus.RUNNING, (row.status, row.error, row.metrics)
            # past the labels and at least one finished epoch of the LoRA update
            return row is not None and str((row.metrics or {}).get("progress", "")).startswith("epoch")

        try:
            wait_for(training, 300, "the retraining never reached its training epochs")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs_of(system, trainer)}") from None
        running = run_row(runtime, slot)
        assert running is not None
        assert running.metrics["stage"] == "training"
        assert running.metrics["warm"] is True  # continuing from the active adapter
        # A live trainer holds the advisory lock: the reaper must not touch its run, however
        # silent the threshold says it is.
        impatient = runtime.settings.continual.model_copy(update={"stale_after_s": 0.001})
        eager = Runtime(runtime.settings.model_copy(update={"continual": impatient}))
        try:
            assert reap_abandoned_runs(eager, ["dp"]) == []
        finally:
            eager.close()

        system.workers.pop("training")
        kill_everything(trainer)
    finally:
        stop_worker(system, "training")

    # Nobody closed the run, but the trainer's connection died with it and took the lock along.
    left = run_row(runtime, slot)
    assert left is not None
    assert left.status is RunStatus.RUNNING

    def lock_free() -> bool:
        with try_advisory_lock(runtime.engine, lock_name("dp")) as held:
            return held

    wait_for(lock_free, 30, "the killed trainer's advisory lock was not released")

    # A replacement training worker; beat would send the reaper every REAP_INTERVAL_S.
    replacement = training_worker(system)
    try:
        system.app.send_task("training.reap_abandoned_runs")

        def failed() -> bool:
            row = run_row(runtime, slot)
            return row is not None and row.status is not RunStatus.RUNNING

        try:
            wait_for(failed, 120, "the reaper did not close the abandoned run")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs_of(system, replacement)}") from None
    finally:
        stop_worker(system, "training")
    row = run_row(runtime, slot)
    assert row is not None
    assert row.status is RunStatus.FAILED
    assert row.error == ABANDONED
    assert row.finished_at is not None
    assert row.metrics["stage"] == "training"  # the last heartbeat's progress is kept
    # Nothing half-registered: no version row, no published folder, the same active version.
    assert dp_versions(runtime) == (active_before, registered_before)
    assert not version_dir(system.settings.artifacts, "dp", max(registered_before) + 1).exists()


def hera_decision_versions(runtime: Runtime, ids: list[uuid.UUID]) -> list[dict[str, int]]:
    with session_scope(runtime.sessions) as session:
        decisions = DecisionRepository(session)
        rows = [d for request_id in ids for d in decisions.list_for_request(request_id)]
        assert rows, "no decisions recorded"
        assert {d.policy for d in rows} == {"hera"}
        return [{name: int(v) for name, v in d.estimator_versions.items()} for d in rows]


def test_a_promoted_dp_reaches_the_decisions_of_the_running_router(deployment: Deployment) -> None:
    system, runtime = deployment.system, deployment.runtime
    router = system.workers["router"]
    dispatcher = celery_dispatcher(system.app)
    tasks = generate("lookup", 12, deployment.seed)
    trainer = training_worker(system, **FAST_UPDATE)
    try:
        before = submit(runtime.sessions, dispatcher, tasks[:8], "hera")
        try:
            finished = wait_until_finished(runtime.sessions, before, timeout_s=400)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs_of(system, trainer)}") from None
        # A request stopped without a final answer (HERA_ROUTING__MAX_STEPS) is not shadowed.
        answered = [i for i, row in finished.items() if row.status is RequestStatus.SUCCEEDED]
        assert len(answered) >= len(before) // 2, {i: row.error for i, row in finished.items()}
        active_before, _ = dp_versions(runtime)
        versions_before = hera_decision_versions(runtime, before)
        assert all(v == deployment.versions | {"dp": active_before} for v in versions_before), versions_before

        # Every answered request was shadowed on the training queue (SHADOW_RATE=1).
        def shadowed() -> bool:
            with session_scope(runtime.sessions) as session:
                shadow = ShadowRunRepository(session)
                rows = [shadow.by_request(request_id) for request_id in answered]
            return all(r is not None and r.status is RunStatus.SUCCEEDED for r in rows)

        try:
            wait_for(shadowed, 180, "the shadow runs of the live requests did not all succeed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs_of(system, trainer)}") from None

        slot = datetime(2032, 4, 1, 2, 0, tzinfo=UTC)
        queue_retrain(system, slot)

        def closed() -> bool:
            row = run_row(runtime, slot)
            return row is not None and row.status is not RunStatus.RUNNING

        try:
            wait_for(closed, 400, "the retraining did not finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs_of(system, trainer)}") from None
    finally:
        stop_worker(system, "training")
    run = run_row(runtime, slot)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED, (run.error, run.metrics)
    assert run.metrics["decision"] == "promoted", run.metrics
    new = int(run.metrics["version"])
    assert new != active_before
    assert dp_versions(runtime)[0] == new
    assert run.metrics["active_version"] == active_before  # the gate compared against the old one
    assert run.metrics["candidate_metrics"]["warm_start_from"] == active_before

    time.sleep(RELOAD_INTERVAL_S + 0.5)  # let every router process's reload interval pass
    after = submit(runtime.sessions, dispatcher, tasks[8:], "hera")
    try:
        wait_until_finished(runtime.sessions, after, timeout_s=300)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{system.logs()}") from None
    expected: dict[str, Any] = deployment.versions | {"dp": new}
    versions_after = hera_decision_versions(runtime, after)
    assert all(v == expected for v in versions_after), versions_after
    assert router.process.poll() is None, "the router was restarted"
    assert system.workers["router"] is router
