"""The chaos suite (``make chaos``; marker ``chaos``, deselected by default): one fault scenario at a
time against a whole distributed deployment, checked from Postgres (tests/chaos/harness.py).

Scenarios, in order (the baseline first: the others compare their wall time with it):

- ``baseline``: no fault;
- ``kills``: 10 SIGKILLs, main processes and prefork pool children of every queue's worker;
- ``redis-restart``: Redis killed and started again empty after 10 s;
- ``postgres-restart``: Postgres stopped (fast: sessions cut) and started again after 15 s;
- ``model-faults``: cloud answers 20 % 429 (then 5xx) while the edge answers 503 to everything,
  for 60 s;
- ``rabbitmq-kills``: RabbitMQ as the broker (a fresh vhost), with worker kills.

``HERA_CHAOS_REQUESTS`` (default 200) sets the batch size; ``HERA_CHAOS_ENFORCE`` which of the
recovery targets are asserted (tests/chaos/targets.py); the invariants always are.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hera_router.devserver.faults import FaultConfig
from tests.chaos.harness import Deployment, Outcome, RecoveryTracker, deployment, run_scenario, sleep_until
from tests.chaos.targets import enforced, invariant_failures, target_misses
from tests.integration.services import PostgresServer, RedisServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]

REQUESTS = int(os.environ.get("HERA_CHAOS_REQUESTS", "200"))

Faults = Callable[[Deployment, RecoveryTracker], None]


def no_fault(system: Deployment, tracker: RecoveryTracker) -> None:
    time.sleep(30)
    tracker.cleared("no fault, t=30 s")


KILLS: tuple[tuple[str, str], ...] = (
    ("router", "child"),
    ("edge", "child"),
    ("cloud", "main"),
    ("maintenance", "main"),
    ("router", "main"),
    ("edge", "main"),
    ("router", "child"),
    ("edge", "child"),
    ("cloud", "main"),
    ("router", "main"),
)


def kill_schedule(kills: tuple[tuple[str, str], ...], every_s: float) -> Faults:
    def faults(system: Deployment, tracker: RecoveryTracker) -> None:
        started = time.monotonic()
        for index, (kind, what) in enumerate(kills):
            sleep_until(started, 10 + index * every_s)
            process = system.processes[kind]
            if what == "main":
                process.kill_main()
                system.restart(kind)  # the supervisor
            elif not process.kill_child():
                continue
            tracker.cleared(f"SIGKILL {kind} {what}")

    return faults


def redis_restart(redis: RedisServer, down_s: float = 10.0) -> Faults:
    def faults(system: Deployment, tracker: RecoveryTracker) -> None:
        time.sleep(20)
        redis.kill()
        time.sleep(down_s)
        redis.start()
        tracker.cleared(f"Redis back empty after {down_s:.0f} s")

    return faults


def postgres_restart(postgres: PostgresServer, down_s: float = 15.0) -> Faults:
    def faults(system: Deployment, tracker: RecoveryTracker) -> None:
        time.sleep(20)
        postgres.stop()
        time.sleep(down_s)
        postgres.start()
        tracker.cleared(f"Postgres back after {down_s:.0f} s")

    return faults


def model_faults(system: Deployment, tracker: RecoveryTracker) -> None:
    edge_latency, cloud_latency = system.edge_faults.latency_s, system.cloud_faults.latency_s
    time.sleep(15)
    system.edge_faults.configure(FaultConfig(error_rate=1.0, error_status=503, latency_s=edge_latency))
    system.cloud_faults.configure(FaultConfig(error_rate=0.2, error_status=429, latency_s=cloud_latency, seed=3))
    time.sleep(30)
    system.cloud_faults.configure(FaultConfig(error_rate=0.2, error_status=503, latency_s=cloud_latency, seed=4))
    time.sleep(30)
    system.edge_faults.configure(FaultConfig(latency_s=edge_latency))
    system.cloud_faults.configure(FaultConfig(latency_s=cloud_latency))
    tracker.cleared("edge back after 60 s down, cloud errors off")


@pytest.fixture
def chaos_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def check(outcome: Outcome, results: list[Outcome]) -> None:
    results.append(outcome)
    baseline = next((o for o in results if o.scenario == "baseline"), None)
    print(f"\n{outcome.scenario}: {outcome.as_dict()}")
    failures = invariant_failures(outcome)
    active = enforced()
    misses = target_misses(outcome, baseline)
    failures += [text for name, text in misses.items() if name in active]
    for name, text in misses.items():
        if name not in active:
            print(f"target missed (reported, not enforced): {name}: {text}")
    assert not failures, "; ".join(failures)


@pytest.mark.parametrize(
    "scenario", ["baseline", "kills", "redis-restart", "postgres-restart", "model-faults", "rabbitmq-kills"]
)
def test_scenario(
    scenario: str,
    chaos_postgres: PostgresServer,
    chaos_redis: RedisServer,
    chaos_results: list[Outcome],
    tmp_path: Path,
) -> None:
    broker = "rabbitmq" if scenario.startswith("rabbitmq") else "redis"
    faults: Faults = {
        "baseline": no_fault,
        "kills": kill_schedule(KILLS, every_s=8),
        "redis-restart": redis_restart(chaos_redis),
        "postgres-restart": postgres_restart(chaos_postgres),
        "model-faults": model_faults,
        "rabbitmq-kills": kill_schedule(KILLS[:5], every_s=8),
    }[scenario]
    with deployment(scenario, chaos_postgres, tmp_path / "logs", broker=broker, redis=chaos_redis) as system:
        try:
            outcome = run_scenario(system, scenario, broker, REQUESTS, faults)
        except BaseException:
            print(system.worker_logs())
            raise
        if invariant_failures(outcome):
            print(system.worker_logs())
    check(outcome, chaos_results)
