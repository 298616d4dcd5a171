"""Chat messages → the agent's request text, and OpenAI batch input lines → requests.

A line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`` with
a chat completion request as ``body``. Each line is judged on its own: a malformed one becomes a
line of the error file with a sentence naming its line number and field, and the others run.
Two things fail the whole batch, as they do at OpenAI: a ``custom_id`` used twice (results are
joined on it) and a file with more lines than a batch may hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from hera_router.api.openai.profiles import Profile, Profiles
from hera_router.api.openai.schemas import ENDPOINT, ChatCompletionCreate, ChatMessage
from hera_router.api.schemas import CUSTOM_ID_MAX_CHARS
from hera_router.api.storable import value_problem
from hera_router.api.validation import describe_error

ROLE_LABELS = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}
TEXT_PART_TYPES = frozenset({"text", "input_text"})


class MessagesError(ValueError):
    """The messages cannot become a request; ``param`` is the offending field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def message_text(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for number, part in enumerate(content):
        if part.type not in TEXT_PART_TYPES or part.text is None:
            raise MessagesError(
                f"`messages[{index}].content[{number}]` is a {part.type!r} part; the agent takes text parts only",
                f"messages[{index}].content[{number}]",
            )
        texts.append(part.text)
    return "\n".join(texts)


def render_messages(messages: Sequence[ChatMessage]) -> str:
    """The agent's root request (ST_0) for a conversation.

    A lone user message is the request as it is. A longer conversation becomes a transcript
    ("System: ...", "User: ...", "Assistant: ...", blank-line separated) whose last turn is the
    task; tool and function messages are kept as "Tool: ...". Raises :class:`MessagesError`.
    """
    texts = [(message.role, message_text(message, index)) for index, message in enumerate(messages)]
    for index, (_, text) in enumerate(texts):
        if (problem := value_problem(text, f"messages[{index}].content")) is not None:
            raise MessagesError(problem, f"messages[{index}].content")
    spoken = [(role, text) for role, text in texts if text.strip()]
    if not spoken:
        raise MessagesError("`messages` hold no text; give the agent a task in a user message", "messages")
    if len(spoken) == 1 and spoken[0][0] == "user":
        return spoken[0][1]
    return "\n\n".join(f"{ROLE_LABELS.get(role, 'Tool')}: {text}" for role, text in spoken)


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    code: str
    message: str
    param: str | None = None
    custom_id: str | None = None

    def as_record(self) -> dict[str, Any]:
        """Stored in the native batch's ``rejected`` (the keys it expects, plus ours)."""
        return {
            "line": self.line,
            "error": self.message,
            "message": f"line {self.line}: {self.message}",
            "code": self.code,
            "param": self.param,
            "custom_id": self.custom_id,
        }


@dataclass(frozen=True, slots=True)
class BatchLine:
    line: int
    custom_id: str
    input: str
    profile: Profile
    metadata: dict[str, Any] | None


@dataclass(slots=True)
class ParsedFile:
    lines: list[BatchLine] = field(default_factory=list)
    rejected: list[LineError] = field(default_factory=list)
    fatal: list[LineError] = field(default_factory=list)
    """Problems that fail the whole batch (duplicate custom_ids, too many lines)."""

    @property
    def total(self) -> int:
        return len(self.lines) + len(self.rejected)


@dataclass(frozen=True, slots=True)
class LineLimits:
    max_lines: int
    max_input_chars: int


def parse_file(data: bytes, profiles: Profiles, limits: LineLimits, *, batch_policy: str | None = None) -> ParsedFile:
    parsed = ParsedFile()
    raw_lines = [(number, raw) for number, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]
    if len(raw_lines) > limits.max_lines:
        parsed.fatal.append(
            LineError(
                0,
                "too_many_requests",
                f"the file holds {len(raw_lines):,} requests, more than the {limits.max_lines:,} one batch may hold "
                "(HERA_OPENAI__MAX_BATCH_LINES); split it into several batches",
            )
        )
        return parsed
    first_seen: dict[str, int] = {}
    for number, raw in raw_lines:
        result = _parse_line(number, raw, profiles, limits, batch_policy)
        if isinstance(result, LineError):
            parsed.rejected.append(result)
            continue
        earlier = first_seen.setdefault(result.custom_id, number)
        if earlier != number:
            parsed.fatal.append(
                LineError(
                    number,
                    "duplicate_custom_id",
                    f"line {number}: `custom_id` {result.custom_id!r} appears twice in the file (first on line "
                    f"{earlier}); every line needs its own custom_id, since results are matched on it",
                    "custom_id",
                    result.custom_id,
                )
            )
            continue
        parsed.lines.append(result)
    return parsed


class _LineProblemError(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _parse_line(
    number: int, raw: bytes, profiles: Profiles, limits: LineLimits, batch_policy: str | None
) -> BatchLine | LineError:
    entry: object = None
    try:
        entry = _decode(raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw)
        custom_id = _check_envelope(entry)
        assert isinstance(entry, dict)
        return _check_body(number, custom_id, entry["body"], profiles, limits, batch_policy)
    except _LineProblemError as problem:
        given = entry.get("custom_id") if isinstance(entry, dict) else None
        shown = given if isinstance(given, str) and value_problem(given, "custom_id") is None else None
        return LineError(number, problem.code, problem.message, problem.param, shown)


def _decode(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _LineProblemError(
            "invalid_json", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from None
    except json.JSONDecodeError as exc:
        raise _LineProblemError("invalid_json", f"not valid JSON: {exc.msg} at column {exc.colno}") from None


def _check_envelope(entry: object) -> str:
    """The line's ``custom_id`` once ``custom_id``, ``method``, ``url`` and ``body`` are right."""
    if not isinstance(entry, dict):
        raise _LineProblemError(
            "invalid_request", "expected a JSON object with `custom_id`, `method`, `url` and `body`"
        )
    for name in ("custom_id", "method", "url", "body"):
        if name not in entry:
            raise _LineProblemError("missing_required_parameter", f"`{name}` is required", name)
    unknown = sorted(set(entry) - {"custom_id", "method", "url", "body"})
    if unknown:
        raise _LineProblemError(
            "invalid_request",
            f"`{unknown[0]}` is not a known field (known fields: custom_id, method, url, body)",
            unknown[0],
        )
    custom_id = entry["custom_id"]
    if not isinstance(custom_id, str) or not custom_id:
        raise _LineProblemError("invalid_request", "`custom_id` must be a non-empty string", "custom_id")
    if len(custom_id) > CUSTOM_ID_MAX_CHARS:
        raise _LineProblemError(
            "invalid_request", f"`custom_id` has more than {CUSTOM_ID_MAX_CHARS} characters", "custom_id"
        )
    if (problem := value_problem(custom_id, "custom_id")) is not None:
        raise _LineProblemError("invalid_request", problem, "custom_id")
    if entry["method"] != "POST":
        raise _LineProblemError("invalid_method", f'`method` must be "POST" (got {_shown(entry["method"])})', "method")
    if entry["url"] != ENDPOINT:
        raise _LineProblemError(
            "invalid_url",
            f"`url` must be {ENDPOINT!r}, the batch's endpoint (got {_shown(entry['url'])}); "
            "only chat completions are served",
            "url",
        )
    if not isinstance(entry["body"], dict):
        raise _LineProblemError("invalid_request", "`body` must be a JSON object (a chat completion request)", "body")
    return custom_id


def _check_body(
    number: int,
    custom_id: str,
    body: dict[str, Any],
    profiles: Profiles,
    limits: LineLimits,
    batch_policy: str | None,
) -> BatchLine:
    try:
        request = ChatCompletionCreate.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path, message = describe_error(first, prefix=("body",))
        if first["type"] == "missing":
            raise _LineProblemError("missing_required_parameter", f"`{path}` is required", path) from None
        raise _LineProblemError("invalid_request", f"`{path}`: {message}", path) from None
    if request.stream:
        raise _LineProblemError("invalid_request", "`body.stream` must be false in a batch", "body.stream")
    metadata = request.metadata
    for name, value in (("body.model", request.model), ("body.metadata", metadata), ("body.user", request.user)):
        if value is not None and (problem := value_problem(value, name)) is not None:
            raise _LineProblemError("invalid_request", problem, name)
    try:
        text = render_messages(request.messages)
    except MessagesError as exc:
        raise _LineProblemError(
            "invalid_request", str(exc).replace("`messages", "`body.messages"), f"body.{exc.param}"
        ) from None
    if len(text) > limits.max_input_chars:
        raise _LineProblemError(
            "invalid_request",
            f"`body.messages` add up to {len(text):,} characters, more than the limit of "
            f"{limits.max_input_chars:,} (HERA_API__MAX_INPUT_CHARS)",
            "body.messages",
        )
    policy = metadata.get("policy") if metadata is not None else None
    if policy is not None and not isinstance(policy, str):
        raise _LineProblemError("invalid_request", "`body.metadata.policy` must be a string", "body.metadata.policy")
    try:
        profile = profiles.resolve(request.model, policy, batch_policy)
    except ValueError as exc:
        message = str(exc).replace("`metadata", "`body.metadata")
        raise _LineProblemError("invalid_request", message, "body.metadata.policy") from None
    return BatchLine(number, custom_id, text, profile, metadata)


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 80 else text[:77] + "..."


def iter_chunks(data: Sequence[BatchLine], size: int) -> Iterator[Sequence[BatchLine]]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
