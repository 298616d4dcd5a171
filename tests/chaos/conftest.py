"""Fixtures of the chaos suite: a private Postgres for the session, the results of every scenario.

``make chaos`` sets HERA_CHAOS_RESULTS=benchmarks/results/chaos.md: the session then writes the
results table there (and the raw numbers next to it as JSON).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import Outcome, write_json
from tests.chaos.report import render
from tests.integration.services import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def chaos_postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def chaos_results() -> Iterator[list[Outcome]]:
    outcomes: list[Outcome] = []
    yield outcomes
    target = os.environ.get("HERA_CHAOS_RESULTS")
    if target and outcomes:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(outcomes))
        write_json(outcomes, path.with_suffix(".json"))
