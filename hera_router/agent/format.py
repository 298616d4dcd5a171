"""The agent-loop wire format: what an executor model is asked at each step and how it answers.

Every executor (the simulated models, real SLMs and LLMs, the pipeline's parser) speaks this one
format, so it is deliberately plain, line-oriented text that a 1B model can imitate.

Step prompt. A system message with the rules (:data:`STEP_SYSTEM_PROMPT`)
and one user message::

    Request: <the user request>

    History:
    [0] Subtask: <ST_0, the root request>
    [0] Result: <what step 0 produced>
    [1] Subtask: <ST_1>
    [1] Result: <R_1>

    Current subtask (step 2): <ST_2>

``History:`` reads ``(none)`` at the first step, where the current subtask is the request itself
(ST_0). A value that spans several lines continues on lines indented by four spaces, so no line
of a value can be mistaken for a label.

Step answer: labelled lines, in this order::

    RESULT: <the result of the current subtask>
    NEXT: <the next subtask>          (when more work is needed)
    FINAL: <the final answer>         (instead of NEXT, when the request is answered)

Decomposition prompt (the SD estimator's training data and the SD branch): the request, the
subtask to split and optionally the subtask expected after it; the answer is numbered lines
``1. ...``, ``2. ...``.

Both parsers are tolerant: they accept markdown decoration (``**Result:**``, ``- NEXT:``), label
synonyms (``Final answer:``, ``Next subtask:``), lowercase labels and unlabelled text, and never
raise; what they had to guess is listed in ``problems`` so a worker can record it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hera_router.backends.base import Message

STEP_SYSTEM_PROMPT = (
    "You are the executor of an AI agent. You receive a user request, the subtasks done so far "
    "with their results, and the current subtask. Carry out the current subtask only, then either "
    "say what the next subtask is or, if the request is answered, give the final answer.\n"
    "Answer in exactly this format:\n"
    "RESULT: <the result of the current subtask>\n"
    "NEXT: <the next subtask>\n"
    "or, when the request is answered:\n"
    "RESULT: <the result of the current subtask>\n"
    "FINAL: <the final answer, as short as possible>"
)

DECOMPOSE_SYSTEM_PROMPT = (
    "You split one subtask of an AI agent into a few smaller steps that a small model can carry "
    "out one at a time. The last step must produce the subtask's result. Answer with numbered "
    "lines only:\n1. <first step>\n2. <second step>"
)

REQUEST_LABEL = "Request:"
HISTORY_LABEL = "History:"
NO_HISTORY = "(none)"
CURRENT_PREFIX = "Current subtask (step "
SPLIT_LABEL = "Subtask to split:"
EXPECTED_NEXT_LABEL = "Expected next subtask:"
MAX_PARTS_LABEL = "Maximum number of steps:"
_INDENT = "    "


@dataclass(frozen=True, slots=True)
class StepOutput:
    """A parsed step answer. ``problems`` is empty when the answer followed the format exactly."""

    result: str
    next_subtask: str | None
    final_answer: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.final_answer is not None


@dataclass(frozen=True, slots=True)
class StepPrompt:
    """What a step prompt carries, recovered from rendered messages (the executor's view)."""

    request: str
    history: tuple[tuple[str, str], ...]
    current: str
    step: int


@dataclass(frozen=True, slots=True)
class DecomposePrompt:
    request: str
    subtask: str
    expected_next: str | None
    max_parts: int


def _value(text: str) -> str:
    """A value on a labelled line; continuation lines are indented so they never look like labels."""
    lines = text.strip().splitlines() or [""]
    return "\n".join([lines[0], *(_INDENT + line for line in lines[1:])])


def render_step_messages(request: str, history: list[tuple[str, str]], current: str, step: int) -> list[Message]:
    """The messages an executor receives at step ``step`` (ST_0 is the request itself)."""
    first = step - len(history)
    parts = [f"{REQUEST_LABEL} {_value(request)}", "", HISTORY_LABEL]
    if history:
        for offset, (subtask, result) in enumerate(history):
            parts.append(f"[{first + offset}] Subtask: {_value(subtask)}")
            parts.append(f"[{first + offset}] Result: {_value(result)}")
    else:
        parts.append(NO_HISTORY)
    parts += ["", f"{CURRENT_PREFIX}{step}): {_value(current)}"]
    return [Message("system", STEP_SYSTEM_PROMPT), Message("user", "\n".join(parts))]


def render_decompose_messages(
    subtask: str,
    request: str = "",
    expected_next: str | None = None,
    max_parts: int = 4,
) -> list[Message]:
    """The SD prompt: split ``subtask`` (optionally aiming at ``expected_next``) into small steps."""
    parts = [f"{REQUEST_LABEL} {_value(request)}", f"{SPLIT_LABEL} {_value(subtask)}"]
    if expected_next:
        parts.append(f"{EXPECTED_NEXT_LABEL} {_value(expected_next)}")
    parts.append(f"{MAX_PARTS_LABEL} {max_parts}")
    return [Message("system", DECOMPOSE_SYSTEM_PROMPT), Message("user", "\n".join(parts))]


def _user_text(messages: list[Message]) -> str:
    # A prompt that came over a raw-prompt protocol may be a single message holding everything.
    return "\n".join(m.content for m in messages if m.role != "system") or "\n".join(m.content for m in messages)


# A history line and its indented continuation lines; the literal "\n[" start lets the regex
# engine skip ahead with a fast search instead of trying every position.
_HISTORY_ITEM = re.compile(r"\n\[(\d+)\] (Subtask|Result):[ ]?([^\n]*(?:\n    [^\n]*)*)")


def _take(lines: list[str], i: int, first: str) -> tuple[str, int]:
    """The value whose first line is ``first`` (from ``lines[i]``) plus its indented continuation."""
    end = i + 1
    extra: list[str] = []
    while end < len(lines) and lines[end].startswith(_INDENT):
        extra.append(lines[end][len(_INDENT) :])
        end += 1
    return "\n".join([first, *extra]), end


def _leading_value(text: str) -> str:
    """The value at the start of ``text``: its first line plus the indented lines right after it."""
    newline = text.find("\n")
    if newline < 0:
        return text.strip()
    if not text.startswith(_INDENT, newline + 1):
        return text[:newline].strip()  # the common case: a one-line value
    lines = text.split("\n")
    value, _ = _take(lines, 0, lines[0])
    return value.strip()


def parse_step_prompt(messages: list[Message]) -> StepPrompt | None:
    """Inverse of :func:`render_step_messages`; ``None`` when the messages are not a step prompt."""
    # Whole-string partitions rather than a loop over lines: the simulator parses every prompt it
    # answers and this was most of its per-call cost. Values never contain a line starting with
    # "[" or "Current subtask" because continuation lines are indented.
    text = "\n" + _user_text(messages)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    head, found, tail = text.rpartition("\n" + CURRENT_PREFIX)
    number, colon, current = tail.partition("):")
    at_request = head.find("\n" + REQUEST_LABEL)
    if not found or not colon or not number.isdigit() or at_request < 0:
        return None
    request = _leading_value(head[at_request + 1 + len(REQUEST_LABEL) :])
    subtasks: dict[int, str] = {}
    results: dict[int, str] = {}
    for index, label, raw in _HISTORY_ITEM.findall(head):
        value = raw.replace("\n" + _INDENT, "\n") if "\n" in raw else raw
        (subtasks if label == "Subtask" else results)[int(index)] = value.strip()
    history = tuple((subtasks[k], results.get(k, "")) for k in sorted(subtasks))
    return StepPrompt(request=request, history=history, current=_leading_value(current), step=int(number))


def parse_decompose_prompt(messages: list[Message]) -> DecomposePrompt | None:
    """Inverse of :func:`render_decompose_messages`; ``None`` when it is not a decomposition prompt."""
    lines = [line.rstrip("\r") for line in _user_text(messages).splitlines()]
    values: dict[str, str] = {}
    labels = (REQUEST_LABEL, SPLIT_LABEL, EXPECTED_NEXT_LABEL, MAX_PARTS_LABEL)
    i = 0
    while i < len(lines):
        label = next((lb for lb in labels if lines[i].startswith(lb)), None)
        if label is None or label in values:
            i += 1
            continue
        value, i = _take(lines, i, lines[i][len(label) :].lstrip())
        values[label] = value.strip()
    if SPLIT_LABEL not in values:
        return None
    try:
        max_parts = int(values.get(MAX_PARTS_LABEL, "4"))
    except ValueError:
        max_parts = 4
    return DecomposePrompt(
        request=values.get(REQUEST_LABEL, ""),
        subtask=values[SPLIT_LABEL],
        expected_next=values.get(EXPECTED_NEXT_LABEL) or None,
        max_parts=max_parts,
    )


# --- answers -------------------------------------------------------------------------------------

_LABELS = {
    "result": "result",
    "next": "next",
    "next subtask": "next",
    "next step": "next",
    "final": "final",
    "final answer": "final",
    "answer": "final",
}
_LABEL_LINE = re.compile(
    r"^[\s>*#_`-]*(result|next subtask|next step|next|final answer|final|answer)[\s*_`]*:[\s*_`]*(.*)$",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•])\s+(.+?)\s*$")
