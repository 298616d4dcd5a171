"""SimBackend as a ModelBackend: tokens, latency, logprobs, truncation, stops, presets."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.backends.base import GenerationParams, Message, ModelBackend
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate_tasks
from hera_router.simulator.loop import Executor
from hera_router.simulator.presets import PresetError, load_behaviour, preset_names
from hera_router.simulator.world import World


@pytest.fixture(scope="module")
def prompt(world: World) -> list[Message]:
    task = generate_tasks(world, "lookup", 1)[0]
    return render_step_messages(task.request, [(task.request, "Plan.")], task.plan[0], 1)


def test_implements_the_protocol(backends: dict[Executor, SimBackend]) -> None:
    for backend in backends.values():
        assert isinstance(backend, ModelBackend)
        assert backend.name == "sim"


def test_generation_reports_tokens_latency_and_confidence(
    backends: dict[Executor, SimBackend], prompt: list[Message]
) -> None:
    generation = backends["llm"].generate(prompt, GenerationParams())

    assert generation.prompt_tokens == sum(len(m.content.split()) for m in prompt)
    assert generation.completion_tokens == len(generation.text.split())
    assert generation.finish_reason == "stop"
    assert generation.model == "sim-llm"
    assert generation.backend == "sim"
    assert generation.latency_s > 0.3  # the LLM's first-token time alone is 0.6 s in the default preset
    assert float(generation.extra["mean_logprob"]) < 0
    assert generation.logprobs is None


def test_the_slm_reports_itself_faster_than_the_llm(
    backends: dict[Executor, SimBackend], prompt: list[Message]
) -> None:
    slm = backends["slm"].generate(prompt, GenerationParams())
    llm = backends["llm"].generate(prompt, GenerationParams())

    assert slm.latency_s < llm.latency_s


def test_reported_latency_is_not_slept(backends: dict[Executor, SimBackend], prompt: list[Message]) -> None:
    started = time.perf_counter()
    for _ in range(200):
        backends["llm"].generate(prompt, GenerationParams())
    assert time.perf_counter() - started < 1.0


def test_realtime_sleeps_for_the_scaled_latency(prompt: list[Message]) -> None:
    backend = SimBackend("slm", "sim-slm", realtime=True, time_scale=0.01)
    started = time.perf_counter()
    generation = backend.generate(prompt, GenerationParams())

    assert time.perf_counter() - started >= generation.latency_s * 0.01 * 0.9


def test_token_logprobs_concatenate_to_the_text(backends: dict[Executor, SimBackend], prompt: list[Message]) -> None:
    generation = backends["slm"].generate(prompt, GenerationParams(logprobs=True))

    assert generation.logprobs is not None
    assert "".join(t.token for t in generation.logprobs) == generation.text
    assert all(t.logprob <= 0 for t in generation.logprobs)
    assert len(generation.logprobs) == generation.completion_tokens


def test_max_new_tokens_truncates_on_words(backends: dict[Executor, SimBackend], prompt: list[Message]) -> None:
    generation = backends["llm"].generate(prompt, GenerationParams(max_new_tokens=3))

    assert generation.finish_reason == "length"
    assert generation.completion_tokens == 3
    assert generation.text == " ".join(backends["llm"].generate(prompt, GenerationParams()).text.split()[:3])


def test_stop_sequences_cut_the_answer(backends: dict[Executor, SimBackend], prompt: list[Message]) -> None:
    generation = backends["llm"].generate(prompt, GenerationParams(stop=("\nNEXT:",)))

    assert "NEXT:" not in generation.text
    assert parse_step(generation.text).result


def test_presets_and_config_files(tmp_path: Path) -> None:
    assert {"default", "perfect", "strong-slm", "weak-slm"} <= set(preset_names())
    assert load_behaviour("strong-slm").slm.error_per_difficulty < load_behaviour().slm.error_per_difficulty

    config = tmp_path / "world.toml"
    config.write_text("[default.slm]\nerror_base = 0.5\n[mine.llm]\nfix = 0.9\n", encoding="utf-8")
    assert load_behaviour("default", config).slm.error_base == 0.5
    mine = load_behaviour("mine", config)
    assert (mine.llm.fix, mine.slm.error_base) == (0.9, 0.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[default.slm]\nerror_base = 2.0\n", "slm.error_base"),
        ("[default.slm]\ntypo = 1\n", "slm.typo"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_config_is_a_readable_error(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "world.toml"
    config.write_text(content, encoding="utf-8")

    with pytest.raises(PresetError, match=message.replace("[", r"\[")):
        load_behaviour("default", config)


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(PresetError, match="known presets: default"):
        load_behaviour("nope")
    with pytest.raises(ValueError, match="role must be"):
        SimBackend("xl", "m")  # type: ignore[arg-type]


def test_examples_world_config_loads() -> None:
    path = Path(__file__).parents[3] / "examples" / "world.toml"
    behaviour = load_behaviour("default", path)
    assert behaviour.slm.error_base >= 0
