from __future__ import annotations

import pytest

from hera_router.simulator.backend import SimBackend
from hera_router.simulator.loop import Executor
from hera_router.simulator.presets import load_behaviour
from hera_router.simulator.world import World


@pytest.fixture(scope="session")
def world() -> World:
    return World(0, load_behaviour().world)


@pytest.fixture(scope="session")
def backends() -> dict[Executor, SimBackend]:
    return {"slm": SimBackend("slm", "sim-slm"), "llm": SimBackend("llm", "sim-llm")}


@pytest.fixture(scope="session")
def perfect() -> dict[Executor, SimBackend]:
    return {
        "slm": SimBackend("slm", "sim-slm", preset="perfect"),
        "llm": SimBackend("llm", "sim-llm", preset="perfect"),
    }
