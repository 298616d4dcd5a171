"""Text the database cannot store: rejected at the door, per field, never stripped.

Postgres refuses a NUL character (``\\u0000``) in ``text`` and in ``jsonb`` strings
(``UntranslatableCharacter``), and no UTF-8 encoder accepts an unpaired surrogate
(``"\\ud800"`` is valid JSON but not valid Unicode). Reaching the database, either would fail the
whole transaction, so a whole batch, with an error that looks like an outage. They are checked
here instead, field by field, and the line or request that carries one is rejected with a
sentence naming the field. Rejecting rather than stripping keeps what is stored equal to what the
client sent (a stripped NUL would silently change an input, a custom_id or a metadata key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MAX_DEPTH = 64
"""Nesting walked before a value is judged too deep (real metadata is a few levels)."""


def text_problem(text: str) -> str | None:
    """What makes ``text`` unstorable, as the end of a sentence, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    for char in text:
        if "\ud800" <= char <= "\udfff":
            return f"contains an unpaired surrogate (\\u{ord(char):04x}), which is not valid Unicode; remove it"
    return None


def _has_surrogate_or_nul(text: str) -> bool:
    # Fast path: encoding fails on a surrogate, and the NUL check is a C-level scan.
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def value_problem(value: object, field: str, _depth: int = 0) -> str | None:
    """The first unstorable string in ``value`` (keys included), as a sentence naming where it
    is (``metadata.notes[2]``), or None. ``field`` is the path of ``value`` itself."""
    if isinstance(value, str):
        problem = text_problem(value) if _has_surrogate_or_nul(value) else None
        return f"`{field}` {problem}" if problem else None
    if _depth > MAX_DEPTH:
        return f"`{field}` is nested more than {MAX_DEPTH} levels deep"
    items: list[tuple[str, object]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _has_surrogate_or_nul(key):
                return f"a key of `{field}` {text_problem(key)}"
            items.append((f"{field}.{key}", item))
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = [(f"{field}[{index}]", item) for index, item in enumerate(value)]
    for path, item in items:
        if (problem := value_problem(item, path, _depth + 1)) is not None:
            return problem
    return None


def fields_problem(fields: Mapping[str, object]) -> str | None:
    """The first unstorable value among named fields (``{"input": ..., "metadata": ...}``)."""
    for name, value in fields.items():
        if value is not None and (problem := value_problem(value, name)) is not None:
            return problem
    return None
