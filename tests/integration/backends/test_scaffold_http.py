"""The scaffolded protocol over HTTP: the prefilled answer stem survives the TGI and OpenAI raw-prompt
routes (ChatML with an open assistant turn) and reaches the served model as the turn to continue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hera_router.agent.scaffold import ScaffoldBackend
from hera_router.backends.base import Message, ModelBackend
from hera_router.backends.chatml import parse_chatml, render_chatml
from hera_router.backends.openai_compat import OpenAIBackend
from hera_router.backends.tgi import TGIBackend, allow_self_hosted_servers_offline
from hera_router.devserver import ServerThread, create_app
from hera_router.simulator.loop import run_request
from tests.unit.agent.test_scaffold import REQUEST, CopyingModel


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, CopyingModel]]:
    allow_self_hosted_servers_offline()
    model = CopyingModel()
    with ServerThread(create_app(model)) as server:
        yield server.url, model


def test_chatml_leaves_a_trailing_assistant_turn_open_and_reads_it_back() -> None:
    messages = [Message("system", "s"), Message("user", "u"), Message("assistant", "The mayor of Melport is")]

    prompt = render_chatml(messages)

    assert prompt.endswith("<|im_start|>assistant\nThe mayor of Melport is")
    assert parse_chatml(prompt) == messages
    assert parse_chatml(render_chatml(messages[:2])) == messages[:2]


@pytest.mark.parametrize("protocol", ["tgi", "openai"])
def test_a_scaffolded_request_runs_over_the_raw_prompt_route(served: tuple[str, CopyingModel], protocol: str) -> None:
    url, model = served
    client: ModelBackend = (
        TGIBackend(url=url, model="copy", timeout_s=10, use_chat=False)
        if protocol == "tgi"
        else OpenAIBackend(url=url + "/v1", model="copy", timeout_s=10, api_key="x", use_chat=False)
    )
    before = len(model.calls)

    trace = run_request(REQUEST, {"slm": ScaffoldBackend(client), "llm": client}, lambda _s, _c: "slm")

    assert trace.finished
    assert trace.final_answer == "Ashford"
    asked = model.calls[before:]
    assert len(asked) == 2
    assert asked[-1][-1] == Message("assistant", "The birthplace of Mara Vo is")
