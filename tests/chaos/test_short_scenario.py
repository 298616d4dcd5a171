"""The chaos harness's short scenario, part of the default test run (~60 s): one worker SIGKILL
and one Redis restart (empty) under a small batch, then what already holds must hold: every
request finished, no duplicate rows, no double charge, stored cost = sum of the calls, and every
worker survived the broker restart (none logged "Unrecoverable error", none had to be restarted
except the one that was killed).

The reconciler runs on a short leash here (10 s / 2 s instead of 120 s / 30 s) so that the
messages the empty Redis lost are re-driven within the minute; the full suite (``make chaos``)
measures recovery with the defaults.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import Deployment, RecoveryTracker, deployment, run_scenario
from tests.chaos.targets import invariant_failures
from tests.integration.services import PostgresServer, RedisServer

pytestmark = [pytest.mark.timeout(600)]


@pytest.fixture
def short_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_one_kill_and_one_redis_restart(
    chaos_postgres: PostgresServer, short_redis: RedisServer, tmp_path: Path
) -> None:
    def faults(system: Deployment, tracker: RecoveryTracker) -> None:
        time.sleep(4)
        system.processes["edge"].kill_main()
        system.restart("edge")
        tracker.cleared("SIGKILL edge main")
        time.sleep(6)
        short_redis.restart(down_s=2)
        tracker.cleared("Redis back empty")

    overrides: dict[str, str] = {}  # the default recovery settings
    with deployment("short", chaos_postgres, tmp_path / "logs", redis=short_redis, overrides=overrides) as system:
        outcome = run_scenario(system, "short", "redis", 30, faults, timeout_s=240)
        logs = system.worker_logs()
    failures = invariant_failures(outcome)
    assert not failures, f"{failures}\n{outcome.as_dict()}\n{logs}"
    assert outcome.restarts == {"router": 0, "edge": 1, "cloud": 0, "maintenance": 0, "beat": 0}
    assert len(outcome.recoveries) == 2
    assert outcome.statuses.get("succeeded", 0) + outcome.statuses.get("failed", 0) == 30
