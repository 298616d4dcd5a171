"""`hera-router run` on an in-process model that is slow to load and holds the CPU while it
generates, as the local SmolLM2 does: the database stays available to every other thread (no
write-lock timeout, no failed maintenance tick) and the console shows the run and nothing else.

The model is a stand-in (no SmolLM2 needed): it spins in Python, holding the GIL, for longer than
the SQLite write-lock timeout, once when it is built and again on every call.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hera_router import cli
from hera_router.backends import registry
from hera_router.backends.base import BackendRole, Generation, GenerationParams, Message, ModelBackend
from hera_router.backends.echo import EchoBackend
from hera_router.config import BackendSettings, Settings
from hera_router.db.enums import RequestStatus
from hera_router.db.repositories import RequestRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.simulator.generate import generate, write_jsonl

LOCK_TIMEOUT_MS = 1000
LOAD_S = 3.0
"""Building the model: three times the write-lock timeout."""
CALL_S = 1.5
"""One generation: longer than the write-lock timeout."""


def hold_the_cpu(seconds: float) -> None:
    """Compute in Python for ``seconds``: the CPU and the GIL are busy, as during a model's load
    or generation."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        sum(range(1000))


class CpuBoundModel:
    """Echo's answers from a model that loads slowly and computes for a while on every call, one
    call at a time (as the local backend serialises generation)."""

    name = "cpu-bound"

    def __init__(self, model: str) -> None:
        hold_the_cpu(LOAD_S)
        self.model = model
        self._echo = EchoBackend(model)
        self._lock = threading.Lock()

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        with self._lock:
            hold_the_cpu(CALL_S)
            return self._echo.generate(messages, params)


def cpu_bound_factory(config: BackendSettings, settings: Settings, role: BackendRole) -> ModelBackend:
    return CpuBoundModel(config.model)


def console_lines(records: list[logging.LogRecord]) -> list[str]:
    """What a user would see of the records: the project's and Celery's warnings and errors, and
    any warning that carries a traceback."""
    shown = [
        r
        for r in records
        if r.levelno >= logging.WARNING and (r.name.startswith(("hera_router", "celery")) or r.exc_info)
    ]
    return [f"{r.name} {r.levelname}: {r.getMessage()}" for r in shown]


@pytest.mark.timeout(180)
def test_run_with_a_slow_cpu_bound_model_keeps_the_database_free_and_the_console_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry.register_backend("cpu-bound", cpu_bound_factory)  # a name of its own: nothing to undo
    monkeypatch.setenv("HERA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HERA_EDGE__BACKEND", "cpu-bound")
    monkeypatch.setenv("HERA_EDGE__MODEL", "cpu-bound")
    monkeypatch.setenv("HERA_DB_LOCK_TIMEOUT_MS", str(LOCK_TIMEOUT_MS))
    requests = tmp_path / "r.jsonl"
    write_jsonl(generate("mixed", 3, 5), requests)

    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli.app, ["run", str(requests), "-p", "all-slm"])

    assert result.exit_code == 0, result.output
    assert console_lines(caplog.records) == []
    assert "Traceback" not in result.output
    assert "write lock" not in result.output
    assert "3 / 0 / 0" in result.output  # succeeded / failed / cancelled
    runtime = Runtime(cli.load_settings())
    try:
        with session_scope(runtime.sessions) as session:
            assert RequestRepository(session).count_by_status() == {RequestStatus.SUCCEEDED: 3}
    finally:
        runtime.close()
