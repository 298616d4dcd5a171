"""The embedded maintenance thread's jobs: a failure is one line naming the job and the retry,
repeats are counted, recovery is said once; the traceback stays at DEBUG."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import OperationalError

from hera_router.workers.system import PeriodicJob


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("BEGIN IMMEDIATE", None, TimeoutError("no SQLite write lock within 5 s"))
        return 0


def test_a_failing_job_logs_one_line_then_counts_then_says_it_is_back(caplog: pytest.LogCaptureFixture) -> None:
    work = Flaky(failures=3)
    job = PeriodicJob("outbox relay", work, retry_s=1.0)
    with caplog.at_level(logging.INFO, logger="hera_router.workers.system"):
        for _ in range(5):
            job()
    assert work.calls == 5  # a failure never stops the ticks
    records = [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records]
    assert len(records) == 2, records
    level, message, exc_info = records[0]
    assert level == logging.WARNING
    assert exc_info is None
    assert "\n" not in message
    assert message.startswith("embedded maintenance: the outbox relay failed, retrying every 1 s: OperationalError")
    assert "no SQLite write lock within 5 s" in message
    assert records[1][:2] == (logging.INFO, "embedded maintenance: the outbox relay works again after 3 failed ticks")
    assert job.failures == 0


def test_the_traceback_of_a_failed_tick_is_kept_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    job = PeriodicJob("reconciler", Flaky(failures=1), retry_s=3.0)
    with caplog.at_level(logging.DEBUG, logger="hera_router.workers.system"):
        job()
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 1
    assert debug[0].exc_info is not None
    assert isinstance(debug[0].exc_info[1], OperationalError)
