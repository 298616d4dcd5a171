from __future__ import annotations

from hera_router.backends.base import GenerationParams, Message, ModelBackend
from hera_router.backends.chatml import parse_chatml, render_chatml
from hera_router.backends.echo import EchoBackend


def test_echo_answers_the_last_user_message_with_exact_word_counts() -> None:
    backend = EchoBackend()
    messages = [Message("system", "be brief"), Message("user", "what is two plus two")]
    generation = backend.generate(messages, GenerationParams())
    assert isinstance(backend, ModelBackend)
    assert generation.text == "echo: what is two plus two"
    assert generation.prompt_tokens == 7
    assert generation.completion_tokens == 6
    assert generation.finish_reason == "stop"
    assert generation.logprobs is None


def test_echo_honours_max_new_tokens_and_stop_sequences() -> None:
    backend = EchoBackend()
    long = backend.generate([Message("user", "a b c d e f")], GenerationParams(max_new_tokens=3))
    assert (long.text, long.completion_tokens, long.finish_reason) == ("echo: a b", 3, "length")
    stopped = backend.generate([Message("user", "a b STOP c")], GenerationParams(stop=("STOP",)))
    assert (stopped.text, stopped.completion_tokens, stopped.finish_reason) == ("echo: a b", 3, "stop")


def test_echo_logprob_tokens_concatenate_to_the_text() -> None:
    generation = EchoBackend().generate([Message("user", "x y")], GenerationParams(logprobs=True))
    assert generation.logprobs is not None
    assert "".join(t.token for t in generation.logprobs) == generation.text


def test_chatml_round_trip() -> None:
    messages = [
        Message("system", "sys"),
        Message("user", "line one\nline two"),
        Message("assistant", "ok"),
        Message("user", "and?"),
    ]
    prompt = render_chatml(messages)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert parse_chatml(prompt) == messages


def test_a_trailing_assistant_message_is_a_prefill_left_open() -> None:
    messages = [Message("user", "q"), Message("assistant", "The answer is")]
    prompt = render_chatml(messages)
    assert prompt.endswith("<|im_start|>assistant\nThe answer is")
    assert parse_chatml(prompt) == messages


def test_a_plain_prompt_is_one_user_message() -> None:
    assert parse_chatml("Once upon a time") == [Message("user", "Once upon a time")]