_NONE_VALUES = {"", "none", "n/a", "-", "(none)", "null"}


def _clean(value: str) -> str:
    return value.strip().strip("*_`").strip()


def parse_step(text: str) -> StepOutput:
    """Parse a step answer; never raises. See the module docstring for what is tolerated."""
    problems: list[str] = []
    fields: dict[str, list[str]] = {}
    preamble: list[str] = []
    current: list[str] | None = None
    for raw in (text or "").splitlines():
        match = _LABEL_LINE.match(raw)
        if match:
            key = _LABELS[match.group(1).lower()]
            if key in fields:
                problems.append(f"{key.upper()}: appears more than once; kept the first")
                current = None  # drop the repeat's continuation lines with it
                continue
            current = fields[key] = [match.group(2)]
        elif current is not None:
            current.append(raw[len(_INDENT) :] if raw.startswith(_INDENT) else raw)
        elif raw.strip():
            preamble.append(raw.strip())
    values = {key: _clean("\n".join(lines)) for key, lines in fields.items()}

    result = values.get("result")
    if result is None:
        result = " ".join(preamble)
        problems.append("no RESULT: line; used the unlabelled text as the result")
    elif preamble:
        problems.append("text before the labelled lines was ignored")
    next_subtask = values.get("next")
    final_answer = values.get("final")
    if next_subtask is not None and next_subtask.lower() in _NONE_VALUES:
        next_subtask = None
    if final_answer is not None and final_answer.lower() in _NONE_VALUES:
        problems.append("FINAL: is empty")
        final_answer = None
    if next_subtask is not None and final_answer is not None:
        problems.append("both NEXT: and FINAL: given; kept FINAL")
        next_subtask = None
    if next_subtask is None and final_answer is None:
        problems.append("neither NEXT: nor FINAL: given")
    return StepOutput(result=result, next_subtask=next_subtask, final_answer=final_answer, problems=problems)


def render_step_answer(result: str, next_subtask: str | None = None, final_answer: str | None = None) -> str:
    """An answer in the wire format (what a well-behaved executor writes)."""
    lines = [f"RESULT: {_value(result)}"]
    if final_answer is not None:
        lines.append(f"FINAL: {_value(final_answer)}")
    elif next_subtask is not None:
        lines.append(f"NEXT: {_value(next_subtask)}")
    return "\n".join(lines)


def parse_decomposition(text: str) -> list[str]:
    """The steps of a decomposition answer (numbered or bulleted lines); never raises."""
    steps = [m.group(1) for line in (text or "").splitlines() if (m := _NUMBERED.match(line))]
    if steps:
        return steps
    # A model that ignored the numbering: one step per non-empty line is the best guess.
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def render_decomposition(steps: list[str]) -> str:
    return "\n".join(f"{i}. {step}" for i, step in enumerate(steps, start=1))
