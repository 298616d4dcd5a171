"""The batch parser on its own: line numbering, encodings, and the sentences it reports."""

from __future__ import annotations

import pytest

from hera_router.api.errors import TooLargeError
from hera_router.api.validation import SubmissionLimits, parse_items, parse_jsonl

LIMITS = SubmissionLimits(
    max_batch_requests=10, max_input_chars=50, policies=frozenset({"all-llm", "all-slm"}), default_policy="all-llm"
)


def messages(data: bytes | str) -> list[str]:
    return [rejection.message for rejection in parse_jsonl(data, LIMITS).rejected]


def test_line_numbers_count_blank_lines_and_accept_crlf_and_a_bom() -> None:
    parsed = parse_jsonl(b'\xef\xbb\xbf{"input": "a"}\r\n\r\n{"input": "b", "custom_id": "k"}\r\n', LIMITS)

    assert [(line, item.input) for line, item in parsed.accepted] == [(1, "a"), (3, "b")]
    assert parsed.rejected == []


def test_str_and_bytes_parse_alike() -> None:
    text = '{"input": "é"}\n{"input": 1}\n'

    assert messages(text) == messages(text.encode()) == ["line 2: `input`: Input should be a valid string"]


def test_each_problem_is_a_sentence_naming_the_line() -> None:
    data = b"\n".join(
        [
            b'{"input": "ok", "custom_id": "a1"}',
            b"\xff\xfe garbage",
            b'{"input": "ok", "custom_id": "a1"}',
            b'{"input": "' + b"x" * 51 + b'"}',
            b'{"input": "ok", "policy": "oracle"}',
            b'{"input": "ok", "priority": 1.5, "extra": 1}',
            b"null",
        ]
    )

    assert messages(data) == [
        "line 2: not UTF-8 text (byte 0xff at column 1)",
        "line 3: `custom_id` 'a1' appears twice in the file (first on line 1)",
        "line 4: `input` has 51 characters, more than the limit of 50 (HERA_API__MAX_INPUT_CHARS)",
        "line 5: `policy` 'oracle' is not a known policy; choose one of all-llm, all-slm",
        "line 6: `priority`: Input should be a valid integer; `extra` is not a known field "
        "(known fields: input, custom_id, metadata, policy, priority, gold_answer, cost_cap_usd, latency_budget_s)",
        "line 7: expected a JSON object with an `input` field, got null",
    ]


def test_a_rejected_line_does_not_claim_its_custom_id() -> None:
    parsed = parse_jsonl(b'{"custom_id": "a"}\n{"input": "x", "custom_id": "a"}\n', LIMITS)

    assert [line for line, _ in parsed.accepted] == [2]


def test_list_items_are_numbered_as_items() -> None:
    parsed = parse_items([{"input": "a"}, 3], LIMITS)

    assert [r.message for r in parsed.rejected] == [
        "item 2: expected a JSON object with an `input` field, got a number"
    ]


def test_too_many_lines_rejects_the_whole_file() -> None:
    with pytest.raises(TooLargeError, match="the file holds 11 requests, more than the 10"):
        parse_jsonl("\n".join('{"input": "x"}' for _ in range(11)), LIMITS)
