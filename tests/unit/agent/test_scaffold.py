"""The scaffolded step protocol: a small model's copy task wrapped into agent-loop steps."""

from __future__ import annotations

from hera_router.agent.format import parse_decomposition, parse_step, render_decompose_messages, render_step_messages
from hera_router.agent.scaffold import (
    PLAN_RESULT,
    ScaffoldBackend,
    answer_stem,
    parse_scaffold,
    plan_state,
    sentence_value,
)
from hera_router.backends.base import Generation, GenerationParams, Message, TokenLogprob
from hera_router.simulator.loop import run_request

REQUEST = "\n".join(
    [
        "Answer the question using only these facts.",
        "Facts:",
        "- The director of the film Crimson Harbor is Mara Vo.",
        "- The lead actor of the film Crimson Harbor is Ivo Karsen.",
        "- The birthplace of Mara Vo is Ashford.",
        "- The birthplace of Ivo Karsen is Elmport.",
        "Question: Which city is the birthplace of the director of the film Crimson Harbor?",
        "Plan:",
        "1. Find the director of the film Crimson Harbor.",
        "2. Find the birthplace of [1].",
    ]
)


FIRST = "Find the director of the film Crimson Harbor."


class CopyingModel:
    """Completes a prefilled stem from the fact that starts with it (a perfect small model), or
    with ``wrong`` when given; records what it was asked."""

    name = "copy"
    model = "copy"

    def __init__(self, wrong: str | None = None) -> None:
        self.calls: list[list[Message]] = []
        self.params: list[GenerationParams] = []
        self.wrong = wrong

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        self.calls.append(messages)
        self.params.append(params)
        stem = messages[-1].content
        facts = messages[-2].content.splitlines()
        found = next((line[2:] for line in facts if line.startswith(f"- {stem} ")), f"{stem} nobody.")
        text = f" {self.wrong}." if self.wrong else found[len(stem) :]
        return Generation(
            text=text,
            prompt_tokens=50,
            completion_tokens=3,
            latency_s=0.01,
            finish_reason="stop",
            model="copy",
            backend="copy",
            logprobs=(TokenLogprob(text, -0.2),),
        )


def test_a_scaffolded_request_states_its_facts_question_and_plan() -> None:
    scaffold = parse_scaffold(REQUEST)

    assert scaffold is not None
    assert len(scaffold.facts) == 4
    assert scaffold.question.startswith("Which city is the birthplace")
    assert scaffold.plan == ("Find the director of the film Crimson Harbor.", "Find the birthplace of [1].")
    assert parse_scaffold("Who is the mayor of Melport?") is None


def test_the_answer_stem_and_the_value_of_an_answer_sentence() -> None:
    assert answer_stem("Find the mayor of Melport.") == "The mayor of Melport is"
    assert answer_stem("Sub-step 1 of 2: identify the founder of Brask Works") == "The founder of Brask Works is"
    assert sentence_value("The director of the film Crimson Harbor is Mara Vo.") == "Mara Vo"
    assert sentence_value("Mara Vo") == "Mara Vo"


def test_the_plan_state_follows_the_history_answers() -> None:
    scaffold = parse_scaffold(REQUEST)
    assert scaffold is not None
    history = (
        (REQUEST, PLAN_RESULT),
        ("Find the director of the film Crimson Harbor.", "The director of the film Crimson Harbor is Ivo Karsen."),
    )

    assert plan_state(scaffold, history) == {1: "Ivo Karsen"}


def test_a_whole_request_runs_through_the_agent_loop_to_the_right_answer() -> None:
    model = CopyingModel()
    backend = ScaffoldBackend(model)

    trace = run_request(REQUEST, {"slm": backend, "llm": backend}, lambda _step, _current: "slm")

    assert trace.finished
    assert trace.final_answer == "Ashford"
    assert [s.subtask for s in trace.steps] == [
        REQUEST,
        "Find the director of the film Crimson Harbor.",
        "Find the birthplace of Mara Vo.",
    ]
    assert all(not s.problems for s in trace.steps)
    # Step 0 needs no model; each later step is one call with the stem prefilled and a short answer.
    assert len(model.calls) == 2
    assert model.calls[1][-1] == Message("assistant", "The birthplace of Mara Vo is")
    assert all(p.max_new_tokens <= 16 and p.stop == ("\n",) for p in model.params)


def test_a_wrong_value_is_carried_into_the_next_subtask() -> None:
    backend = ScaffoldBackend(CopyingModel(wrong="Ivo Karsen"))
    messages = render_step_messages(REQUEST, [(REQUEST, PLAN_RESULT)], FIRST, 1)

    answer = parse_step(backend.generate(messages, GenerationParams(logprobs=True)).text)

    assert answer.result == "The director of the film Crimson Harbor is Ivo Karsen."
    assert answer.next_subtask == "Find the birthplace of Ivo Karsen."


def test_step_zero_and_decomposition_make_no_model_call() -> None:
    model = CopyingModel()
    backend = ScaffoldBackend(model)

    first = backend.generate(render_step_messages(REQUEST, [], REQUEST, 0), GenerationParams(logprobs=True))
    split = backend.generate(render_decompose_messages("Find the birthplace of Mara Vo.", REQUEST), GenerationParams())

    assert parse_step(first.text).next_subtask == "Find the director of the film Crimson Harbor."
    assert first.logprobs is not None
    assert first.logprobs[0].logprob == 0.0
    assert parse_decomposition(split.text) == ["Find the birthplace of Mara Vo."]
    assert model.calls == []


def test_requests_that_are_not_scaffolded_pass_through_unchanged() -> None:
    model = CopyingModel()
    messages = render_step_messages("Who is the mayor of Melport?", [], "Who is the mayor of Melport?", 0)

    ScaffoldBackend(model).generate(messages, GenerationParams())

    assert model.calls == [messages]


def test_the_cache_answers_a_repeated_greedy_question_once() -> None:
    model = CopyingModel()
    backend = ScaffoldBackend(model, cache=True)
    messages = render_step_messages(REQUEST, [(REQUEST, PLAN_RESULT)], FIRST, 1)

    first = backend.generate(messages, GenerationParams())
    second = backend.generate(messages, GenerationParams())
    sampled = backend.generate(messages, GenerationParams(temperature=0.7, seed=1))

    assert len(model.calls) == 2  # the sampled call is never cached
    assert second.text == first.text
    assert second.extra.get("cached") == "1"
    assert "cached" not in first.extra
    assert "cached" not in sampled.extra
