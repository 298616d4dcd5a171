"""Profiling runs in the database: stored trees, resumption after an interruption, the queue task."""

from __future__ import annotations

import pytest

from hera_router.db.enums import RunStatus
from hera_router.db.repositories import ProfilingRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.training.profiling import ROOT, create_run, load_trees, profile_run, run_config


class ProfilingInterruptedError(Exception):
    pass


def test_an_interrupted_run_resumes_without_duplicating_trees(runtime: Runtime) -> None:
    settings = runtime.settings
    run_id = create_run(runtime.sessions, "resume", "sim", run_config(settings, family="lookup", n=5, node_budget=12))

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise ProfilingInterruptedError

    with pytest.raises(ProfilingInterruptedError):
        profile_run(settings, runtime.sessions, run_id, on_request=stop_after_two)
    assert len(load_trees(runtime.sessions, run_id)) == 2
    with session_scope(runtime.sessions) as session:
        run = ProfilingRepository(session).get_run(run_id)
        assert run is not None
        assert run.status is RunStatus.RUNNING

    seen: list[int] = []
    assert profile_run(settings, runtime.sessions, run_id, on_request=lambda done, total: seen.append(done)) == 5
    assert seen == [1, 2, 3, 4, 5]
    trees = load_trees(runtime.sessions, run_id)
    assert len(trees) == 5
    for nodes in trees.values():
        assert [n.kind for n in nodes].count(ROOT) == 1
        assert sum(n.kind == "step" for n in nodes) <= 12
    with session_scope(runtime.sessions) as session:
        run = ProfilingRepository(session).get_run(run_id)
        assert run is not None
        assert (run.status, run.n_requests) == (RunStatus.SUCCEEDED, 5)
    # A finished run is not profiled again (a redelivered task does nothing).
    assert profile_run(settings, runtime.sessions, run_id) == 5
    assert sum(len(n) for n in load_trees(runtime.sessions, run_id).values()) == sum(len(n) for n in trees.values())


def test_the_training_queue_task_profiles_a_run(runtime: Runtime) -> None:
    from hera_router.workers import create_app
    from hera_router.workers.tasks.training import profile

    app = create_app(runtime.settings)
    app.hera_runtime = runtime
    run_id = create_run(runtime.sessions, "task", "sim", run_config(runtime.settings, family="arithmetic", n=2))
    task = app.tasks["training.profile"]
    assert task.acks_late is False
    assert profile.name == "training.profile"
    assert task.run(str(run_id)) == 2
    assert len(load_trees(runtime.sessions, run_id)) == 2
