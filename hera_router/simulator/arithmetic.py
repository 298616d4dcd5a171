"""Multi-step arithmetic word problems: a start count and 3–8 operations, one per plan step.

"Nora has 12 marbles. First she gets 5 more; then she gives away 3; finally she ends up with 2
times as many. How many marbles does Nora have at the end?" Values stay positive integers on the
true chain; a wrong intermediate result makes later steps compute on the wrong number, exactly
as a real agent's chain drifts.
"""

from __future__ import annotations

import math
import random
import re

from hera_router.simulator.tasks import (
    ParsedSubtask,
    SubtaskParseCache,
    TaskInstance,
    Template,
    strip_markers,
    words,
)

_NAMES = {
    "she": ["Nora", "Ada", "Mina", "Lena", "Iris", "Greta", "Petra", "Cleo", "Rhea", "Vera"],
    "he": ["Otto", "Felix", "Hugo", "Jonas", "Leon", "Oskar", "Ruben", "Theo", "Anton", "Silas"],
}
_PRONOUN = {name: pronoun for pronoun, names in _NAMES.items() for name in names}
_ITEMS = words(
    """
    marbles stickers coins apples stamps books shells cards
    """
)

# Per operator: how the request states it, the canonical subtask, the verb a split step uses,
# the symbol in results, and its base difficulty (multiplying and dividing trip small models up).
_CLAUSE = {
    "add": "gets {n} more",
    "sub": "gives away {n}",
    "mul": "ends up with {n} times as many",
    "div": "splits them into {n} equal shares and keeps one",
}
_HOP = {
    "add": "Add {n} {items} to {subj} {items}.",
    "sub": "Subtract {n} {items} from {subj} {items}.",
    "mul": "Multiply {subj} {items} by {n}.",
    "div": "Divide {subj} {items} into {n} equal shares.",
}
_VERB = {"add": "add", "sub": "subtract", "mul": "multiply by", "div": "divide by"}
_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
OPERATION_DIFFICULTY = {"add": 0.15, "sub": 0.3, "mul": 0.55, "div": 0.65}
_NUMBER = r"-?\d+(?:\.\d+)?"
_INTEGER = r"\d+"
_SLOTS = {
    "subj": _NUMBER,
    "val": _NUMBER,
    "n": r"\d+",
    "items": "[a-z]+",
    "verb": "|".join(_VERB.values()),
    "sym": r"[-+*/]",
}


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def _op(kind: str, n: int) -> str:
    return f"{kind}:{n}"


def _split_op(op: str) -> tuple[str, int]:
    kind, _, n = op.partition(":")
    return kind, int(n)


