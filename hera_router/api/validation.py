"""Validating submissions: one request, a JSON list of requests, or a JSONL file.

Every line (or list item) is judged on its own, so one bad line costs the client that line and not
the batch; each problem becomes a sentence that names the line and the field, e.g.
"line 17: `custom_id` 'a1' appears twice in the file (first on line 3)". Only limits that concern
the whole submission (too many requests) reject it as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from hera_router.api.errors import Rejection, TooLargeError, Unit
from hera_router.api.schemas import AgentRequestItem
from hera_router.api.storable import fields_problem
from hera_router.config import Settings
from hera_router.routing.registry import policy_names

ITEM_FIELDS: tuple[str, ...] = tuple(AgentRequestItem.model_fields)


@dataclass(frozen=True, slots=True)
class SubmissionLimits:
    """The settings-dependent checks a request must also pass (the schema cannot know them)."""

    max_batch_requests: int
    max_input_chars: int
    policies: frozenset[str]
    default_policy: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmissionLimits:
        return cls(
            max_batch_requests=settings.api.max_batch_requests,
            max_input_chars=settings.api.max_input_chars,
            policies=frozenset(policy_names()),
            default_policy=settings.routing.policy,
        )

    def policy_problem(self, policy: str) -> str | None:
        if policy in self.policies:
            return None
        return f"`policy` {policy!r} is not a known policy; choose one of {', '.join(sorted(self.policies))}"

    def item_problem(self, item: AgentRequestItem) -> str | None:
        """What is wrong with an otherwise well-formed item, or None."""
        unstorable = fields_problem(
            {
                "input": item.input,
                "custom_id": item.custom_id,
                "policy": item.policy,
                "gold_answer": item.gold_answer,
                "metadata": item.metadata,
            }
        )
        if unstorable is not None:
            return unstorable
        if not item.input.strip():
            return "`input` is blank; give the agent a task"
        if len(item.input) > self.max_input_chars:
            return (
                f"`input` has {len(item.input):,} characters, more than the limit of {self.max_input_chars:,} "
                "(HERA_API__MAX_INPUT_CHARS)"
            )
        if item.policy is not None:
            return self.policy_problem(item.policy)
        return None


@dataclass(slots=True)
class ParsedBatch:
    """The acceptable items with their line numbers, and the rejected lines, in input order."""

    accepted: list[tuple[int, AgentRequestItem]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def describe_error(error: ErrorDetails, *, prefix: Sequence[str | int] = ()) -> tuple[str, str]:
    """Turn one pydantic error into ``(field path, sentence)``.

    The path is dotted (``body.priority``, ``metadata``); pydantic's own wording is kept where it is
    already clear and replaced where it is not (unknown fields, missing fields, bad JSON).
    """
    location = [*prefix, *error["loc"]]
    path = ".".join(str(part) for part in location) or "body"
    kind = error["type"]
    if kind == "extra_forbidden":
        return path, f"`{location[-1]}` is not a known field"
    if kind == "missing":
        return path, f"`{location[-1]}` is required"
    if kind == "json_invalid":
        # FastAPI reports a JSON syntax error at ("body", <character offset>).
        reason = (error.get("ctx") or {}).get("error", "not valid JSON")
        offset = location[-1] if isinstance(location[-1], int) else None
        where = f" at character {offset}" if offset is not None else ""
        return "body", f"the body is not valid JSON: {reason}{where}"
    return path, error["msg"]


def _item_error(exc: ValidationError) -> str:
    """All problems of one item in one sentence, e.g. "`priority`: Input should be a valid integer"."""
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        path, message = describe_error(error)
        if error["type"] == "extra_forbidden":
            parts.append(f"{message} (known fields: {', '.join(ITEM_FIELDS)})")
        elif error["type"] == "missing":
            parts.append(message)
        else:
            parts.append(f"`{path}`: {message}")
    return "; ".join(parts)


def validate_entry(raw: object, limits: SubmissionLimits) -> AgentRequestItem | str:
    """Validate one decoded entry; the item, or a sentence saying what is wrong with it."""
    if not isinstance(raw, dict):
        return f"expected a JSON object with an `input` field, got {_json_kind(raw)}"
    try:
        item = AgentRequestItem.model_validate(raw)
    except ValidationError as exc:
        return _item_error(exc)
    return limits.item_problem(item) or item


def parse_items(entries: Sequence[object], limits: SubmissionLimits) -> ParsedBatch:
    """Validate a JSON list of requests; entries are numbered from 1 as "item N"."""
    _check_count(len(entries), limits, "list")
    return _collect(((number, entry) for number, entry in enumerate(entries, start=1)), limits, "item")


def parse_jsonl(data: bytes | str, limits: SubmissionLimits) -> ParsedBatch:
    """Validate a JSONL file: one request object per line; blank lines are skipped.

    Lines are numbered as in the file (blank ones included), so a reported line number is the one
    the client's editor shows.
    """
    raw_lines = data.split(b"\n") if isinstance(data, bytes) else [line.encode() for line in data.split("\n")]
    present = [(number, line) for number, line in enumerate(raw_lines, start=1) if line.strip()]
    _check_count(len(present), limits, "file")
    return _collect(_decode_lines(present), limits, "line")


class _Undecodable:
    """A line that is not JSON at all; carries the sentence saying why."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _decode_lines(lines: list[tuple[int, bytes]]) -> Iterator[tuple[int, object]]:
    for number, line in lines:
        # A UTF-8 byte-order mark, as some editors on Windows write, is not part of the JSON.
        raw = line.removeprefix(b"\xef\xbb\xbf") if number == 1 else line
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, _Undecodable(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, _Undecodable(f"not valid JSON: {exc.msg} at column {exc.colno}")


def _collect(entries: Iterator[tuple[int, object]], limits: SubmissionLimits, unit: Unit) -> ParsedBatch:
    parsed = ParsedBatch()
    first_seen: dict[str, int] = {}
    where = "file" if unit == "line" else "list"
    for number, raw in entries:
        result = raw.error if isinstance(raw, _Undecodable) else validate_entry(raw, limits)
        if isinstance(result, str):
            parsed.rejected.append(Rejection(number, result, unit))
            continue
        if result.custom_id is not None:
            # The first occurrence wins: it is the one the client most likely meant, and the
            # results file then has exactly one line per custom_id.
            earlier = first_seen.setdefault(result.custom_id, number)
            if earlier != number:
                error = f"`custom_id` {result.custom_id!r} appears twice in the {where} (first on {unit} {earlier})"
                parsed.rejected.append(Rejection(number, error, unit))
                continue
        parsed.accepted.append((number, result))
    return parsed


def _check_count(count: int, limits: SubmissionLimits, container: str) -> None:
    if count > limits.max_batch_requests:
        raise TooLargeError(
            f"the {container} holds {count:,} requests, more than the {limits.max_batch_requests:,} one batch may "
            "hold (HERA_API__MAX_BATCH_REQUESTS); split it into several batches"
        )


def _json_kind(value: object) -> str:
    kinds: list[tuple[type, str]] = [
        (bool, "a boolean"),
        (int, "a number"),
        (float, "a number"),
        (str, "a string"),
        (list, "a list"),
    ]
    if value is None:
        return "null"
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)
