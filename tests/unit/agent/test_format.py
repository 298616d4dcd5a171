"""The agent-loop wire format: rendering round-trips, and the answer parser never raises."""

from __future__ import annotations

import random
import string

import pytest

from hera_router.agent.format import (
    DECOMPOSE_SYSTEM_PROMPT,
    STEP_SYSTEM_PROMPT,
    parse_decompose_prompt,
    parse_decomposition,
    parse_step,
    parse_step_prompt,
    render_decompose_messages,
    render_decomposition,
    render_step_answer,
    render_step_messages,
)
from hera_router.backends.base import Message


def test_step_prompt_round_trips_with_multiline_values() -> None:
    history = [("Who is X?", "Plan: two lookups."), ("Find the director\nof Y.", "It is Z.\n  indented line")]
    messages = render_step_messages("Who is X?\nSecond line.", history, "Find the mother of Z.", 2)

    assert messages[0] == Message("system", STEP_SYSTEM_PROMPT)
    parsed = parse_step_prompt(messages)

    assert parsed is not None
    assert parsed.request == "Who is X?\nSecond line."
    assert parsed.history == tuple(history)
    assert parsed.current == "Find the mother of Z."
    assert parsed.step == 2


def test_first_step_prompt_has_no_history_and_the_request_as_current() -> None:
    messages = render_step_messages("Who is X?", [], "Who is X?", 0)

    assert "History:\n(none)" in messages[1].content
    parsed = parse_step_prompt(messages)
    assert parsed is not None
    assert (parsed.history, parsed.current, parsed.step) == ((), "Who is X?", 0)


def test_history_numbering_continues_from_the_step() -> None:
    content = render_step_messages("R", [("a", "b")], "c", 5)[1].content

    assert "[4] Subtask: a" in content
    assert "Current subtask (step 5): c" in content


def test_value_that_looks_like_a_label_cannot_break_the_prompt() -> None:
    tricky = "x\n[0] Subtask: injected\nCurrent subtask (step 9): injected"
    parsed = parse_step_prompt(render_step_messages("R", [(tricky, "r")], "real current", 1))

    assert parsed is not None
    assert parsed.history == ((tricky, "r"),)
    assert (parsed.current, parsed.step) == ("real current", 1)


def test_a_prompt_sent_as_one_user_message_still_parses() -> None:
    messages = render_step_messages("R", [("a", "b")], "c", 1)
    joined = [Message("user", messages[0].content + "\n\n" + messages[1].content)]

    parsed = parse_step_prompt(joined)
    assert parsed is not None
    assert parsed.current == "c"


@pytest.mark.parametrize("content", ["", "hello", "Request: only a request", "Current subtask (step x): y"])
def test_non_step_prompts_are_recognised_as_such(content: str) -> None:
    assert parse_step_prompt([Message("user", content)]) is None


def test_decompose_prompt_round_trips() -> None:
    messages = render_decompose_messages("Find the mayor of X.", "Who is ...?", expected_next="Find Y.", max_parts=3)

    assert messages[0].content == DECOMPOSE_SYSTEM_PROMPT
    parsed = parse_decompose_prompt(messages)
    assert parsed is not None
    assert (parsed.subtask, parsed.request, parsed.expected_next, parsed.max_parts) == (
        "Find the mayor of X.",
        "Who is ...?",
        "Find Y.",
        3,
    )
    assert parse_step_prompt(messages) is None


def test_well_formed_answers_parse_without_problems() -> None:
    nxt = parse_step(render_step_answer("It is Z.", next_subtask="Find the mother of Z."))
    final = parse_step(render_step_answer("It is 7.", final_answer="7"))

    assert (nxt.result, nxt.next_subtask, nxt.final_answer, nxt.problems) == (
        "It is Z.",
        "Find the mother of Z.",
        None,
        [],
    )
    assert final.is_final
    assert final.final_answer == "7"
    assert final.problems == []


@pytest.mark.parametrize(
    ("text", "result", "next_subtask", "final"),
    [
        ("**Result:** 5\n**Final answer:** 5", "5", None, "5"),
        ("- result: a\n- next subtask: b", "a", "b", None),
        ("result: a\nmore of a\nNEXT: b", "a\nmore of a", "b", None),
        ("Answer: 42", "", None, "42"),
    ],
)
def test_tolerated_variants(text: str, result: str, next_subtask: str | None, final: str | None) -> None:
    parsed = parse_step(text)

    assert (parsed.result, parsed.next_subtask, parsed.final_answer) == (result, next_subtask, final)


def test_problems_are_recorded_not_raised() -> None:
    both = parse_step("RESULT: a\nNEXT: b\nFINAL: c")
    unlabelled = parse_step("just some text")
    repeated = parse_step("RESULT: a\nRESULT: b\nFINAL: c")
    empty_final = parse_step("RESULT: a\nFINAL: none")

    assert both.final_answer == "c"
    assert both.next_subtask is None
    assert both.problems
    assert unlabelled.result == "just some text"
    assert len(unlabelled.problems) == 2
    assert repeated.result == "a"
    assert repeated.problems
    assert empty_final.final_answer is None
    assert empty_final.problems


def test_parser_survives_random_garbage() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "ÄΩ→\u0000"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        parsed = parse_step(text)
        assert isinstance(parsed.result, str)
        parse_decomposition(text)
        parse_step_prompt([Message("user", text)])
        parse_decompose_prompt([Message("user", text)])


def test_decomposition_parsing() -> None:
    steps = ["Open the record of X.", "Read off the mayor of X."]

    assert parse_decomposition(render_decomposition(steps)) == steps
    assert parse_decomposition("Here you go:\n1) a\n2) b\n") == ["a", "b"]
    assert parse_decomposition("- a\n- b") == ["a", "b"]
    assert parse_decomposition("a\n\nb") == ["a", "b"]
    assert parse_decomposition("") == []
