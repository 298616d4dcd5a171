"""Simulated model behaviour: determinism, malformed prompts, divergence, sub-steps, confidence."""

from __future__ import annotations

import random
import string

import pytest

from hera_router.agent.format import (
    parse_decomposition,
    parse_step,
    render_decompose_messages,
    render_step_messages,
)
from hera_router.agent.scoring import score
from hera_router.backends.base import GenerationParams, Message
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate, generate_tasks
from hera_router.simulator.loop import Chooser, Executor, run_request
from hera_router.simulator.world import World

PARAMS = GenerationParams()


def _all(executor: Executor) -> Chooser:
    def choose(_step: int, _current: str) -> Executor:
        return executor

    return choose


def test_replaying_a_prompt_gives_the_same_text(backends: dict[Executor, SimBackend], world: World) -> None:
    task = generate_tasks(world, "lookup", 1)[0]
    messages = render_step_messages(task.request, [], task.request, 0)

    for backend in backends.values():
        assert backend.generate(messages, PARAMS) == backend.generate(messages, PARAMS)
        assert SimBackend(backend.role, "other-name").generate(messages, PARAMS).text == (
            backend.generate(messages, PARAMS).text
        )


def test_same_seed_same_traces_different_seed_different() -> None:
    tasks_a, tasks_b = generate("mixed", 30, seed=0), generate("mixed", 30, seed=1)
    roles: tuple[Executor, ...] = ("slm", "llm")
    a = {e: SimBackend(e, e) for e in roles}
    a2 = {e: SimBackend(e, e) for e in roles}
    b = {e: SimBackend(e, e, seed=1) for e in roles}

    traces_a = [run_request(t.request, a, _all("slm")) for t in tasks_a]
    traces_a2 = [run_request(t.request, a2, _all("slm")) for t in tasks_a]
    traces_b = [run_request(t.request, b, _all("slm")) for t in tasks_b]

    assert traces_a == traces_a2
    assert [t.steps for t in traces_a] != [t.steps for t in traces_b]


def test_sampling_noise_is_seeded(backends: dict[Executor, SimBackend], world: World) -> None:
    slm = backends["slm"]
    tasks = generate_tasks(world, "arithmetic", 40)
    texts = {
        seed: [
            slm.generate(
                render_step_messages(t.request, [], t.request, 0), GenerationParams(temperature=0.7, seed=seed)
            ).text
            for t in tasks
        ]
        for seed in (1, 2)
    }
    again = [
        slm.generate(render_step_messages(t.request, [], t.request, 0), GenerationParams(temperature=0.7, seed=1)).text
        for t in tasks
    ]

    assert texts[1] == again
    assert texts[1] != texts[2]


def test_perfect_models_answer_every_request(perfect: dict[Executor, SimBackend], world: World) -> None:
    for task in generate_tasks(world, "mixed", 60):
        for executor in perfect:
            trace = run_request(task.request, perfect, _all(executor))
            assert score(task.metric, trace.final_answer, task.gold) == 1.0
            assert trace.subtasks == task.plan
            assert all(not step.problems for step in trace.steps)


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [Message("user", "")],
        [Message("user", "hello there")],
        [Message("system", "You are helpful."), Message("user", "What is 2+2?")],
        [Message("user", "Current subtask (step 3): find it")],
    ],
)
def test_malformed_prompts_get_a_well_formed_cannot_parse_answer(
    backends: dict[Executor, SimBackend], messages: list[Message]
) -> None:
    for backend in backends.values():
        generation = backend.generate(messages, PARAMS)
        parsed = parse_step(generation.text)
        assert parsed.problems == []
        assert "cannot parse" in parsed.result
        assert parsed.final_answer == "unknown"


def test_unknown_request_gets_a_well_formed_answer(backends: dict[Executor, SimBackend]) -> None:
    messages = render_step_messages("Write me a poem about Paris.", [], "Write me a poem about Paris.", 0)

    parsed = parse_step(backends["llm"].generate(messages, PARAMS).text)
    assert parsed.problems == []
    assert parsed.final_answer == "unknown"


def test_fuzzed_prompts_never_raise(backends: dict[Executor, SimBackend], world: World) -> None:
    rng = random.Random(3)
    tasks = generate_tasks(world, "mixed", 10)
    for _ in range(300):
        task = rng.choice(tasks)
        garbage = "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 80)))
        history = [(garbage, garbage)] if rng.random() < 0.5 else [(task.plan[0], garbage)]
        current = rng.choice([garbage, task.plan[-1], "Sub-step 9 of 2: " + garbage, "Double-check: " + garbage])
        for backend in backends.values():
            parsed = parse_step(backend.generate(render_step_messages(task.request, history, current, 3), PARAMS).text)
            assert parsed.problems == []
            decomposition = backend.generate(render_decompose_messages(current, task.request), PARAMS)
            assert parse_decomposition(decomposition.text)


def test_slm_splits_paraphrases_and_diverges_llm_follows_the_plan(
    backends: dict[Executor, SimBackend], world: World
) -> None:
    tasks = generate_tasks(world, "mixed", 150)
    llm = [run_request(t.request, backends, _all("llm")) for t in tasks]
    slm = [run_request(t.request, backends, _all("slm")) for t in tasks]
    plans = {t.request: t.plan for t in tasks}

    llm_on_plan = sum(tr.subtasks == plans[tr.request] for tr in llm)
    assert llm_on_plan > 0.8 * len(tasks)
    slm_text = "\n".join(s for tr in slm for s in tr.subtasks)
    assert "Open the record of" in slm_text or "Write down the current count" in slm_text  # splits
    assert "Identify the" in slm_text or "Now " in slm_text  # paraphrases
    assert "Search for background" in slm_text or "Re-read the question" in slm_text  # detours
    assert "Double-check:" in slm_text  # occasional re-convergence


def test_explicit_sub_steps_cut_the_slm_error_rate(backends: dict[Executor, SimBackend], world: World) -> None:
    tasks = generate_tasks(world, "mixed", 200)
    plain = sum(score(t.metric, run_request(t.request, backends, _all("slm")).final_answer, t.gold) for t in tasks)
    decomposed = sum(
        score(
            t.metric, run_request(t.request, backends, _all("slm"), decompose=lambda _s, _c: True).final_answer, t.gold
        )
        for t in tasks
    )

    assert decomposed > plain * 1.1


def test_decomposition_answers_two_explicit_sub_steps(backends: dict[Executor, SimBackend], world: World) -> None:
    task = generate_tasks(world, "lookup", 1)[0]
    answer = backends["slm"].generate(render_decompose_messages(task.plan[0], task.request, task.plan[1]), PARAMS)

    steps = parse_decomposition(answer.text)
    assert len(steps) == 2
    assert steps[0].startswith("Sub-step 1 of 2:")
    assert steps[1].startswith("Sub-step 2 of 2:")


def test_confidence_is_lower_on_wrong_steps(backends: dict[Executor, SimBackend], world: World) -> None:
    slm = backends["slm"].simulated
    right: list[float] = []
    wrong: list[float] = []
    for task in generate_tasks(world, "mixed", 200):
        trace = run_request(task.request, backends, _all("llm"))
        history: list[tuple[str, str]] = []
        for step in trace.steps:
            reply = slm.respond(render_step_messages(task.request, history, step.subtask, step.step))
            if reply.correct is not None:
                (right if reply.correct else wrong).append(reply.mean_logprob)
            history.append((step.subtask, step.result))

    assert len(wrong) > 20
    assert sum(wrong) / len(wrong) < sum(right) / len(right) - 0.2
