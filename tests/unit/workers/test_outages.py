"""One log line per outage: the first failure warns, repeats are counted, recovery summarises."""

from __future__ import annotations

import logging
import random

import pytest
from sqlalchemy.exc import OperationalError

from hera_router.workers.base import DB_MAX_RETRIES, DB_OUTAGE_BUDGET_S, DB_RETRY_CAP_S, database_retry_countdown
from hera_router.workers.outages import CountOutageFailures, OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def db_error(text: str = "connection refused") -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception(text))


def test_an_outage_logs_once_then_counts_then_summarises(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outages = OutageLog(logging.getLogger("test.outages"), remind_every_s=60, clock=clock)
    outages.recovered("database")  # no outage open: nothing to say
    with caplog.at_level(logging.INFO, logger="test.outages"):
        for _ in range(500):
            outages.failure("database", db_error())
            clock.now += 0.04  # 500 failures in 20 s
        assert outages.in_outage("database")
        assert outages.failures("database") == 500
        outages.recovered("database")
        outages.recovered("database")
    records = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert len(records) == 2, records
    assert records[0][0] == logging.WARNING
    assert "database unavailable" in records[0][1]
    assert "connection refused" in records[0][1]
    assert records[1][0] == logging.INFO
    assert "database back after 20.0 s; 500 failed attempts" in records[1][1]
    assert not outages.in_outage("database")


def test_a_long_outage_reminds_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outages = OutageLog(logging.getLogger("test.outages"), remind_every_s=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.outages"):
        for _ in range(150):  # one failure a second for 150 s
            outages.failure("database", db_error())
            clock.now += 1
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3  # the first, then at 60 s and 120 s
    assert "still unavailable after 60 s (61 failures so far)" in messages[1]


def test_outages_are_per_dependency_and_a_new_outage_warns_again(caplog: pytest.LogCaptureFixture) -> None:
    outages = OutageLog(logging.getLogger("test.outages"), clock=Clock())
    with caplog.at_level(logging.INFO, logger="test.outages"):
        outages.failure("database", "down")
        outages.failure("broker", "down")
        outages.recovered("database")
        outages.failure("database", "down again")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert outages.in_outage("broker")


def test_celery_trace_records_about_database_errors_are_dropped_during_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog(logging.getLogger("test.outages"), clock=Clock())
    trace = logging.getLogger("test.celery.app.trace")
    trace.addFilter(CountOutageFailures(outages, "database", (OperationalError,)))
    retry = "Task %(name)s[%(id)s] retry: %(exc)s"

    def log_all(first_id: int) -> None:
        try:
            raise db_error()
        except OperationalError:
            trace.exception("Task x[%d] raised unexpected: OperationalError", first_id)
        trace.info(retry, {"name": "x", "id": first_id + 1, "exc": "Retry in 2s: OperationalError('x')"})
        trace.info(retry, {"name": "x", "id": first_id + 2, "exc": "Retry in 2s: BackendUnavailable('x')"})
        try:
            raise ValueError("a bug")
        except ValueError:
            trace.exception("Task x[%d] raised unexpected", first_id + 3)

    with caplog.at_level(logging.INFO):
        log_all(10)  # no outage open: everything is logged
        outages.failure("database", db_error())  # HeraTask.on_retry opens the outage first
        log_all(20)
    kept = [r.getMessage() for r in caplog.records if r.name == "test.celery.app.trace"]
    assert len(kept) == 4 + 2
    assert [m for m in kept if "x[2" in m] == [m for m in kept if "x[22]" in m or "x[23]" in m]
    assert outages.failures("database") == 1  # the filter does not count: on_retry did


def test_the_database_retry_schedule_rides_out_a_minute_and_stays_below_the_visibility_timeout() -> None:
    from hera_router.config import load_settings

    visibility = load_settings().visibility_timeout_s
    for seed in range(50):
        rng = random.Random(seed)
        delays = [database_retry_countdown(n, rng) for n in range(DB_MAX_RETRIES)]
        assert sum(delays) >= DB_OUTAGE_BUDGET_S
        assert max(delays) <= DB_RETRY_CAP_S < visibility
    lowest = sum(database_retry_countdown(n, _Lowest()) for n in range(DB_MAX_RETRIES))
    assert lowest >= DB_OUTAGE_BUDGET_S + 15  # the unluckiest jitter still leaves a margin


class _Lowest(random.Random):
    def random(self) -> float:
        return 0.0
