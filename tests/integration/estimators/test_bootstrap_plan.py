"""Bootstrap through real backends: the plan before any call, the confirmation, the spending limit,
and the plan against what the model servers served.

The model servers are the project's loopback dev server (real TGI and OpenAI protocols over HTTP)
fronting the simulated models; each counts the calls it served. Training is cut to the minimum
(one epoch, one step) so that a whole bootstrap runs in minutes: what is tested is the calls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hera_router import cli
from hera_router.backends.base import Generation, GenerationParams, Message
from hera_router.backends.tgi import allow_self_hosted_servers_offline
from hera_router.config import load_settings
from hera_router.db.enums import Executor
from hera_router.db.repositories import ProfilingRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.devserver import ServerThread, create_app
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate, write_jsonl
from hera_router.training.bootstrap import plan_bootstrap
from hera_router.training.profiling import load_trees

SMALL = {
    "HERA_ESTIMATORS__PROFILE_FAMILY": "lookup",
    "HERA_ESTIMATORS__PROFILE_REQUESTS": "12",
    "HERA_ESTIMATORS__URC_REQUESTS": "6",
    "HERA_ESTIMATORS__CALIBRATION_REQUESTS": "0",
    "HERA_ESTIMATORS__ENCODER_EPOCHS": "1",
    "HERA_ESTIMATORS__ENCODER_MIN_STEPS": "1",
    "HERA_ESTIMATORS__EMBEDDING_EPOCHS": "1",
    "HERA_ESTIMATORS__TRAINING_PRIORITY": "normal",
    "HF_HUB_OFFLINE": "1",
}


class Counting:
    """A model behind the dev server that counts the calls it served."""

    def __init__(self, backend: SimBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.model = backend.model
        self.served = 0
        self._lock = threading.Lock()

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        with self._lock:
            self.served += 1
        return self.backend.generate(messages, params)


class Servers:
    def __init__(self, edge: Counting, cloud: Counting) -> None:
        self.edge, self.cloud = edge, cloud

    def served(self) -> dict[str, int]:
        return {"edge": self.edge.served, "cloud": self.cloud.served}


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    """Edge over TGI, cloud over the OpenAI protocol, both served over HTTP; settings point at them."""
    allow_self_hosted_servers_offline()
    edge, cloud = Counting(SimBackend("slm", "sim-slm")), Counting(SimBackend("llm", "sim-llm"))
    with ServerThread(create_app(edge)) as edge_server, ServerThread(create_app(cloud)) as cloud_server:
        env = {
            **SMALL,
            "HERA_DATA_DIR": str(tmp_path / "data"),
            "HERA_EDGE__BACKEND": "tgi",
            "HERA_EDGE__URL": edge_server.url,
            "HERA_EDGE__MODEL": "sim-slm",
            "HERA_CLOUD__BACKEND": "openai",
            "HERA_CLOUD__URL": f"{cloud_server.url}/v1",
            "HERA_CLOUD__MODEL": "sim-llm",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield Servers(edge, cloud)


def test_bootstrap_on_real_backends_prints_the_plan_and_refuses_without_a_confirmation(servers: Servers) -> None:
    result = CliRunner().invoke(cli.app, ["bootstrap"])
    assert result.exit_code == 2, result.output
    assert "cloud (openai sim-llm):" in result.output
    assert "estimated total: $" in result.output
    assert "rerun with --yes" in result.output
    assert servers.served() == {"edge": 0, "cloud": 0}, "nothing is called before the confirmation"

    planned = CliRunner().invoke(cli.app, ["bootstrap", "--plan"])
    assert planned.exit_code == 0, planned.output
    assert "training trees: 12 requests (sampled" in planned.output
    assert servers.served() == {"edge": 0, "cloud": 0}


def test_bootstrap_rejects_a_budget_that_is_not_positive(servers: Servers) -> None:
    result = CliRunner().invoke(cli.app, ["bootstrap", "--budget-usd", "0"])
    assert result.exit_code == 2
    assert "0 is not a positive amount of dollars" in result.output
    assert servers.served() == {"edge": 0, "cloud": 0}


def test_run_never_bootstraps_on_real_backends_by_itself(servers: Servers, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    write_jsonl(generate("lookup", 2, 0), requests)
    result = CliRunner().invoke(cli.app, ["run", str(requests), "--policy", "hera-paper"])
    assert result.exit_code == 2, result.output
    assert "never starts by itself: run `hera-router bootstrap`" in result.output
    assert servers.served() == {"edge": 0, "cloud": 0}

    # `hera` needs no bootstrap: it routes the two requests in cold-start mode and profiles nothing.
    routed = CliRunner().invoke(cli.app, ["run", str(requests), "--policy", "hera"])
    assert routed.exit_code == 0, routed.output
    assert "routes in cold-start mode" in routed.output
    assert "running `hera-router bootstrap`" not in routed.output
    served = servers.served()
    assert 0 < served["edge"] <= 2 * 15
    assert served["cloud"] <= 2 * 15
    runtime = Runtime(load_settings())
    try:
        with session_scope(runtime.sessions) as session:
            assert ProfilingRepository(session).latest_run(status=None) is None
    finally:
        runtime.close()


@pytest.mark.timeout(1200)
def test_the_plan_is_within_a_quarter_of_the_calls_the_servers_served(servers: Servers) -> None:
    plan = plan_bootstrap(load_settings())
    result = CliRunner().invoke(cli.app, ["bootstrap", "--yes"])
    assert result.exit_code == 0, result.output
    served = servers.served()
    for role in ("edge", "cloud"):
        planned = plan.total(role).calls
        assert planned > 0
        assert abs(served[role] - planned) <= 0.25 * planned, (role, served[role], planned)
    assert "profiling calls: edge" in result.output
    assert "stopped short" not in result.output


@pytest.mark.timeout(600)
def test_a_spending_limit_stops_profiling_cleanly_before_it_is_crossed(servers: Servers) -> None:
    settings = load_settings()
    plan = plan_bootstrap(settings)
    training = list(plan.stages[0].request_usd.values())
    reserve = sum(plan.sd_validation[role].usd for role in ("edge", "cloud"))
    budget = reserve + sum(training[:3]) * 1.01  # room for about three training requests
    result = CliRunner().invoke(cli.app, ["bootstrap", "--budget-usd", f"{budget:.6f}"])
    assert result.exit_code == 1, result.output
    assert "the spending limit of $" in result.output
    assert "too few to train on, nothing was trained" in result.output
    runtime = Runtime(settings)
    with session_scope(runtime.sessions) as session:
        run = ProfilingRepository(session).latest_run()
        assert run is not None
        run_id, profiled = run.id, run.n_requests
    trees = load_trees(runtime.sessions, run_id)
    runtime.close()
    assert 1 <= profiled <= 5
    assert len(trees) == profiled
    spent = sum(node.cost_usd for tree in trees.values() for node in tree)
    assert spent <= budget
    # Only the profiled trees were called: no URC requests, no training, no SD validation.
    cloud_nodes = [n for tree in trees.values() for n in tree if n.kind == "step" and n.producing_model is Executor.LLM]
    assert servers.served()["cloud"] == len(cloud_nodes)
