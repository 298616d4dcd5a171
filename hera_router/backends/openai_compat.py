"""``openai``: any OpenAI-compatible endpoint through the official ``openai`` client.

OpenAI itself, vLLM, llama.cpp's server, TGI's Messages API and the dev server all speak it.
``use_chat`` picks ``/v1/chat/completions`` (default; the server applies the model's template) or
``/v1/completions`` with a ChatML-rendered prompt. The client's own retries are switched off
(``max_retries=0``) so that :mod:`hera_router.backends.resilience` is the only retry policy; with
both, one call could turn into 5 x 5 requests. (Module named ``openai_compat`` so that it never
shadows the ``openai`` package.)
"""

from __future__ import annotations

import time

import openai
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from hera_router.backends.base import (
    BackendConfigError,
    BackendError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    FinishReason,
    Generation,
    GenerationParams,
    Message,
    TokenLogprob,
)
from hera_router.backends.chatml import render_chatml
from hera_router.backends.resilience import error_for_status

OPENAI_API_URL = "https://api.openai.com/v1"

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "eos_token": "stop"}


class OpenAIBackend:
    """Thread-safe: one ``openai.OpenAI`` client (a pooled ``httpx2.Client``) shared by all calls."""

    name = "openai"

    def __init__(
        self,
        *,
        url: str | None,
        model: str,
        timeout_s: float,
        api_key: str | None = None,
        use_chat: bool = True,
        max_new_tokens: int = 256,
    ) -> None:
        self.url = (url or OPENAI_API_URL).rstrip("/")
        if api_key is None and self.url == OPENAI_API_URL:
            raise BackendConfigError(self.name, f"{self.url} needs an API key; set the backend's api_key")
        self.model = model
        self.use_chat = use_chat
        self.max_new_tokens = max_new_tokens
        # Everything passed explicitly: the client would otherwise read OPENAI_API_KEY and
        # OPENAI_BASE_URL from the environment behind the settings' back. Self-hosted servers
        # without auth accept any key; the client insists on a non-empty one.
        self._client = openai.OpenAI(base_url=self.url, api_key=api_key or "unused", timeout=timeout_s, max_retries=0)

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        max_new = min(params.max_new_tokens, self.max_new_tokens)
        started = time.perf_counter()
        try:
            if self.use_chat:
                text, prompt_tokens, completion_tokens, finish, logprobs = self._chat(messages, params, max_new)
            else:
                text, prompt_tokens, completion_tokens, finish, logprobs = self._completion(messages, params, max_new)
        except openai.OpenAIError as exc:
            raise map_openai_error(self.name, self.url, exc) from exc
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise BackendError(self.name, f"unexpected answer from {self.url}: {exc!r}") from exc
        return Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.perf_counter() - started,
            finish_reason=finish,
            model=self.model,
            backend=self.name,
            logprobs=logprobs if params.logprobs else None,
        )

    def _chat(
        self, messages: list[Message], params: GenerationParams, max_new: int
    ) -> tuple[str, int, int, FinishReason, tuple[TokenLogprob, ...]]:
        out: ChatCompletion = self._client.chat.completions.create(
            model=self.model,
            messages=[_chat_message(m) for m in messages],
            max_tokens=max_new,
            temperature=params.temperature,
            # ``omit`` rather than None: None goes out as JSON null, which strict servers reject.
            stop=list(params.stop) or openai.omit,
            seed=openai.omit if params.seed is None else params.seed,
            logprobs=True if params.logprobs else openai.omit,
            extra_headers=_idempotency(params),
        )
        choice = out.choices[0]
        logprobs: tuple[TokenLogprob, ...] = ()
        if choice.logprobs is not None and choice.logprobs.content:
            logprobs = tuple(TokenLogprob(token=c.token, logprob=c.logprob) for c in choice.logprobs.content)
        prompt_tokens, completion_tokens = _usage(out)
        return (
            choice.message.content or "",
            prompt_tokens,
            completion_tokens,
            _FINISH.get(str(choice.finish_reason), "stop"),
            logprobs,
        )

    def _completion(
        self, messages: list[Message], params: GenerationParams, max_new: int
    ) -> tuple[str, int, int, FinishReason, tuple[TokenLogprob, ...]]:
        out: Completion = self._client.completions.create(
            model=self.model,
            prompt=render_chatml(messages),
            max_tokens=max_new,
            temperature=params.temperature,
            stop=list(params.stop) or openai.omit,
            seed=openai.omit if params.seed is None else params.seed,
            logprobs=1 if params.logprobs else openai.omit,
            extra_headers=_idempotency(params),
        )
        choice = out.choices[0]
        logprobs: tuple[TokenLogprob, ...] = ()
        if choice.logprobs is not None and choice.logprobs.tokens and choice.logprobs.token_logprobs:
            logprobs = tuple(
                TokenLogprob(token=t, logprob=float(lp or 0.0))
                for t, lp in zip(choice.logprobs.tokens, choice.logprobs.token_logprobs, strict=False)
            )
        prompt_tokens, completion_tokens = _usage(out)
        return choice.text, prompt_tokens, completion_tokens, _FINISH.get(str(choice.finish_reason), "stop"), logprobs

    def probe(self) -> None:
        """Check the server lists models (``GET /models``); raise :class:`BackendConfigError` naming the URL."""
        try:
            self._client.models.list()
        except openai.APIConnectionError as exc:
            raise BackendConfigError(
                self.name, f"cannot reach the OpenAI-compatible server at {self.url}: {exc}"
            ) from exc
        except openai.APIStatusError as exc:
            raise BackendConfigError(
                self.name, f"the server at {self.url} refused GET /models: HTTP {exc.status_code}"
            ) from exc

    def close(self) -> None:
        self._client.close()


def _chat_message(message: Message) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _usage(out: ChatCompletion | Completion) -> tuple[int, int]:
    # Some compatible servers omit ``usage``; 0 then means "unknown", and the cost follows.
    if out.usage is None:
        return 0, 0
    return out.usage.prompt_tokens, out.usage.completion_tokens


def map_openai_error(backend: str, url: str, exc: openai.OpenAIError) -> BackendError:
    """The typed error for an exception raised by the ``openai`` client."""
    if isinstance(exc, openai.APITimeoutError):
        return BackendTimeout(backend, f"no answer from {url} within the timeout")
    if isinstance(exc, openai.APIConnectionError):
        return BackendUnavailable(backend, f"cannot reach {url}: {exc}")
    if isinstance(exc, openai.APIStatusError):
        code = getattr(exc, "code", None)
        if exc.status_code == 429 and code == "insufficient_quota":
            # OpenAI says 429 for an exhausted budget too; that one does not pass with time.
            return BackendRejected(backend, f"HTTP 429 from {url}: {exc.message}", status_code=429)
        return error_for_status(
            backend, exc.status_code, exc.message, retry_after=exc.response.headers.get("retry-after")
        )
    return BackendError(backend, f"call to {url} failed: {exc!r}")


def _idempotency(params: GenerationParams) -> dict[str, str] | None:
    """The call's ``Idempotency-Key``: providers that honour it bill a retried request once."""
    return {"Idempotency-Key": params.idempotency_key} if params.idempotency_key else None
