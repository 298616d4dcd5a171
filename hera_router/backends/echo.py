"""``echo``: an instant, deterministic model for smoke checks, the dev server's default and benchmarks.

It answers with the last user message prefixed by ``echo:``. Tokens are whitespace-separated
words, so token counts are exact and easy to assert on: a prompt's tokens are the words of all
its messages. It honours ``max_new_tokens`` (finish ``length``) and stop sequences (finish
``stop``), and reports a logprob of 0 for every token (it is certain of what it says).
"""

from __future__ import annotations

import time

from hera_router.backends.base import (
    FinishReason,
    Generation,
    GenerationParams,
    Message,
    TokenLogprob,
)

ECHO_PREFIX = "echo:"


def count_words(text: str) -> int:
    return len(text.split())


class EchoBackend:
    """Thread-safe: it keeps no state between calls."""

    name = "echo"

    def __init__(self, model: str = "echo") -> None:
        self.model = model

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        started = time.perf_counter()
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        words = [ECHO_PREFIX, *last_user.split()]
        finish: FinishReason = "stop"
        if len(words) > params.max_new_tokens:
            words, finish = words[: params.max_new_tokens], "length"
        text = " ".join(words)
        for stop in params.stop:
            cut = text.find(stop) if stop else -1
            if cut >= 0:
                text, finish = text[:cut].rstrip(), "stop"
                words = text.split()
        logprobs = None
        if params.logprobs:
            # Pieces that concatenate back to the text exactly, as a tokenizer's would.
            pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
            logprobs = tuple(TokenLogprob(token=p, logprob=0.0) for p in pieces)
        return Generation(
            text=text,
            prompt_tokens=sum(count_words(m.content) for m in messages),
            completion_tokens=len(words),
            latency_s=time.perf_counter() - started,
            finish_reason=finish,
            model=self.model,
            backend=self.name,
            logprobs=logprobs,
        )
