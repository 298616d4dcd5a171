"""A small batch through a real distributed deployment, watched the way an operator would.

Router (prefork, so counts from two children must be merged), edge and cloud workers each serve
``/metrics`` on their own port; the API serves ``/metrics``; Flower runs as its own process with
basic auth. After the batch, the scraped counters must equal what Postgres holds, and Flower's
authenticated API must list every task of the batch as succeeded.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hera_router.api.app import create_app as create_api
from hera_router.db.enums import CallStatus, Executor, RequestStatus
from hera_router.db.models import Decision, ModelCall
from hera_router.db.repositories import RequestRepository
from hera_router.db.session import session_scope
from hera_router.devserver.server import ServerThread
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from tests.conftest import REDIS_URL
from tests.integration.ops.processes import HERA, answers, free_port, scrape, spawn, stop, total, wait_until
from tests.integration.pipeline.distributed import DistributedSystem, WorkerProcess, distributed_system
from tests.integration.pipeline.helpers import submit, wait_until_finished

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SEED = 11
FLOWER_AUTH = ("ops", "s3cret-for-tests")
EXECUTOR_OF_ROLE = {"edge": Executor.SLM.value, "cloud": Executor.LLM.value}


@dataclass
class Observed:
    system: DistributedSystem
    api_url: str
    worker_metrics: dict[str, str]
    flower_url: str
    flower_log: Path
    ids: list[uuid.UUID]


@pytest.fixture(scope="module")
def observed(migrated_postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    log_dir = tmp_path_factory.mktemp("ops-batch")
    with distributed_system(migrated_postgres_url, REDIS_URL, log_dir, seed=SEED, start=()) as system:
        metrics_urls: dict[str, str] = {}
        for queue, pool, concurrency in (("router", "prefork", 2), ("edge", "threads", 4), ("cloud", "threads", 4)):
            port = free_port()
            env = {**system.env, "HERA_OPS__METRICS_DIR": str(log_dir / f"metrics-{queue}")}
            argv = [
                *HERA,
                "worker",
                "-Q",
                queue,
                "-P",
                pool,
                "-c",
                str(concurrency),
                "--metrics-port",
                str(port),
                "-n",
                f"{queue}-{uuid.uuid4().hex[:6]}@localhost",
                "--without-gossip",
                "--without-mingle",
            ]
            log = log_dir / f"worker-{queue}.log"
            system.workers[queue] = WorkerProcess(queue=queue, process=spawn(argv, env, log), log_path=log)
            metrics_urls[queue] = f"http://127.0.0.1:{port}/metrics"
        flower_port = free_port()
        flower_env = {
            **system.env,
            "HERA_OPS__FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
            "HERA_OPS__FLOWER_PORT": str(flower_port),
        }
        flower_log = log_dir / "flower.log"
        flower = spawn([*HERA, "flower"], flower_env, flower_log)
        flower_url = f"http://127.0.0.1:{flower_port}"
        try:
            for queue, url in metrics_urls.items():
                wait_until(
                    answers(url), 60, f"the {queue} worker's metrics did not answer", system.workers[queue].log_path
                )
            wait_until(answers(f"{flower_url}/healthcheck"), 60, "Flower did not start", flower_log)
            names = sorted(node_names(system))

            def all_answer() -> bool:
                replies = system.app.control.ping(destination=names, timeout=1.0) or []
                return sorted(node for reply in replies for node in reply) == names

            wait_until(all_answer, 90, "the workers did not answer a ping")
            # Flower must be listening to events before the batch, or it never hears of it.
            wait_until(
                lambda: (
                    set(names)
                    <= set(httpx.get(f"{flower_url}/api/workers?refresh=1", auth=FLOWER_AUTH, timeout=20).json())
                ),
                60,
                "Flower does not see the three workers",
                flower_log,
            )
            api_app = create_api(system.settings)
            with ServerThread(api_app) as api:
                sessions = system.app.hera_runtime.sessions
                dispatcher = celery_dispatcher(system.app)
                ids = submit(sessions, dispatcher, generate("mixed", 8, SEED), "random")
                ids += submit(sessions, dispatcher, generate("mixed", 4, SEED + 1), "all-slm")
                wait_until_finished(sessions, ids, timeout_s=90)
                yield Observed(system, api.url, metrics_urls, flower_url, flower_log, ids)
            api_app.state.hera.close()
            api_app.state.metrics.close()
        finally:
            stop(flower)


def node_names(system: DistributedSystem) -> list[str]:
    names = []
    for worker in system.workers.values():
        argv = worker.process.args
        assert isinstance(argv, list)
        names.append(str(argv[argv.index("-n") + 1]))
    return names


def database_counts(observed: Observed) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str], float, int]:
    """Ok model calls by (executor, backend), decisions by branch and by executor, cost, tokens in."""
    with session_scope(observed.system.app.hera_runtime.sessions) as session:
        calls = session.scalars(select(ModelCall).where(ModelCall.request_id.in_(observed.ids))).all()
        decisions = session.scalars(select(Decision).where(Decision.request_id.in_(observed.ids))).all()
    ok = [c for c in calls if c.status is CallStatus.OK]
    return (
        Counter((EXECUTOR_OF_ROLE[c.role.value], c.backend) for c in ok),
        Counter(d.branch for d in decisions),
        Counter(d.executor.value for d in decisions),
        sum(c.cost_usd for c in ok),
        sum(c.tokens_in for c in ok),
    )


def test_worker_counters_match_postgres(observed: Observed) -> None:
    calls, branches, executors, cost, tokens_in = database_counts(observed)
    assert set(branches) == {"random", "all-slm"}
    assert set(executors) == {"slm", "llm"}

    def matches() -> bool:
        scrapes = [scrape(url) for url in observed.worker_metrics.values()]
        got_calls = Counter(
            {
                key: int(
                    sum(
                        total(s, "hera_model_calls_total", executor=key[0], backend=key[1], status="ok")
                        for s in scrapes
                    )
                )
                for key in calls
            }
        )
        got_branches = Counter(
            {b: int(sum(total(s, "hera_decisions_total", branch=b) for s in scrapes)) for b in branches}
        )
        got_executors = Counter(
            {e: int(sum(total(s, "hera_decisions_total", executor=e) for s in scrapes)) for e in executors}
        )
        got_cost = sum(total(s, "hera_cost_usd_total") for s in scrapes)
        got_tokens = sum(total(s, "hera_model_tokens_total", direction="in") for s in scrapes)
        all_calls = sum(total(s, "hera_model_calls_total") for s in scrapes)
        return (
            got_calls == calls
            and all_calls == sum(calls.values())
            and got_branches == branches
            and got_executors == executors
            and abs(got_cost - cost) < 1e-9
            and got_tokens == tokens_in
        )

    # A worker counts right after its commit, so the last increment may trail the database by a moment.
    wait_until(matches, 15, f"worker counters never matched Postgres ({calls}, {branches}, cost {cost})")

    router = scrape(observed.worker_metrics["router"])
    # The router is prefork: its decisions were made in children and merged from their files.
    assert total(router, "hera_decisions_total") == sum(branches.values())
    assert total(router, "hera_decision_latency_seconds_count") == sum(branches.values())
    assert total(router, "hera_task_events_total", task="routing.plan_step", event="succeeded") >= sum(
        branches.values()
    )
    assert total(router, "hera_model_calls_total") == 0  # the router never calls a model


def test_api_metrics_show_state_and_http_counts(observed: Observed) -> None:
    health = httpx.get(f"{observed.api_url}/healthz", timeout=10).json()
    assert (health["status"], health["database"], health["broker"], health["warning"]) == ("ok", "ok", "ok", None)
    names = observed.system.settings.queues
    assert all(health["queues"][queue] for queue in (names.router, names.edge, names.cloud)), health
    samples = scrape(f"{observed.api_url}/metrics")
    with session_scope(observed.system.app.hera_runtime.sessions) as session:
        by_status = RequestRepository(session).count_by_status()

    assert total(samples, "hera_requests", status="succeeded") == by_status[RequestStatus.SUCCEEDED]
    assert total(samples, "hera_state_source_up", source="redis") == 1
    assert total(samples, "hera_state_source_up", source="postgres") == 1
    queues = observed.system.settings.queues
    for logical in ("router", "edge", "cloud", "training", "maintenance"):
        labels = {"queue": logical, "broker_queue": getattr(queues, logical)}
        assert ("hera_queue_depth", tuple(sorted(labels.items()))) in samples, logical
        assert total(samples, "hera_queue_depth", **labels) == 0
    # A sent message is marked published in the worker's next transaction or by its idle flush
    # (a quarter of the relay's grace period later), so the gauge reads a second or so right after
    # the batch and must fall to 0 once the workers have flushed their marks.
    wait_until(
        lambda: total(scrape(f"{observed.api_url}/metrics"), "hera_outbox_lag_seconds") == 0,
        2 * observed.system.settings.relay_grace_s + 5,
        "outbox rows stayed unmarked: a worker's idle flush never marked what it had sent",
    )
    assert total(samples, "hera_oldest_queued_request_age_seconds") == 0
    assert total(samples, "hera_api_requests_total", method="GET", route="/healthz", status="200") >= 1


def test_flower_lists_the_batch_with_auth_and_refuses_without(observed: Observed) -> None:
    with session_scope(observed.system.app.hera_runtime.sessions) as session:
        decisions = session.scalars(select(Decision).where(Decision.request_id.in_(observed.ids))).all()
        calls = session.scalars(
            select(ModelCall).where(ModelCall.request_id.in_(observed.ids), ModelCall.status == CallStatus.OK)
        ).all()
    routed = {f"plan:{d.request_id}:{d.seq}" for d in decisions}
    executed = {f"run:{c.subtask_id}:{EXECUTOR_OF_ROLE[c.role.value]}" for c in calls}

    def listed() -> dict[str, dict[str, object]]:
        response = httpx.get(f"{observed.flower_url}/api/tasks", auth=FLOWER_AUTH, timeout=10)
        response.raise_for_status()
        tasks: dict[str, dict[str, object]] = response.json()
        return tasks

    wait_until(
        lambda: routed | executed <= set(listed()), 20, "Flower is missing tasks of the batch", observed.flower_log
    )
    tasks = listed()
    for task_id in routed:
        assert tasks[task_id]["name"] == "routing.plan_step"
        assert tasks[task_id]["state"] == "SUCCESS"
    for task_id in executed:
        assert tasks[task_id]["name"] == "execution.run_subtask"
        assert tasks[task_id]["state"] == "SUCCESS"

    assert httpx.get(f"{observed.flower_url}/api/tasks", timeout=10).status_code == 401
    assert httpx.get(f"{observed.flower_url}/api/tasks", auth=("ops", "wrong"), timeout=10).status_code == 401
