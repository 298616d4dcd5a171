"""The scaffolded step protocol: how a small model carries out one agent step it could not plan.

A 135M instruction model cannot follow the agent-loop format (``agent/format.py``): asked to
write ``RESULT:``/``NEXT:`` lines it rambles. But it can copy a value out of a list of facts when
the question is short and the answer's first words are written for it. So for a request that
carries its own facts and numbered plan (a *scaffolded request*: ``Facts:`` lines, ``Question:``,
``Plan:`` lines whose later entries refer to earlier answers as ``[k]``), :class:`ScaffoldBackend`
turns each step prompt into that small task and the small answer back into a step answer:

* step 0 (the request itself) needs no model: its result is "following the given plan" and its
  next subtask is plan line 1. It is answered without a call, with a logprob of 0 (certain);
* any other subtask is asked as a one-shot question over the request's facts, with the answer
  sentence's stem prefilled (``Find the mayor of Melport.`` → ``The mayor of Melport is``) and
  generation stopped at the end of the sentence. The result is the completed sentence; the next
  subtask is the plan's next line with ``[k]`` replaced by the answers so far, or, after the last
  line, the final answer is the value just found;
* a decomposition prompt is answered with the subtask as its one part (a small model does not
  split steps; the SD branch then runs the step as it is).

The model's token logprobs are those of the answer it wrote (the prefilled stem is not scored).
Which plan line a subtask carries out is found by rendering the plan with the answers in the
history: a subtask that matches no line (another model's paraphrase, a sub-step) is still asked,
and the plan continues from the first line not yet done. Requests that are not scaffolded pass
through to the wrapped backend unchanged, in the agent-loop format.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, replace

from hera_router.agent.format import (
    StepPrompt,
    parse_decompose_prompt,
    parse_step_prompt,
    render_decomposition,
    render_step_answer,
)
from hera_router.backends.base import Generation, GenerationParams, Message, ModelBackend, TokenLogprob

SYSTEM_PROMPT = "Answer the subtask with one sentence, copying the exact name from the facts."
EXAMPLE_USER = (
    "Subtask: Find the mayor of Vessby.\nFacts:\n- The capital of Norland is Vessby.\n"
    "- The mayor of Vessby is Ola Brandt.\n"
    "- The mayor of Kelport is Ines Varro.\n- The founder of Brask Works is Tove Lind.\n"
    "Subtask: Find the mayor of Vessby."
)
EXAMPLE_ANSWER = "The mayor of Vessby is Ola Brandt."
PLAN_RESULT = "Following the given plan."
MAX_ANSWER_TOKENS = 16

_FACT_LINE = re.compile(r"^\s*-\s+(?P<fact>.+?)\s*$")
_PLAN_LINE = re.compile(r"^\s*(?P<index>\d+)[.)]\s+(?P<line>.+?)\s*$")
_REFERENCE = re.compile(r"\[(\d+)\]")
_LEAD_VERB = re.compile(r"^(?:find|identify|determine|look up|what is|name)\s+", re.IGNORECASE)
_PREFIXES = re.compile(r"^(?:(?:sub-?step \d+ of \d+|double-check)\s*[:.,-]\s*)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Scaffold:
    """What a scaffolded request states."""

    facts: tuple[str, ...]
    question: str
    plan: tuple[str, ...]


def parse_scaffold(request: str) -> Scaffold | None:
    """The facts, question and plan of a scaffolded request; ``None`` for any other request."""
    section = ""
    facts: list[str] = []
    plan: list[str] = []
    question = ""
    for line in request.splitlines():
        stripped = line.strip()
        if stripped in ("Facts:", "Plan:"):
            section = stripped
        elif stripped.startswith("Question:"):
            section, question = "Question:", stripped[len("Question:") :].strip()
        elif section == "Facts:" and (fact := _FACT_LINE.match(line)):
            facts.append(fact.group("fact"))
        elif section == "Plan:" and (step := _PLAN_LINE.match(line)):
            plan.append(step.group("line"))
    if not facts or not plan:
        return None
    return Scaffold(tuple(facts), question, tuple(plan))


def answer_stem(subtask: str) -> str:
    """The opening of the answer sentence: ``Find the mayor of Melport.`` → ``The mayor of Melport is``."""
    bare = _LEAD_VERB.sub("", _PREFIXES.sub("", " ".join(subtask.split()))).rstrip(" .?!")
    if not bare:
        return "The answer is"
    return f"{bare[:1].upper()}{bare[1:]} is"


def sentence_value(sentence: str) -> str:
    """The value an answer sentence states: what follows its last `` is ``."""
    text = " ".join(sentence.split()).rstrip(" .")
    head, found, value = text.rpartition(" is ")
    return (value if found and head else text).strip().strip("\"'")


def _render(line: str, answers: dict[int, str]) -> str | None:
    """Plan ``line`` with ``[k]`` replaced by answer k; ``None`` while an answer it needs is missing."""
    needed = [int(k) for k in _REFERENCE.findall(line)]
    if any(k not in answers for k in needed):
        return None
    return _REFERENCE.sub(lambda m: answers[int(m.group(1))], line)


def _same(a: str, b: str) -> bool:
    def norm(text: str) -> str:
        return " ".join(_PREFIXES.sub("", text).split()).rstrip(" .").casefold()

    return norm(a) == norm(b)


def plan_state(scaffold: Scaffold, history: tuple[tuple[str, str], ...]) -> dict[int, str]:
    """Answers so far by plan line (1-based): each history subtask matched to the first line not yet
    answered whose rendering it equals; a later answer to the same line replaces the earlier one."""
    answers: dict[int, str] = {}
    for subtask, result in history:
        for index, line in enumerate(scaffold.plan, start=1):
            rendered = _render(line, answers)
            if rendered is not None and _same(subtask, rendered):
                answers[index] = sentence_value(result)
                break
    return answers


def _line_of(scaffold: Scaffold, answers: dict[int, str], subtask: str) -> int | None:
    for index, line in enumerate(scaffold.plan, start=1):
        rendered = _render(line, answers)
        if rendered is not None and _same(subtask, rendered):
            return index
    return None


def question_messages(scaffold: Scaffold, subtask: str) -> list[Message]:
    """The small model's prompt: one worked example, then the subtask before and after the facts (a
    small model loses a question asked only before a long context), and the prefilled stem."""
    facts = "\n".join(f"- {fact}" for fact in scaffold.facts)
    clean = " ".join(_PREFIXES.sub("", subtask).split())
    return [
        Message("system", SYSTEM_PROMPT),
        Message("user", EXAMPLE_USER),
        Message("assistant", EXAMPLE_ANSWER),
        Message("user", f"Subtask: {clean}\nFacts:\n{facts}\nSubtask: {clean}"),
        Message("assistant", answer_stem(clean)),
    ]


def _completion_value(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.split(". ")[0].strip().rstrip(".").strip().strip("\"'")


class ScaffoldBackend:
    """A :class:`ModelBackend` that runs scaffolded requests' steps as small copy tasks (module docstring).

    ``cache=True`` keeps greedy answers by prompt: the small prompt depends only on the facts and the
    subtask, so a profiling tree or a policy comparison asks the same question many times. A cached
    answer is marked ``extra["cached"] = "1"`` and reports the latency of the call that made it.
    """

    def __init__(self, inner: ModelBackend, *, cache: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self._cache: dict[tuple[tuple[Message, ...], int, bool], Generation] | None = {} if cache else None
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str) -> object:
        # probe(), close() and the like belong to the wrapped client.
        return getattr(self.inner, attribute)

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        step = parse_step_prompt(messages)
        scaffold = parse_scaffold(step.request) if step is not None else None
        if step is not None and scaffold is not None:
            return self._step(step, scaffold, params)
        split = parse_decompose_prompt(messages) if step is None else None
        if split is not None and parse_scaffold(split.request) is not None:
            return self._without_call(render_decomposition([split.subtask]))
        return self.inner.generate(messages, params)

    def _step(self, step: StepPrompt, scaffold: Scaffold, params: GenerationParams) -> Generation:
        answers = plan_state(scaffold, step.history)
        if step.current == step.request or (step.step == 0 and not step.history):
            return self._without_call(render_step_answer(PLAN_RESULT, next_subtask=scaffold.plan[0]))
        line = _line_of(scaffold, answers, step.current)
        generation = self._ask(question_messages(scaffold, step.current), params)
        value = _completion_value(generation.text)
        result = f"{answer_stem(step.current)} {value}."
        done = (
            line
            if line is not None
            else next((i for i in range(1, len(scaffold.plan) + 1) if i not in answers), len(scaffold.plan))
        )
        answers = {**answers, done: value}
        following = next((i for i in range(done + 1, len(scaffold.plan) + 1) if i not in answers), None)
        if following is None:
            text = render_step_answer(result, final_answer=value)
        else:
            text = render_step_answer(result, next_subtask=_render(scaffold.plan[following - 1], answers) or value)
        extra = {**generation.extra, "protocol": "scaffold", "scaffold_value": value}
        return replace(generation, text=text, extra=extra)

    def _ask(self, messages: list[Message], params: GenerationParams) -> Generation:
        small = replace(params, max_new_tokens=min(params.max_new_tokens, MAX_ANSWER_TOKENS), stop=("\n",))
        key = (tuple(messages), small.max_new_tokens, small.logprobs)
        cacheable = self._cache is not None and small.temperature == 0
        if cacheable and self._cache is not None:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None:
                return replace(hit, extra={**hit.extra, "cached": "1"})
        generation = self.inner.generate(messages, small)
        if cacheable and self._cache is not None:
            with self._lock:
                self._cache[key] = generation
        return generation

    def _without_call(self, text: str) -> Generation:
        started = time.perf_counter()
        return Generation(
            text=text,
            prompt_tokens=0,
            completion_tokens=0,
            latency_s=time.perf_counter() - started,
            finish_reason="stop",
            model=self.model,
            backend=self.name,
            logprobs=(TokenLogprob(token="", logprob=0.0),),
            extra={"protocol": "scaffold", "model_call": "0"},
        )
