"""The graph family: comparisons and aggregations over several independent chains.

A graph request names two to four parts, each an ordinary request of the lookup or arithmetic
family, and how to combine their answers::

    Work out each part on its own, then combine them. (a) Which city is the birthplace of the
    director of the film Crimson Harbor? (b) Which city is the birthplace of the founder of
    Kelholt Pictures? Combine: are (a) and (b) the same city?

The first step plans (``agent/plan.py``): one node per part, plus the combining node that needs
them all. Each part then runs as a chain of its own family, so its SLM/LLM behaviour is exactly
that family's (same error model, splits, paraphrases, drift and re-convergence). The combining
node is a one-step request of its own ("Combine: ... Given: (a) Lornhaven; (b) Ashford."), a
computation over the given answers whose error follows the same ``error_probability`` as any step
(by its difficulty, at the first position: it carries no history), and whose result is only as
right as the answers it was given. The planning step errs like a chain's first step: with the
role's ``misread`` probability the plan restates one part with a misread start (a wrong entity or
number), which that part then carries faithfully to a wrong answer.

Combinations: ``same`` (lookup parts; gold "yes"/"no", half of each), ``sum`` and ``max``
(arithmetic parts over the same items; gold a number).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from hera_router.agent.plan import GIVEN_LABEL, PlanNode, render_plan
from hera_router.simulator.arithmetic import ArithmeticFamily, format_number
from hera_router.simulator.lookup import BY_NAME, LookupFamily
from hera_router.simulator.tasks import TaskInstance, same_value

GRAPH = "graph"
LEAD = "Work out each part on its own, then combine them."
KEYS = ("a", "b", "c", "d")
FINAL_KEY = "final"
COMBINE_DIFFICULTY = {"same": 0.2, "sum": 0.3, "max": 0.35}
_KIND_WORD = {"person": "person", "company": "company", "city": "city", "film": "film"}


def _listing(keys: tuple[str, ...]) -> str:
    marks = [f"({k})" for k in keys]
    return " and ".join(marks) if len(marks) == 2 else ", ".join(marks[:-1]) + " and " + marks[-1]


@dataclass(frozen=True, slots=True)
class GraphInstance:
    request: str
    combine: str
    parts: tuple[TaskInstance, ...]
    combine_text: str
    """The combining node's text (without its ``Given:`` inputs)."""
    metric: str

    @property
    def keys(self) -> tuple[str, ...]:
        return KEYS[: len(self.parts)]

    @property
    def gold(self) -> str:
        return combine_values(self.combine, [p.gold for p in self.parts])

    @property
    def steps(self) -> int:
        """Model steps of the canonical plan: the planning step, every hop, the combining step."""
        return 1 + sum(p.hops for p in self.parts) + 1

    @property
    def critical_steps(self) -> int:
        """Model steps on the critical path: planning, the longest part, combining."""
        return 1 + max(p.hops for p in self.parts) + 1

    def plan(self, parts: list[str] | None = None) -> list[PlanNode]:
        texts = parts if parts is not None else [p.request for p in self.parts]
        nodes = [PlanNode(key, text) for key, text in zip(self.keys, texts, strict=True)]
        return [*nodes, PlanNode(FINAL_KEY, self.combine_text, self.keys)]


@dataclass(frozen=True, slots=True)
class CombineInstance:
    """A combining node's request: the operation and the answers it was given."""

    combine: str
    keys: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def truth(self) -> str:
        return combine_values(self.combine, list(self.values))


def _number(text: str) -> float | None:
    found = re.search(r"-?\d+(?:\.\d+)?", text)
    return float(found.group()) if found else None


def combine_values(combine: str, values: list[str]) -> str:
    if combine == "same":
        return "yes" if len(values) == 2 and same_value(values[0], values[1]) else "no"
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        return "unknown"
    known = [n for n in numbers if n is not None]
    return format_number(sum(known) if combine == "sum" else max(known))


