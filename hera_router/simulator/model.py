"""A simulated executor model: reads an agent-loop prompt, writes an agent-loop answer.

Everything it does is a pure function of (world seed, role, prompt[, noise seed]): the prompt is
parsed into request, history and current subtask; the request is parsed back into a task chain;
the history is replayed to find the values the chain holds so far (right or wrong); the current
subtask is carried out with an error probability that grows with difficulty and with position in
the chain; and the next subtask follows the plan from the values just obtained. One seeded
``random.Random`` per call (seeded from a blake2b digest of all of that) makes every draw.

Behaviours the HERA paper observed (its §2) and where they come from here:

* the SLM errs more, more on hard and on deep steps (by hop index, so long requests fail more often
  than short ones): ``RoleBehaviour.error_probability`` and ``RoleBehaviour.depth``;
* it takes more, smaller steps: ``split_*`` (a hop becomes "open the record" + "read it off");
* it words subtasks differently: ``paraphrase`` (same content words, another verb or lead-in);
* it errs more inside a chain it wrote loosely itself than when following a plan-worded history
  (``compounding``): why one SLM step in an LLM chain costs far less than All-SLM suggests;
* after a mistake later subtasks name the wrong entity or number and so embed dissimilarly, and
  ``drift`` adds detours; ``fix`` is the chance per step of noticing and re-checking the first
  wrong step, which is how a chain re-converges (the LLM notices far more often);
* explicit sub-steps from a decomposition (``Sub-step k of m:``) cut the error: ``substep_factor``;
* confidence: the mean token logprob is lower, on average, on wrong steps.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hera_router.agent.format import (
    DecomposePrompt,
    StepPrompt,
    parse_decompose_prompt,
    parse_step_prompt,
    render_decomposition,
    render_step_answer,
)
from hera_router.backends.base import Message
from hera_router.simulator.graph import COMBINE_DIFFICULTY, CombineInstance, GraphInstance
from hera_router.simulator.presets import ModelRole, RoleBehaviour
from hera_router.simulator.tasks import (
    CHECK_PREFIX,
    DECOMPOSED_PREFIX,
    TaskFamily,
    TaskInstance,
    lower_first,
    same_value,
)
from hera_router.simulator.world import World

_Replayed = tuple[tuple[str, ...], int, int]
"""Chain values after a history, with the loose and counted subtask totals."""
ReplyKind = Literal["step", "decompose", "unknown_request", "unparseable"]
UNKNOWN_ANSWER = "unknown"


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    kind: ReplyKind
    correct: bool | None
    """Whether the step's own result is right; ``None`` when the step computes nothing."""
    mean_logprob: float
    jitter: float
    """A seeded draw in [-1, 1] for the latency model."""


