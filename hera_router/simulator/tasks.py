"""What every task family provides: instances with a canonical plan, and the texts models write.

A task is a chain: a start value and ``h`` operations, each applied to the previous value (a
relation followed in a knowledge graph, or an arithmetic operation). The canonical plan is one
subtask per operation; ground truth is the chain of true values. Because every subtask names its
operation and the value it starts from ("Find the director of the film Crimson Harbor."), a
simulated model can tell from the prompt alone where a chain stands and whether it went wrong,
which is what keeps the simulator a pure function of its prompt.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

SubtaskKind = Literal["hop", "locate", "detour"]
"""``hop`` carries out one operation of the chain; ``locate`` is the first half of a hop the model
chose (or was told) to split; ``detour`` is a step off the plan that makes no progress."""


@dataclass(frozen=True, slots=True)
class TaskInstance:
    """One request with its ground truth. ``truth[j]`` is the true value after ``j`` operations."""

    family: str
    request: str
    ops: tuple[str, ...]
    truth: tuple[str, ...]
    metric: str
    context: Mapping[str, str] = field(default_factory=dict)

    @property
    def start(self) -> str:
        return self.truth[0]

    @property
    def gold(self) -> str:
        return self.truth[-1]

    @property
    def hops(self) -> int:
        return len(self.ops)


@dataclass(frozen=True, slots=True)
class ParsedSubtask:
    kind: SubtaskKind
    op: str
    subject: str
    decomposed: bool = False
    """The subtask is an explicit sub-step handed down by a decomposition (``Sub-step k of m:``)."""
    check: bool = False
    """The subtask re-does an earlier operation (``Double-check: ...``)."""
    plain: bool = True
    """Worded as the canonical plan words it (no lead-in, the plan's verb): how the LLM writes."""


class TaskFamily(Protocol):
    """A generator of chain tasks plus the vocabulary simulated models use to talk about them."""

    name: str
    metric: str

    def sample(self, rng: random.Random) -> TaskInstance: ...
    def parse_request(self, text: str) -> TaskInstance | None: ...
    def parse_subtask(self, text: str) -> ParsedSubtask | None: ...
    def parse_result_value(self, text: str) -> str | None: ...

    def apply(self, op: str, subject: str) -> str | None:
        """The true result of ``op`` on ``subject``; ``None`` when the subject is not in the world."""
        ...

    def wrong_value(self, op: str, subject: str, truth: str | None, rng: random.Random) -> str:
        """A plausible wrong result (same type as the right one, never equal to it)."""
        ...

    def misread_start(self, instance: TaskInstance, rng: random.Random) -> str: ...
    def difficulty(self, op: str, subject: str) -> float: ...

    def hop_text(self, instance: TaskInstance, op: str, subject: str, style: int) -> str: ...
    def locate_text(self, instance: TaskInstance, op: str, subject: str) -> str: ...
    def split_hop_text(self, instance: TaskInstance, op: str, subject: str) -> str: ...
    def detour_text(self, instance: TaskInstance, subject: str, style: int) -> str: ...
    def result_text(self, instance: TaskInstance, op: str, subject: str, value: str, style: int) -> str: ...
    def locate_result_text(self, instance: TaskInstance, op: str, subject: str) -> str: ...
    def detour_result_text(self, instance: TaskInstance, subject: str) -> str: ...
    def plan_text(self, instance: TaskInstance, style: int) -> str: ...


class Template:
    """A sentence with ``{slot}`` holes that renders and, inversely, matches (case-insensitively)."""

    __slots__ = ("regex", "text")

    def __init__(self, text: str, slots: Mapping[str, str]) -> None:
        self.text = text
        pieces = re.split(r"\{(\w+)\}", text.rstrip(".?!"))
        seen: set[str] = set()
        pattern = ""
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                pattern += re.escape(piece)
            elif piece in seen:  # a slot used twice must hold the same text both times
                pattern += f"(?P={piece})"
            else:
                seen.add(piece)
                pattern += f"(?P<{piece}>{slots.get(piece, '.+?')})"
        self.regex = re.compile(f"^{pattern}[.?!]*$", re.IGNORECASE)

    def render(self, **values: str) -> str:
        return self.text.format(**values)

    def match(self, text: str) -> dict[str, str] | None:
        found = self.regex.match(text)
        return found.groupdict() if found else None


_DECOMPOSED = re.compile(r"^sub-?step \d+ of \d+\s*[:.-]\s*", re.IGNORECASE)
_CHECK = re.compile(r"^double-check\s*[:,-]\s*", re.IGNORECASE)
_FILLER = re.compile(r"^(?:now|next|then|first|finally)\s*,?\s+", re.IGNORECASE)
# How a model words the second half of a hop it split: a sub-step marker, not loose wording.
_SPLIT = re.compile(r"^(?:from that record|from there)\s*,?\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Markers:
    decomposed: bool
    check: bool
    filler: bool


def strip_markers(text: str) -> tuple[str, Markers]:
    """Normalise whitespace and remove the sub-step / check / lead-in prefixes a subtask may carry."""
    text = " ".join(text.split())
    decomposed = check = filler = False
    if found := _DECOMPOSED.match(text):
        decomposed, text = True, text[found.end() :]
    if found := _CHECK.match(text):
        check, text = True, text[found.end() :]
    if found := _SPLIT.match(text):
        text = text[found.end() :]
    while found := _FILLER.match(text):
        filler, text = True, text[found.end() :]
    return text, Markers(decomposed, check, filler)


DECOMPOSED_PREFIX = "Sub-step {index} of {total}: "
CHECK_PREFIX = "Double-check: "


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text


def same_value(a: str, b: str) -> bool:
    return a == b or a.strip().casefold() == b.strip().casefold()


def words(text: str) -> list[str]:
    """The whitespace-separated words of a (triple-quoted) word list."""
    return text.split()


class SubtaskParseCache:
    """Memoises a family's subtask parser; bounded, since a long-running dev server sees endless texts.

    Parsing the same subtask text again is common (every later step's prompt repeats the history),
    and a family's grammar does not change, so the first answer stands.
    """

    LIMIT = 100_000

    def __init__(self, parse: Callable[[str], ParsedSubtask | None]) -> None:
        self._parse = parse
        self._parsed: dict[str, ParsedSubtask | None] = {}

    def __call__(self, text: str) -> ParsedSubtask | None:
        if text in self._parsed:
            return self._parsed[text]
        parsed = self._parse(text)
        if len(self._parsed) > self.LIMIT:
            self._parsed.clear()
        self._parsed[text] = parsed
        return parsed
