"""Multi-hop lookup over a generated knowledge graph of people, films, companies and cities.

Every relation is functional (one value per entity), so every question has exactly one answer:
"Who is the founder of the production company of the film Crimson Harbor?". The graph is a pure
function of the world seed, which is how a simulated model answers questions about a request file
it never saw: it rebuilds the graph from the seed and parses the question back into a chain.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from hera_router.simulator.tasks import (
    ParsedSubtask,
    SubtaskParseCache,
    TaskInstance,
    Template,
    strip_markers,
    words,
)

PERSON, FILM, COMPANY, CITY = "person", "film", "company", "city"


@dataclass(frozen=True, slots=True)
class Relation:
    name: str
    noun: str
    """How questions and subtasks name it: "the {noun} of X"."""
    domain: str
    range: str
    difficulty: float


RELATIONS: tuple[Relation, ...] = (
    Relation("director", "director", FILM, PERSON, 0.15),
    Relation("producer", "production company", FILM, COMPANY, 0.45),
    Relation("lead_actor", "lead actor", FILM, PERSON, 0.3),
    Relation("setting", "setting city", FILM, CITY, 0.6),
    Relation("birthplace", "birthplace", PERSON, CITY, 0.4),
    Relation("mother", "mother", PERSON, PERSON, 0.7),
    Relation("spouse", "spouse", PERSON, PERSON, 0.55),
    Relation("employer", "employer", PERSON, COMPANY, 0.5),
    Relation("founder", "founder", COMPANY, PERSON, 0.3),
    Relation("headquarters", "headquarters city", COMPANY, CITY, 0.25),
    Relation("mayor", "mayor", CITY, PERSON, 0.45),
)
BY_NAME = {r.name: r for r in RELATIONS}
BY_NOUN = {r.noun: r for r in RELATIONS}
_QUESTION_WORD = {PERSON: "Who", COMPANY: "Which company", CITY: "Which city", FILM: "Which film"}
_NOUNS = "|".join(re.escape(n) for n in sorted(BY_NOUN, key=len, reverse=True))

_SIZES = {PERSON: 400, FILM: 150, COMPANY: 80, CITY: 60}
_FIRST = words(
    """
    Mara Ivo Lena Tomas Ada Felix Nora Otto Rhea Silas Vera Hugo Ines Jonas Kira Leon Mina Oskar
    Petra Ruben Saga Theo Una Viktor Wren Yara Anton Bela Cleo Dario Elin Fabian Greta Hanno
    Iris
    """
)
_LAST_A = words(
    """
    Vo Kar Bel Dun Eld Fal Gor Hal Ist Jor Kel Lor Mar Nor Or Pel Quin Rov Sel Tor Ul Var Wen
    """
)
_LAST_B = words(
    """
    ss sk ling ford wick ner holt ton mark berg sen dahl
    """
)
_FILM_A = words(
    """
    Crimson Silent Hollow Golden Broken Distant Electric Frozen Hidden Iron Last Midnight
    Northern Paper Quiet Scarlet Velvet Wild
    """
)
_FILM_B = words(
    """
    Harbor Garden Signal Empire Orchard Lantern River Meridian Tide Circuit Mirror Station
    Voyage Winter Archive Canyon
    """
)
_COMPANY_B = words(
    """
    Pictures Dynamics Holdings Works Labs Studios Industries Media
    """
)
_CITY_A = words(
    """
    Lorn Ash Brin Cal Dor Elm Fen Gal Hart Kes Mel Nor Oak Pen Rav Stan Tarn Wex
    """
)
_CITY_B = words(
    """
    haven ford mouth stad ville bridge port field
    """
)


@dataclass(frozen=True, slots=True)
class KnowledgeGraph:
    types: dict[str, str]
    """Entity name → type."""
    facts: dict[tuple[str, str], str]
    """(entity name, relation name) → entity name."""
    obscurity: dict[str, float]
    """How rarely an entity is mentioned, 0..1: lookups about obscure entities are harder."""
    names: dict[str, str]
    """Casefolded name → name, to resolve mentions written in any case."""

    by_type: dict[str, list[str]]

    def of_type(self, kind: str) -> list[str]:
        return self.by_type.get(kind, [])


def build_graph(seed: int) -> KnowledgeGraph:
    rng = random.Random(f"hera-sim-kg:{seed}")
    taken: set[str] = set()

    def unique(make: str, kind: str) -> str:
        for _ in range(1000):
            name = _make_name(kind, rng)
            if name.casefold() not in taken:
                taken.add(name.casefold())
                return name
        raise RuntimeError(f"name space for {make} exhausted")  # pragma: no cover - sizes are fixed

    entities = {kind: [unique(kind, kind) for _ in range(size)] for kind, size in _SIZES.items()}
    types = {name: kind for kind, names in entities.items() for name in names}
    facts: dict[tuple[str, str], str] = {}
    for relation in RELATIONS:
        for subject in entities[relation.domain]:
            pool = entities[relation.range]
            value = rng.choice(pool)
            while value == subject:
                value = rng.choice(pool)
            facts[(subject, relation.name)] = value
    # Spouse is symmetric in a world readers find plausible.
    for subject in entities[PERSON]:
        partner = facts[(subject, "spouse")]
        facts[(partner, "spouse")] = subject
    obscurity = {name: round(rng.random(), 3) for name in types}
    names = {name.casefold(): name for name in types}
    return KnowledgeGraph(types=types, facts=facts, obscurity=obscurity, names=names, by_type=entities)


def _make_name(kind: str, rng: random.Random) -> str:
    if kind == PERSON:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST_A)}{rng.choice(_LAST_B)}"
    if kind == FILM:
        return f"{rng.choice(_FILM_A)} {rng.choice(_FILM_B)}"
    if kind == COMPANY:
        return f"{rng.choice(_LAST_A)}{rng.choice(_LAST_B)} {rng.choice(_COMPANY_B)}"
    return f"{rng.choice(_CITY_A)}{rng.choice(_CITY_B)}"


class LookupFamily:
    """Multi-hop questions over the knowledge graph, 2–6 hops by default."""

    name = "lookup"
    metric = "entity"

    def __init__(self, graph: KnowledgeGraph, min_hops: int = 2, max_hops: int = 6) -> None:
        self.graph = graph
        self.min_hops, self.max_hops = min_hops, max_hops
        self.parse_subtask = SubtaskParseCache(self._parse_subtask)
        self._values: dict[str, str | None] = {}
        slots = {"rel": _NOUNS, "verb": "find|identify|determine|look up"}
        self._hop = Template("{verb} the {rel} of {subj}.", slots)
        self._locate = Template("Open the record of {subj} and locate the {rel} entry.", slots)
        self._detours = (
            Template("Search for background information about {subj}.", slots),
            Template("Look for other sources that mention {subj}.", slots),
        )
        self._results = (
            Template("The {rel} of {subj} is {val}.", slots),
            Template("{val} is the {rel} of {subj}.", slots),
            Template("I found that the {rel} of {subj} is {val}.", slots),
        )
        self._question = re.compile(r"^(?:who|which company|which city|which film) is (?P<phrase>.+?)\?*$", re.I)
        self._prefix = re.compile(rf"^the (?P<rel>{_NOUNS}) of ", re.IGNORECASE)

    # --- mentions -------------------------------------------------------------------------------

    def mention(self, name: str) -> str:
        return f"the film {name}" if self.graph.types.get(name) == FILM else name

    def resolve(self, mention: str) -> str:
        """The entity a mention names, or the mention itself when the world has no such entity."""
        text = mention.strip().strip("'\"").strip()
        if text.casefold().startswith("the film "):
            text = text[len("the film ") :].strip("'\"")
        return self.graph.names.get(text.casefold(), text)

    # --- instances ------------------------------------------------------------------------------

    def sample(self, rng: random.Random) -> TaskInstance:
        hops = rng.randint(self.min_hops, self.max_hops)
        while True:
            start_type = rng.choice((FILM, FILM, COMPANY, PERSON, CITY))
            start = rng.choice(self.graph.of_type(start_type))
            values: list[str] = [start]
            ops: list[str] = []
            for _ in range(hops):
                options = [
                    r
                    for r in RELATIONS
                    if r.domain == self.graph.types[values[-1]] and not (ops and ops[-1] == r.name == "spouse")
                ]
                relation = rng.choice(options)
                ops.append(relation.name)
                values.append(self.graph.facts[(values[-1], relation.name)])
            # A chain that revisits an entity reads as a trick question; draw another.
            if len(set(values)) == len(values):
                break
        return self._instance(self._question_text(start, ops), tuple(ops), tuple(values))

    def _question_text(self, start: str, ops: list[str] | tuple[str, ...]) -> str:
        phrase = self.mention(start)
        for op in ops:
            phrase = f"the {BY_NAME[op].noun} of {phrase}"
        return f"{_QUESTION_WORD[BY_NAME[ops[-1]].range]} is {phrase}?"

    def _instance(self, request: str, ops: tuple[str, ...], truth: tuple[str, ...]) -> TaskInstance:
        return TaskInstance(family=self.name, request=request, ops=ops, truth=truth, metric=self.metric)

    def parse_request(self, text: str) -> TaskInstance | None:
        found = self._question.match(" ".join(text.split()))
        if not found:
            return None
        phrase, ops = found.group("phrase"), []
        while prefix := self._prefix.match(phrase):
            ops.append(BY_NOUN[prefix.group("rel").lower()].name)
            phrase = phrase[prefix.end() :]
        start = self.resolve(phrase)
        if not ops or start not in self.graph.types:
            return None
        ops.reverse()
        truth = [start]
        for op in ops:
            value = self.graph.facts.get((truth[-1], op))
            if value is None:  # relation does not apply to this entity type: not our question
                return None
            truth.append(value)
        return self._instance(text, tuple(ops), tuple(truth))

    # --- semantics ------------------------------------------------------------------------------

    def apply(self, op: str, subject: str) -> str | None:
        return self.graph.facts.get((subject, op))

    def wrong_value(self, op: str, subject: str, truth: str | None, rng: random.Random) -> str:
        kind = BY_NAME[op].range if op in BY_NAME else PERSON
        # A confusion with a neighbour of the same type (the lead actor for the director) is the
        # error a model really makes; a random entity of the right type is the fallback.
        neighbours = [
            v for r in RELATIONS if r.name != op and r.range == kind and (v := self.graph.facts.get((subject, r.name)))
        ]
        candidates = [v for v in neighbours if truth is None or v != truth]
        if candidates and rng.random() < 0.5:
            return rng.choice(candidates)
        pool = self.graph.of_type(kind)
        while True:
            value = rng.choice(pool)
            if truth is None or value != truth:
                return value

    def misread_start(self, instance: TaskInstance, rng: random.Random) -> str:
        pool = self.graph.of_type(self.graph.types[instance.start])
        while True:
            value = rng.choice(pool)
            if value != instance.start:
                return value

    def difficulty(self, op: str, subject: str) -> float:
        relation = BY_NAME.get(op)
        base = relation.difficulty if relation else 0.8
        return round(0.6 * base + 0.4 * self.graph.obscurity.get(subject, 1.0), 4)

    # --- texts ----------------------------------------------------------------------------------

    def hop_text(self, instance: TaskInstance, op: str, subject: str, style: int) -> str:
        verb = ("Find", "Identify", "Determine", "Look up")[style % 4]
        return self._hop.render(verb=verb, rel=BY_NAME[op].noun, subj=self.mention(subject))

    def locate_text(self, instance: TaskInstance, op: str, subject: str) -> str:
        return self._locate.render(rel=BY_NAME[op].noun, subj=self.mention(subject))

    def split_hop_text(self, instance: TaskInstance, op: str, subject: str) -> str:
        return "From that record, " + self._hop.render(verb="find", rel=BY_NAME[op].noun, subj=self.mention(subject))

    def detour_text(self, instance: TaskInstance, subject: str, style: int) -> str:
        return self._detours[style % 2].render(subj=self.mention(subject))

    def result_text(self, instance: TaskInstance, op: str, subject: str, value: str, style: int) -> str:
        text = self._results[style % 3].render(
            rel=BY_NAME[op].noun, subj=self.mention(subject), val=self.mention(value)
        )
        return text[:1].upper() + text[1:]

    def locate_result_text(self, instance: TaskInstance, op: str, subject: str) -> str:
        return f"The record of {self.mention(subject)} is open; it has an entry for the {BY_NAME[op].noun}."

    def detour_result_text(self, instance: TaskInstance, subject: str) -> str:
        return f"Background on {self.mention(subject)}: nothing that settles the question."

    def plan_text(self, instance: TaskInstance, style: int) -> str:
        if style == 0:
            return f"Plan: {instance.hops} lookups, starting from {self.mention(instance.start)}."
        return "I will work through this one lookup at a time."

    # --- parsing model output -------------------------------------------------------------------

    def _parse_subtask(self, text: str) -> ParsedSubtask | None:
        bare, marks = strip_markers(text)
        if found := self._hop.match(bare):
            plain = not marks.filler and found["verb"].lower() == "find"
            op = BY_NOUN[found["rel"].lower()].name
            return ParsedSubtask("hop", op, self.resolve(found["subj"]), marks.decomposed, marks.check, plain)
        if found := self._locate.match(bare):
            op = BY_NOUN[found["rel"].lower()].name
            return ParsedSubtask("locate", op, self.resolve(found["subj"]), marks.decomposed, marks.check, False)
        for detour in self._detours:
            if found := detour.match(bare):
                return ParsedSubtask("detour", "", self.resolve(found["subj"]), marks.decomposed, marks.check, False)
        return None

    def parse_result_value(self, text: str) -> str | None:
        if text in self._values:
            return self._values[text]
        bare = " ".join(text.split())
        value = None
        for template in self._results:
            if found := template.match(bare):
                value = self.resolve(found["val"])
                break
        if len(self._values) > 100_000:
            self._values.clear()
        self._values[text] = value
        return value