class SimulatedModel:
    """One role (``slm`` or ``llm``) in one world.

    Thread-safe: answers depend on the prompt only; the one cache (replayed histories) holds pure
    results, and a race at worst computes an entry twice.
    """

    def __init__(self, world: World, role: ModelRole, behaviour: RoleBehaviour, stream: str | None = None) -> None:
        self.world = world
        self.role: ModelRole = role
        self.behaviour = behaviour
        self.stream = stream or role
        """Names the random stream: a ladder tier with its own behaviour draws its own."""
        self._replays: dict[tuple[str, tuple[tuple[str, str], ...]], _Replayed] = {}

    # --- entry point ------------------------------------------------------------------------------

    def respond(self, messages: list[Message], noise: int | None = None) -> Reply:
        step = parse_step_prompt(messages)
        if step is not None:
            return self._step(step, noise)
        decompose = parse_decompose_prompt(messages)
        if decompose is not None:
            return self._decompose(decompose, noise)
        text = render_step_answer(
            "I cannot parse this prompt: it has neither 'Request:' with 'Current subtask (step N):' "
            "nor 'Subtask to split:'.",
            final_answer=UNKNOWN_ANSWER,
        )
        return Reply(text, "unparseable", None, self.behaviour.logprob_wrong, 0.0)

    def _rng(self, *parts: str) -> random.Random:
        digest = hashlib.blake2b(
            "\x1f".join((str(self.world.seed), self.stream, *parts)).encode("utf-8"), digest_size=8
        ).digest()
        return random.Random(int.from_bytes(digest, "big"))

    # --- a step of the agent loop ---------------------------------------------------------------

    def _step(self, prompt: StepPrompt, noise: int | None) -> Reply:
        b = self.behaviour
        instance = self.world.parse_request(prompt.request)
        if instance is None and (graph := self.world.parse_graph(prompt.request)) is not None:
            return self._graph_step(graph, prompt, noise)
        if instance is None:
            text = render_step_answer(
                "I cannot parse this request: it is not a task I know how to break down.",
                final_answer=UNKNOWN_ANSWER,
            )
            return Reply(text, "unknown_request", None, b.logprob_wrong, 0.0)
        family = self.world.family(instance.family)
        flat_history = [part for pair in prompt.history for part in pair]
        rng = self._rng("step", str(noise), prompt.request, *flat_history, prompt.current, str(prompt.step))
        values, loose = self._replay(family, instance, prompt.history)
        style = 0 if rng.random() >= b.paraphrase else rng.randint(1, 3)
        correct: bool | None = None
        difficulty = 0.3
        next_subtask: str | None = None
        final: str | None = None

        if prompt.current == prompt.request or (prompt.step == 0 and not prompt.history):
            result = family.plan_text(instance, 0 if self.role == "llm" else 1)
            start = instance.start
            if rng.random() < b.misread:
                start, correct = family.misread_start(instance, rng), False
            next_subtask = self._plan_next(family, instance, [start], rng, style)
        else:
            parsed = family.parse_subtask(prompt.current)
            if parsed is None:
                result = "I could not work out what this subtask asks, so I carried on with the plan."
                next_subtask, final = self._next(family, instance, values, rng, style)
            elif parsed.kind == "locate":
                result = family.locate_result_text(instance, parsed.op, parsed.subject)
                next_subtask = family.split_hop_text(instance, parsed.op, parsed.subject)
            elif parsed.kind == "detour":
                result = family.detour_result_text(instance, parsed.subject)
                if rng.random() >= b.reconverge:
                    next_subtask = family.detour_text(instance, values[-1], rng.randint(0, 1))
                else:
                    next_subtask, final = self._next(family, instance, values, rng, style)
            else:
                level = self._level(instance, values, parsed.op, parsed.subject)
                truth = family.apply(parsed.op, parsed.subject)
                difficulty = family.difficulty(parsed.op, parsed.subject)
                # Risk grows with the depth the chain has reached (the history the step carries), not
                # with the share of the chain done: a step cannot know how many hops are still to come.
                position = b.depth(len(values) if level is None else level)
                wrong = truth is None or rng.random() < b.error_probability(
                    difficulty, position, parsed.decomposed, loose
                )
                # A subject the world does not know (truth is None) gets a made-up answer.
                value = (
                    truth
                    if truth is not None and not wrong
                    else family.wrong_value(parsed.op, parsed.subject, truth, rng)
                )
                correct = not wrong
                result_style = 0 if style == 0 else 1 + style % 2
                result = family.result_text(instance, parsed.op, parsed.subject, value, result_style)
                if level is not None:
                    values = [*values[:level], value]
                next_subtask, final = self._next(family, instance, values, rng, style)

        mean = b.logprob_correct if correct is not False else b.logprob_wrong
        mean += b.logprob_difficulty * difficulty + rng.gauss(0.0, b.logprob_noise)
        text = render_step_answer(result, next_subtask=next_subtask, final_answer=final)
        return Reply(text, "step", correct, min(mean, -0.001), rng.uniform(-1.0, 1.0))

    def _graph_step(self, graph: GraphInstance | CombineInstance, prompt: StepPrompt, noise: int | None) -> Reply:
        """A graph request's planning step, or a combining node's one step (simulator/graph.py)."""
        b = self.behaviour
        flat_history = [part for pair in prompt.history for part in pair]
        rng = self._rng("graph", str(noise), prompt.request, *flat_history, prompt.current, str(prompt.step))
        family = self.world.graphs
        correct: bool | None
        if isinstance(graph, GraphInstance):
            # Planning: like a chain's first step, the one thing to get wrong is the start of a part.
            misread = rng.randrange(len(graph.parts)) if rng.random() < b.misread else None
            result, plan = family.plan_answer(graph, misread, rng)
            difficulty, correct = 0.3, misread is None
            text = render_step_answer(result, next_subtask=plan)
        else:
            difficulty = COMBINE_DIFFICULTY[graph.combine]
            wrong = rng.random() < b.error_probability(difficulty, b.depth(1), decomposed=False)
            result, final = family.combine_answer(graph, wrong, rng)
            correct = not wrong
            text = render_step_answer(result, final_answer=final)
        mean = b.logprob_correct if correct else b.logprob_wrong
        mean += b.logprob_difficulty * difficulty + rng.gauss(0.0, b.logprob_noise)
        return Reply(text, "step", correct, min(mean, -0.001), rng.uniform(-1.0, 1.0))

    @staticmethod
    def _position(instance: TaskInstance, level: int) -> float:
        """0 for the first hop of the chain .. 1 for the last (where the SLM splits hops)."""
        return (level - 1) / (instance.hops - 1) if instance.hops > 1 else 1.0

    @staticmethod
    def _level(instance: TaskInstance, values: Sequence[str], op: str, subject: str) -> int | None:
        """Which hop of the chain (1-based) a subtask carries out, given the values held so far.

        A hop whose subject is the value held at that level is that hop (an advance, or a redo of an
        earlier one); otherwise an operation that is next in the plan is taken as the next hop
        whatever its subject (a chain that started from a misread value).
        """
        ops = instance.ops
        progress = len(values) - 1
        for level in range(min(progress + 1, len(ops)), 0, -1):
            if ops[level - 1] == op and same_value(values[level - 1], subject):
                return level
        if progress < len(ops) and ops[progress] == op:
            return progress + 1
        return None

    def _replay(
        self, family: TaskFamily, instance: TaskInstance, history: tuple[tuple[str, str], ...]
    ) -> tuple[list[str], float]:
        """The values the chain holds after the history (``values[j]`` after hop ``j``), and the
        share of its subtasks not worded the plan's way."""
        # An agent loop sends the same history again with one more step each time, so the state
        # after all but the last step is usually known: extend it instead of replaying it all.
        key = (instance.request, history)
        state = self._replays.get(key)
        if state is None:
            if history:
                previous = self._replays.get((instance.request, history[:-1]))
                state = self._extend(
                    family, instance, previous or self._replay_state(family, instance, history[:-1]), history[-1]
                )
            else:
                state = ((instance.start,), 0, 0)
            if len(self._replays) > 50_000:
                self._replays.clear()
            self._replays[key] = state
        values, loose, counted = state
        return list(values), loose / counted if counted else 0.0

    def _replay_state(
        self, family: TaskFamily, instance: TaskInstance, history: tuple[tuple[str, str], ...]
    ) -> _Replayed:
        state: _Replayed = ((instance.start,), 0, 0)
        for item in history:
            state = self._extend(family, instance, state, item)
        return state

    def _extend(self, family: TaskFamily, instance: TaskInstance, state: _Replayed, item: tuple[str, str]) -> _Replayed:
        values, loose, counted = state
        subtask, result = item
        if subtask == instance.request:
            return state
        parsed = family.parse_subtask(subtask)
        # The first half of a split hop is a sub-step, which helps rather than muddles.
        if parsed is None or parsed.kind != "locate":
            counted += 1
            loose += parsed is None or not parsed.plain
        if parsed is not None and parsed.kind == "hop":
            value = family.parse_result_value(result)
            level = self._level(instance, values, parsed.op, parsed.subject)
            if value is not None and level is not None:
                values = (*values[:level], value)
        return values, loose, counted

    def _next(
        self, family: TaskFamily, instance: TaskInstance, values: list[str], rng: random.Random, style: int
    ) -> tuple[str | None, str | None]:
        """(next subtask, final answer): re-check, detour, finish, or the next hop of the plan."""
        b = self.behaviour
        first_wrong = next((j for j in range(1, len(values)) if not same_value(values[j], instance.truth[j])), None)
        if first_wrong is not None:
            draw = rng.random()
            if draw < b.fix:
                redo = family.hop_text(instance, instance.ops[first_wrong - 1], values[first_wrong - 1], 0)
                return CHECK_PREFIX + lower_first(redo), None
            if draw < b.fix + b.drift:
                return family.detour_text(instance, values[-1], rng.randint(0, 1)), None
        if len(values) - 1 >= instance.hops:
            return None, values[instance.hops]
        return self._plan_next(family, instance, values, rng, style), None

    def _plan_next(
        self, family: TaskFamily, instance: TaskInstance, values: list[str], rng: random.Random, style: int
    ) -> str:
        level = len(values)
        op, subject = instance.ops[level - 1], values[level - 1]
        if rng.random() < self.behaviour.split_probability(self._position(instance, level)):
            return family.locate_text(instance, op, subject)
        return family.hop_text(instance, op, subject, style)

    # --- a decomposition prompt -----------------------------------------------------------------

    def _decompose(self, prompt: DecomposePrompt, noise: int | None) -> Reply:
        b = self.behaviour
        rng = self._rng("decompose", str(noise), prompt.request, prompt.subtask, prompt.expected_next or "")
        instance = self.world.parse_request(prompt.request) if prompt.request else None
        steps = [prompt.subtask]
        if instance is not None and prompt.max_parts >= 2:
            family = self.world.family(instance.family)
            parsed = family.parse_subtask(prompt.subtask)
            if parsed is not None and parsed.kind == "hop":
                parts = [
                    family.locate_text(instance, parsed.op, parsed.subject),
                    family.hop_text(instance, parsed.op, parsed.subject, 0),
                ]
                steps = [
                    DECOMPOSED_PREFIX.format(index=i, total=len(parts)) + lower_first(part)
                    for i, part in enumerate(parts, start=1)
                ]
        mean = b.logprob_correct + rng.gauss(0.0, b.logprob_noise)
        return Reply(render_decomposition(steps), "decompose", None, min(mean, -0.001), rng.uniform(-1.0, 1.0))
