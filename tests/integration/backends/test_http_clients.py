"""The real clients, over HTTP, against the dev server: the protocol shapes they parse."""

from __future__ import annotations

import httpx
import openai
import pytest
from huggingface_hub import InferenceClient

from tests.integration.backends.conftest import DevServer


@pytest.fixture
def hf(devserver: DevServer) -> InferenceClient:
    return InferenceClient(model=devserver.url, timeout=5)


@pytest.fixture
def oai(devserver: DevServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{devserver.url}/v1", api_key="unused", max_retries=0, timeout=5)


def test_text_generation_plain(hf: InferenceClient) -> None:
    assert hf.text_generation("three little words", max_new_tokens=10) == "echo: three little words"


def test_text_generation_details(hf: InferenceClient) -> None:
    out = hf.text_generation("three little words", max_new_tokens=10, details=True, decoder_input_details=True)
    assert out.generated_text == "echo: three little words"
    assert out.details is not None
    assert out.details.generated_tokens == 4
    assert len(out.details.prefill) == 3
    assert [t.text for t in out.details.tokens] == ["echo:", " three", " little", " words"]
    assert out.details.finish_reason == "eos_token"


def test_text_generation_details_reports_length(hf: InferenceClient) -> None:
    out = hf.text_generation("a b c d e", max_new_tokens=2, details=True)
    assert out.generated_text == "echo: a"
    assert out.details is not None
    assert out.details.finish_reason == "length"


def test_text_generation_stream(hf: InferenceClient) -> None:
    assert "".join(hf.text_generation("streamed words", max_new_tokens=10, stream=True)) == "echo: streamed words"
    events = list(hf.text_generation("streamed words", max_new_tokens=10, stream=True, details=True))
    assert events[-1].generated_text == "echo: streamed words"
    assert events[-1].details is not None
    assert events[-1].details.generated_tokens == 3
    assert events[-1].details.input_length == 2
    assert all(e.details is None for e in events[:-1])


def test_chat_completion(hf: InferenceClient) -> None:
    out = hf.chat_completion([{"role": "user", "content": "hi there"}], max_tokens=10)
    assert out.choices[0].message.content == "echo: hi there"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (2, 3)


def test_chat_completion_stream(hf: InferenceClient) -> None:
    chunks = list(hf.chat_completion([{"role": "user", "content": "hi there"}], max_tokens=10, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hi there"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tgi_generate_and_generate_stream_routes(devserver: DevServer) -> None:
    body = {"inputs": "raw route", "parameters": {"max_new_tokens": 5, "details": True}}
    answer = httpx.post(f"{devserver.url}/generate", json=body).json()
    assert answer["generated_text"] == "echo: raw route"
    assert answer["details"]["generated_tokens"] == 3
    with httpx.stream("POST", f"{devserver.url}/generate_stream", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert len(lines) == 3
    info = httpx.get(f"{devserver.url}/info").json()
    assert info["model_id"] == "echo"
    assert httpx.get(f"{devserver.url}/health").status_code == 200


def test_openai_chat(oai: openai.OpenAI) -> None:
    out = oai.chat.completions.create(model="echo", messages=[{"role": "user", "content": "a b c"}])
    assert out.choices[0].message.content == "echo: a b c"
    assert out.usage is not None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (3, 4)


def test_openai_chat_stream(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "a b c"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: a b c"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_openai_completions(oai: openai.OpenAI) -> None:
    out = oai.completions.create(model="echo", prompt="x y", max_tokens=10)
    assert out.choices[0].text == "echo: x y"
    assert out.usage is not None
    assert out.usage.prompt_tokens == 2
    assert "".join(c.choices[0].text for c in oai.completions.create(model="echo", prompt="x y", stream=True)) == (
        "echo: x y"
    )


def test_openai_models(oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == ["echo"]


def test_fault_admin_route_scripts_the_next_answers(devserver: DevServer) -> None:
    config = {"statuses": [{"status": 503, "retry_after": "1"}]}
    assert httpx.post(f"{devserver.url}/_faults", json=config).status_code == 200
    first = httpx.post(f"{devserver.url}/generate", json={"inputs": "x"})
    second = httpx.post(f"{devserver.url}/generate", json={"inputs": "x"})
    assert (first.status_code, first.headers["retry-after"], first.json()["error_type"]) == (503, "1", "generation")
    assert second.status_code == 200
    assert httpx.get(f"{devserver.url}/_faults").json()["generation_requests"] == 2
