"""A whole simulated request through the dev server, with both real clients over HTTP.

The edge server fronts the simulated SLM and the cloud server the simulated LLM; the TGI client
(``huggingface_hub.InferenceClient``) and the OpenAI client talk to them in both their chat and
raw-prompt modes. Because the simulator is a pure function of its prompt, the run over HTTP must
match the in-process run step for step, which checks that the wire format survives both
protocols (including ChatML flattening) unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hera_router.agent.scoring import score
from hera_router.backends.base import GenerationParams, ModelBackend
from hera_router.backends.openai_compat import OpenAIBackend
from hera_router.backends.tgi import TGIBackend, allow_self_hosted_servers_offline
from hera_router.devserver import ServerThread, create_app
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate_tasks
from hera_router.simulator.loop import Chooser, Executor, run_request

PARAMS = GenerationParams(max_new_tokens=256)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[Executor, str]]:
    allow_self_hosted_servers_offline()
    with (
        ServerThread(create_app(SimBackend("slm", "sim-slm"))) as edge,
        ServerThread(create_app(SimBackend("llm", "sim-llm"))) as cloud,
    ):
        yield {"slm": edge.url, "llm": cloud.url}


def _clients(servers: dict[Executor, str], protocol: str, use_chat: bool) -> dict[Executor, ModelBackend]:
    def make(executor: Executor) -> ModelBackend:
        model = f"sim-{executor}"
        if protocol == "tgi":
            return TGIBackend(url=servers[executor], model=model, timeout_s=10, use_chat=use_chat)
        return OpenAIBackend(url=servers[executor] + "/v1", model=model, timeout_s=10, api_key="x", use_chat=use_chat)

    return {"slm": make("slm"), "llm": make("llm")}


def _alternate(step: int, _current: str) -> Executor:
    return "slm" if step % 2 else "llm"


def _in_process() -> dict[Executor, ModelBackend]:
    return {"slm": SimBackend("slm", "sim-slm"), "llm": SimBackend("llm", "sim-llm")}


@pytest.mark.parametrize("use_chat", [True, False], ids=["chat", "raw-prompt"])
@pytest.mark.parametrize("protocol", ["tgi", "openai"])
def test_a_request_runs_to_a_final_answer_over_http(
    servers: dict[Executor, str], protocol: str, use_chat: bool
) -> None:
    clients = _clients(servers, protocol, use_chat)
    world = SimBackend("llm", "sim-llm").simulated.world
    for task in generate_tasks(world, "mixed", 4):
        choose: Chooser = _alternate
        over_http = run_request(task.request, clients, choose, params=PARAMS)
        local = run_request(task.request, _in_process(), choose, params=PARAMS)

        assert over_http.finished
        assert over_http.final_answer == local.final_answer
        assert [(s.subtask, s.result) for s in over_http.steps] == [(s.subtask, s.result) for s in local.steps]
        assert all(not s.problems for s in over_http.steps)


def test_all_llm_over_http_is_right(servers: dict[Executor, str]) -> None:
    clients = _clients(servers, "openai", True)
    world = SimBackend("llm", "sim-llm").simulated.world
    tasks = generate_tasks(world, "mixed", 6)
    scores = [
        score(t.metric, run_request(t.request, clients, lambda _s, _c: "llm", params=PARAMS).final_answer, t.gold)
        for t in tasks
    ]

    assert sum(scores) >= 5