class ArithmeticFamily:
    """Word problems with 3–8 operations by default."""

    name = "arithmetic"
    metric = "numeric"

    def __init__(self, min_ops: int = 3, max_ops: int = 8) -> None:
        self.min_ops, self.max_ops = min_ops, max_ops
        self.parse_subtask = SubtaskParseCache(self._parse_subtask)
        self._values: dict[str, str | None] = {}
        self._hops = {kind: Template(text, _SLOTS) for kind, text in _HOP.items()}
        self._locate = Template("Write down the current count, {subj} {items}, before you {verb} {n}.", _SLOTS)
        self._detours = (
            Template("Re-read the question to see what happens to the {subj} {items}.", _SLOTS),
            Template("Check whether the {subj} {items} include anything else.", _SLOTS),
        )
        self._results = (
            Template("{subj} {sym} {n} = {val} {items}.", _SLOTS),
            Template("That gives {val} {items} ({subj} {sym} {n}).", _SLOTS),
        )
        number_hole = re.escape("{n}")
        clause = "|".join(
            f"(?P<{kind}>{re.escape(text).replace(number_hole, _INTEGER)})" for kind, text in _CLAUSE.items()
        )
        self._clause = re.compile(rf"^(?:first|then|finally) (?:she|he) (?:{clause})$", re.IGNORECASE)
        self._question = re.compile(
            r"^(?P<name>[A-Z][a-z]+) has (?P<start>\d+) (?P<items>[a-z]+)\. (?P<body>.+)\. "
            r"How many (?P=items) does (?P=name) have at the end\?$"
        )

    # --- instances ------------------------------------------------------------------------------

    def sample(self, rng: random.Random) -> TaskInstance:
        name = rng.choice(sorted(_PRONOUN))
        items = rng.choice(_ITEMS)
        value: float = rng.randint(6, 60)
        truth, ops = [format_number(value)], []
        for _ in range(rng.randint(self.min_ops, self.max_ops)):
            kind, n = self._draw_op(value, rng)
            ops.append(_op(kind, n))
            value = self._compute(kind, value, n)
            truth.append(format_number(value))
        request = self._question_text(name, items, int(truth[0]), ops)
        return TaskInstance(
            family=self.name,
            request=request,
            ops=tuple(ops),
            truth=tuple(truth),
            metric=self.metric,
            context={"items": items},
        )

    @staticmethod
    def _draw_op(value: float, rng: random.Random) -> tuple[str, int]:
        # Keep the true chain on small positive integers so the question stays a word problem.
        divisors = [n for n in range(2, 6) if value % n == 0 and value // n >= 2]
        options = ["add", "add", "sub", "mul", "div"]
        while True:
            kind = rng.choice(options)
            if kind == "add":
                return kind, rng.randint(2, 40)
            if kind == "sub" and value > 3:
                return kind, rng.randint(1, int(value) - 2)
            if kind == "mul" and value <= 300:
                return kind, rng.randint(2, 4)
            if kind == "div" and divisors:
                return kind, rng.choice(divisors)

    @staticmethod
    def _compute(kind: str, value: float, n: int) -> float:
        if kind == "add":
            return value + n
        if kind == "sub":
            return value - n
        if kind == "mul":
            return value * n
        return value / n

    def _question_text(self, name: str, items: str, start: int, ops: list[str]) -> str:
        pronoun = _PRONOUN[name]
        clauses = []
        for i, op in enumerate(ops):
            kind, n = _split_op(op)
            lead = "First" if i == 0 else "finally" if i == len(ops) - 1 else "then"
            clauses.append(f"{lead} {pronoun} {_CLAUSE[kind].format(n=n)}")
        return f"{name} has {start} {items}. {'; '.join(clauses)}. How many {items} does {name} have at the end?"

    def parse_request(self, text: str) -> TaskInstance | None:
        found = self._question.match(" ".join(text.split()))
        if not found:
            return None
        ops = []
        for clause in found.group("body").split(";"):
            parsed = self._clause.match(clause.strip())
            if not parsed:
                return None
            kind = next(k for k in _CLAUSE if parsed.group(k))
            ops.append(_op(kind, int(re.findall(r"\d+", parsed.group(kind))[0])))
        truth = [found.group("start")]
        for op in ops:
            truth.append(self.apply(op, truth[-1]) or "")
        return TaskInstance(
            family=self.name,
            request=text,
            ops=tuple(ops),
            truth=tuple(truth),
            metric=self.metric,
            context={"items": found.group("items")},
        )

    # --- semantics ------------------------------------------------------------------------------

    def apply(self, op: str, subject: str) -> str | None:
        try:
            kind, n = _split_op(op)
            return format_number(self._compute(kind, float(subject), n))
        except (ValueError, KeyError, ZeroDivisionError):
            return None

    def wrong_value(self, op: str, subject: str, truth: str | None, rng: random.Random) -> str:
        try:
            right = float(truth) if truth is not None else float(subject)
        except ValueError:
            right = 0.0
        for _ in range(50):
            mistake = rng.random()
            if mistake < 0.5:  # a slip: close to the right number
                spread = max(2, int(abs(right) * 0.1))
                value = right + rng.choice((-1, 1)) * rng.randint(1, spread)
            elif mistake < 0.8:  # the wrong operation
                kind, n = _split_op(op)
                other = rng.choice([k for k in _SYMBOL if k != kind])
                try:
                    value = self._compute(other, float(subject), n)
                except ValueError:
                    value = right + 1
            else:  # transposed digits, or a dropped one
                digits = format_number(right)
                value = float(digits[::-1]) if len(digits) > 1 and digits.isdigit() else right * 10
            candidate = format_number(round(value, 2))
            if truth is None or candidate != truth:
                return candidate
        return format_number(right + 1)

    def misread_start(self, instance: TaskInstance, rng: random.Random) -> str:
        start = int(instance.start)
        return str(start + rng.choice((-1, 1)) * rng.randint(1, 5) if start > 6 else start + rng.randint(1, 5))

    def difficulty(self, op: str, subject: str) -> float:
        try:
            kind, n = _split_op(op)
            size = math.log10(max(abs(float(subject)), 1.0) * n) / 4
        except (ValueError, KeyError):
            return 0.9
        return round(min(1.0, OPERATION_DIFFICULTY.get(kind, 0.9) + 0.35 * min(1.0, size)), 4)

    # --- texts ----------------------------------------------------------------------------------

    def hop_text(self, instance: TaskInstance, op: str, subject: str, style: int) -> str:
        kind, n = _split_op(op)
        text = self._hops[kind].render(n=str(n), subj=subject, items=instance.context.get("items", "items"))
        lead = ("", "Now ", "Next, ", "Then, ")[style % 4]
        return lead + (text[:1].lower() + text[1:] if lead else text)

    def locate_text(self, instance: TaskInstance, op: str, subject: str) -> str:
        kind, n = _split_op(op)
        return self._locate.render(
            subj=subject, items=instance.context.get("items", "items"), verb=_VERB[kind], n=str(n)
        )

    def split_hop_text(self, instance: TaskInstance, op: str, subject: str) -> str:
        text = self.hop_text(instance, op, subject, 0)
        return "From there, " + text[:1].lower() + text[1:]

    def detour_text(self, instance: TaskInstance, subject: str, style: int) -> str:
        return self._detours[style % 2].render(subj=subject, items=instance.context.get("items", "items"))

    def result_text(self, instance: TaskInstance, op: str, subject: str, value: str, style: int) -> str:
        kind, n = _split_op(op)
        return self._results[style % 2].render(
            subj=subject, sym=_SYMBOL[kind], n=str(n), val=value, items=instance.context.get("items", "items")
        )

    def locate_result_text(self, instance: TaskInstance, op: str, subject: str) -> str:
        return f"The current count is {subject} {instance.context.get('items', 'items')}."

    def detour_result_text(self, instance: TaskInstance, subject: str) -> str:
        return f"Nothing in the question changes the {subject} {instance.context.get('items', 'items')}."

    def plan_text(self, instance: TaskInstance, style: int) -> str:
        if style == 0:
            return f"Plan: {instance.hops} operations, starting from {instance.start} {instance.context['items']}."
        return "I will do the operations one at a time."

    # --- parsing model output -------------------------------------------------------------------

    def _parse_subtask(self, text: str) -> ParsedSubtask | None:
        bare, marks = strip_markers(text)
        for kind, template in self._hops.items():
            if found := template.match(bare):
                op = _op(kind, int(found["n"]))
                return ParsedSubtask("hop", op, found["subj"], marks.decomposed, marks.check, not marks.filler)
        if found := self._locate.match(bare):
            kind = next(k for k, verb in _VERB.items() if verb == found["verb"].lower())
            op = _op(kind, int(found["n"]))
            return ParsedSubtask("locate", op, found["subj"], marks.decomposed, marks.check, False)
        for detour in self._detours:
            if found := detour.match(bare):
                return ParsedSubtask("detour", "", found["subj"], marks.decomposed, marks.check, False)
        return None

    def parse_result_value(self, text: str) -> str | None:
        if text in self._values:
            return self._values[text]
        bare = " ".join(text.split())
        value = None
        for template in self._results:
            if found := template.match(bare):
                value = found["val"]
                break
        if len(self._values) > 100_000:
            self._values.clear()
        self._values[text] = value
        return value