class GraphFamily:
    name = GRAPH

    def __init__(self, lookup: LookupFamily, arithmetic: ArithmeticFamily, max_parts: int = 4) -> None:
        self.lookup, self.arithmetic = lookup, arithmetic
        self.max_parts = max_parts
        self._part = re.compile(r"\(([a-d])\) ")
        self._same = re.compile(r"^Combine: are \(a\) and \(b\) the same (?P<kind>person|company|city|film)\?$")
        self._sum = re.compile(r"^Combine: how many (?P<items>[a-z]+) do (?P<list>.+) make together\?$")
        self._max = re.compile(r"^Combine: which is the largest of (?P<list>.+)\?$")
        self._given = re.compile(r"\((?P<key>[a-d])\) (?P<value>[^;]*?)(?:;|\.$|$)")

    # --- instances ------------------------------------------------------------------------------

    MAX_PLAN_WORDS = 200
    """A plan restates every part; kept well inside a model's default 256-token answer, so that
    no planning step is cut short by the token limit (which would leave no plan to run)."""

    def sample(self, rng: random.Random) -> GraphInstance:
        while True:
            if rng.random() < 0.5:
                instance = self._sample_same(rng)
            else:
                instance = self._sample_numeric(rng, "sum" if rng.random() < 0.5 else "max")
            if len(render_plan(instance.plan()).split()) <= self.MAX_PLAN_WORDS:
                return instance

    def _sample_same(self, rng: random.Random) -> GraphInstance:
        first = self.lookup.sample(rng)
        want_same = rng.random() < 0.5
        last_kind = BY_NAME[first.ops[-1]].range
        for _ in range(2000):
            second = self.lookup.sample(rng)
            if BY_NAME[second.ops[-1]].range != last_kind or second.request == first.request:
                continue
            if same_value(second.gold, first.gold) == want_same:
                break
        text = f"Combine: are (a) and (b) the same {_KIND_WORD[last_kind]}?"
        return self._instance("same", (first, second), text, "entity")

    def _sample_numeric(self, rng: random.Random, combine: str) -> GraphInstance:
        count = rng.randint(2, self.max_parts)
        parts: list[TaskInstance] = []
        items = None
        while len(parts) < count:
            part = self.arithmetic.sample(rng)
            items = items or part.context["items"]
            if part.context["items"] == items and part.request not in {p.request for p in parts}:
                parts.append(part)
        listing = _listing(KEYS[:count])
        text = (
            f"Combine: how many {items} do {listing} make together?"
            if combine == "sum"
            else f"Combine: which is the largest of {listing}?"
        )
        return self._instance(combine, tuple(parts), text, "numeric")

    def _instance(self, combine: str, parts: tuple[TaskInstance, ...], text: str, metric: str) -> GraphInstance:
        body = " ".join(f"({key}) {part.request}" for key, part in zip(KEYS, parts, strict=False))
        return GraphInstance(f"{LEAD} {body} {text}", combine, parts, text, metric)

    # --- parsing --------------------------------------------------------------------------------

    def parse_request(self, text: str) -> GraphInstance | None:
        text = " ".join(text.split())
        if not text.startswith(LEAD + " "):
            return None
        body, sep, combine_tail = text[len(LEAD) + 1 :].partition(" Combine: ")
        if not sep:
            return None
        combine_text = "Combine: " + combine_tail
        pieces = self._part.split(" " + body)
        # split gives ["", key, text, key, text, ...]
        if len(pieces) < 5 or pieces[0].strip():
            return None
        keys = tuple(pieces[1::2])
        requests = [p.strip() for p in pieces[2::2]]
        if keys != KEYS[: len(keys)]:
            return None
        combine = self._combine_of(combine_text)
        family = self.lookup if combine == "same" else self.arithmetic
        parts = [family.parse_request(r) for r in requests]
        if combine is None or any(p is None for p in parts):
            return None
        metric = "entity" if combine == "same" else "numeric"
        return GraphInstance(text, combine, tuple(p for p in parts if p is not None), combine_text, metric)

    def _combine_of(self, text: str) -> str | None:
        if self._same.match(text):
            return "same"
        if self._sum.match(text):
            return "sum"
        if self._max.match(text):
            return "max"
        return None

    def parse_combine(self, text: str) -> CombineInstance | None:
        """A combining node's request (its text, then ``Given: (a) ...; (b) ....``)."""
        text = " ".join(text.split())
        head, sep, given = text.partition(f" {GIVEN_LABEL} ")
        if not sep or not head.startswith("Combine: "):
            return None
        combine = self._combine_of(head)
        if combine is None:
            return None
        pairs = [(m["key"], m["value"].strip()) for m in self._given.finditer(given)]
        if len(pairs) < 2:
            return None
        return CombineInstance(combine, tuple(k for k, _ in pairs), tuple(v for _, v in pairs))

    # --- what models write ----------------------------------------------------------------------

    def plan_answer(self, instance: GraphInstance, misread: int | None, rng: random.Random) -> tuple[str, str]:
        """(result, plan) of the planning step; ``misread`` names the part restated with a wrong start."""
        texts = [p.request for p in instance.parts]
        if misread is not None:
            part = instance.parts[misread]
            texts[misread] = self._misread(part, rng)
        result = f"Plan: {len(texts)} independent parts, then combine them."
        return result, render_plan(instance.plan(texts))

    def _misread(self, part: TaskInstance, rng: random.Random) -> str:
        if part.family == self.lookup.name:
            start = self.lookup.misread_start(part, rng)
            return self.lookup._question_text(start, part.ops)
        name = part.request.split(" ", 1)[0]
        count = max(int(part.truth[0]) + rng.choice((-3, -2, -1, 1, 2, 3)), 1)
        return self.arithmetic._question_text(name, part.context["items"], count, list(part.ops))

    def combine_answer(self, node: CombineInstance, wrong: bool, rng: random.Random) -> tuple[str, str]:
        """(result, final answer) of the combining step."""
        value = node.truth
        if wrong:
            value = self._wrong(node, value, rng)
        shown = ", ".join(f"({k}) {v}" for k, v in zip(node.keys, node.values, strict=True))
        return f"From {shown}: {value}.", value

    @staticmethod
    def _wrong(node: CombineInstance, truth: str, rng: random.Random) -> str:
        if node.combine == "same":
            return "no" if truth == "yes" else "yes"
        number = _number(truth)
        if number is None:
            return truth
        others = [v for v in node.values if not same_value(v, truth)]
        if node.combine == "max" and others:
            return rng.choice(others)
        return format_number(number + rng.choice((-10, -5, -2, -1, 1, 2, 5, 10)))
