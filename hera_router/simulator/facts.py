"""Grounded lookups: multi-hop questions whose facts, and a plan, are written into the request.

The ``lookup`` family asks about a knowledge graph that only the simulator knows, so no real model
can answer it. ``facts`` asks the same kind of question over the same graph, but the request
carries everything needed to answer it: the facts of the chain mixed with distractors (other
relations of the same entities, the same relation of other entities), and a numbered plan whose
later lines refer to earlier answers as ``[k]``::

    Answer the question using only these facts.
    Facts:
    - The director of the film Crimson Harbor is Mara Vo.
    - The lead actor of the film Crimson Harbor is Ivo Karsen.
    - The birthplace of Mara Vo is Ashford.
    Question: Which city is the birthplace of the director of the film Crimson Harbor?
    Plan:
    1. Find the director of the film Crimson Harbor.
    2. Find the birthplace of [1].

A real small model can carry out one plan line at a time by copying from the facts (the scaffolded
step protocol, ``agent/scaffold.py``); a simulated model answers it like a lookup (it knows the
graph, which agrees with the stated facts). The answer is checked exactly (the entity metric).
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from hera_router.simulator.lookup import BY_NAME, RELATIONS, KnowledgeGraph, LookupFamily
from hera_router.simulator.tasks import TaskInstance

INSTRUCTION = "Answer the question using only these facts."
FACTS_LABEL = "Facts:"
QUESTION_LABEL = "Question:"
PLAN_LABEL = "Plan:"
_QUESTION_LINE = re.compile(r"^Question:\s*(?P<question>.+?)\s*$", re.MULTILINE)


class FactsFamily(LookupFamily):
    """Lookups over the world's graph with the chain's facts and a plan stated in the request."""

    name = "facts"

    def __init__(self, graph: KnowledgeGraph, min_hops: int = 2, max_hops: int = 3, distractors: int = 6) -> None:
        super().__init__(graph, min_hops, max_hops)
        self.distractors = distractors

    # --- instances ------------------------------------------------------------------------------

    def sample(self, rng: random.Random) -> TaskInstance:
        chain = super().sample(rng)
        facts = [self.fact_text(chain.truth[j], op) for j, op in enumerate(chain.ops)]
        facts += self._distractors(chain, rng)
        rng.shuffle(facts)
        return replace(chain, family=self.name, request=self.request_text(chain, facts))

    def _distractors(self, chain: TaskInstance, rng: random.Random) -> list[str]:
        """Facts that look like the answer and are not: the subject's other relations (the
        confusion a reader makes) and the same relation of other entities of the subject's type."""
        chain_facts = list(zip(chain.truth[:-1], chain.ops, strict=True))
        wanted = set(chain_facts)
        same_subject = [
            (subject, r.name)
            for subject in chain.truth[:-1]
            for r in RELATIONS
            if r.domain == self.graph.types[subject] and (subject, r.name) not in wanted
        ]
        same_relation = [
            (other, op)
            for subject, op in chain_facts
            for other in rng.sample(self.graph.of_type(self.graph.types[subject]), 3)
            if other != subject
        ]
        rng.shuffle(same_subject)
        half = (self.distractors + 1) // 2
        picked = same_subject[:half] + same_relation[: self.distractors - min(half, len(same_subject))]
        return [self.fact_text(subject, op) for subject, op in dict.fromkeys(picked)]

    def fact_text(self, subject: str, op: str) -> str:
        value = self.graph.facts[(subject, op)]
        return f"The {BY_NAME[op].noun} of {self.mention(subject)} is {self.mention(value)}."

    def plan_lines(self, chain: TaskInstance) -> list[str]:
        """The plan as the request states it: line 1 names the start, line k+1 refers to ``[k]``."""
        first = self.hop_text(chain, chain.ops[0], chain.start, 0)
        later = [f"Find the {BY_NAME[op].noun} of [{k}]." for k, op in enumerate(chain.ops[1:], start=1)]
        return [first, *later]

    def request_text(self, chain: TaskInstance, facts: list[str]) -> str:
        lines = [INSTRUCTION, FACTS_LABEL, *(f"- {fact}" for fact in facts)]
        lines.append(f"{QUESTION_LABEL} {self._question_text(chain.start, chain.ops)}")
        lines.append(PLAN_LABEL)
        lines += [f"{k}. {line}" for k, line in enumerate(self.plan_lines(chain), start=1)]
        return "\n".join(lines)

    def parse_request(self, text: str) -> TaskInstance | None:
        if not text.startswith(INSTRUCTION):
            return None
        found = _QUESTION_LINE.search(text)
        chain = super().parse_request(found.group("question")) if found else None
        return replace(chain, family=self.name, request=text) if chain is not None else None

    # --- texts ----------------------------------------------------------------------------------

    def hop_text(self, instance: TaskInstance, op: str, subject: str, style: int) -> str:
        # The plan fixes the wording: every model asks the plan's line with the value filled in.
        return super().hop_text(instance, op, subject, 0)

    def result_text(self, instance: TaskInstance, op: str, subject: str, value: str, style: int) -> str:
        return super().result_text(instance, op, subject, value, 0)

    def plan_text(self, instance: TaskInstance, style: int) -> str:
        return f"Following the given plan: {instance.hops} steps."
