"""``tgi``: a Text Generation Inference server through ``huggingface_hub.InferenceClient``.

Two modes, chosen by ``use_chat``:

- ``chat_completion`` (default): TGI's Messages API (``/v1/chat/completions``); the server applies
  the model's own chat template and reports ``usage`` token counts.
- ``text_generation``: TGI's native route (``POST /``) with a ChatML-rendered prompt
  (``chatml.py``). Token counts come from the response ``details``: ``generated_tokens`` for the
  completion and the length of ``prefill`` for the prompt, which TGI only fills in when asked for
  ``decoder_input_details``. We ask for it rather than calling ``/tokenize`` separately: one round
  trip instead of two, at the price of one small (id, text, logprob) record per prompt token in
  the response.

Not the legacy ``text-generation`` package: it pins ``huggingface-hub<1``, which cannot share an
environment with transformers 5.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx2
from huggingface_hub import InferenceClient, constants, get_session, set_client_factory
from huggingface_hub.errors import (
    GenerationError,
    HfHubHTTPError,
    IncompleteGenerationError,
    InferenceTimeoutError,
    OfflineModeIsEnabled,
    OverloadedError,
    TextGenerationError,
    ValidationError,
)

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

_FINISH: dict[str, FinishReason] = {
    "length": "length",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "stop": "stop",
}


class TGIBackend:
    """Thread-safe: ``huggingface_hub`` shares one pooled ``httpx2.Client`` across threads."""

    name = "tgi"

    def __init__(
        self,
        *,
        url: str,
        model: str,
        timeout_s: float,
        api_key: str | None = None,
        use_chat: bool = True,
        max_new_tokens: int = 256,
    ) -> None:
        allow_self_hosted_servers_offline()
        self.url = url.rstrip("/")
        self.model = model
        self.use_chat = use_chat
        self.max_new_tokens = max_new_tokens
        # Without a token huggingface_hub falls back to the locally logged-in Hugging Face token
        # and sends it to this URL; configure ``api_key`` for servers that need one.
        self._client = InferenceClient(model=self.url, token=api_key, timeout=timeout_s)

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        max_new = min(params.max_new_tokens, self.max_new_tokens)
        started = time.perf_counter()
        try:
            if self.use_chat:
                text, prompt_tokens, completion_tokens, finish, logprobs = self._chat(messages, params, max_new)
            else:
                text, prompt_tokens, completion_tokens, finish, logprobs = self._text_generation(
                    messages, params, max_new
                )
        except BackendError:
            raise
        except Exception as exc:
            raise map_tgi_error(self.name, self.url, exc) from exc
        latency = time.perf_counter() - started
        return Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=latency,
            finish_reason=finish,
            model=self.model,
            backend=self.name,
            logprobs=logprobs if params.logprobs else None,
        )

    def _text_generation(
        self, messages: list[Message], params: GenerationParams, max_new: int
    ) -> tuple[str, int, int, FinishReason, tuple[TokenLogprob, ...]]:
        sampling = params.temperature > 0
        out = self._client.text_generation(
            render_chatml(messages),
            details=True,
            decoder_input_details=True,
            max_new_tokens=max_new,
            # TGI rejects temperature 0; greedy decoding is "no sampling".
            do_sample=sampling,
            temperature=params.temperature if sampling else None,
            seed=params.seed,
            stop=list(params.stop) or None,
        )
        details = out.details
        if details is None:
            raise BackendError(self.name, f"{self.url} answered without generation details; is it TGI?")
        logprobs = tuple(TokenLogprob(token=t.text, logprob=float(t.logprob)) for t in details.tokens)
        return (
            out.generated_text,
            len(details.prefill),
            int(details.generated_tokens),
            _FINISH.get(str(details.finish_reason), "stop"),
            logprobs,
        )

    def _chat(
        self, messages: list[Message], params: GenerationParams, max_new: int
    ) -> tuple[str, int, int, FinishReason, tuple[TokenLogprob, ...]]:
        out = self._client.chat_completion(
            [{"role": m.role, "content": m.content} for m in messages],
            max_tokens=max_new,
            temperature=params.temperature,
            seed=params.seed,
            stop=list(params.stop) or None,
            logprobs=params.logprobs or None,
        )
        choice = out.choices[0]
        usage = out.usage
        logprobs: tuple[TokenLogprob, ...] = ()
        if choice.logprobs is not None and choice.logprobs.content:
            logprobs = tuple(TokenLogprob(token=c.token, logprob=float(c.logprob)) for c in choice.logprobs.content)
        return (
            choice.message.content or "",
            int(usage.prompt_tokens) if usage is not None else 0,
            int(usage.completion_tokens) if usage is not None else 0,
            _FINISH.get(str(choice.finish_reason), "stop"),
            logprobs,
        )

    def probe(self) -> None:
        """Check the server answers ``GET /health``; raise :class:`BackendConfigError` naming the URL if not."""
        try:
            response = get_session().get(f"{self.url}/health", timeout=self._client.timeout)
        except (httpx2.HTTPError, OSError) as exc:
            raise BackendConfigError(self.name, f"cannot reach the TGI server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise BackendConfigError(
                self.name, f"the TGI server at {self.url} is not healthy (GET /health: HTTP {response.status_code})"
            )

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def map_tgi_error(backend: str, url: str, exc: Exception) -> BackendError:  # noqa: PLR0911 - a lookup table
    """The typed error for an exception raised by ``InferenceClient``."""
    if isinstance(exc, InferenceTimeoutError | httpx2.TimeoutException | TimeoutError):
        return BackendTimeout(backend, f"no answer from {url} within the timeout")
    if isinstance(exc, OfflineModeIsEnabled):
        return BackendConfigError(backend, f"huggingface_hub refused to call {url}: {exc}")
    http_error = next((e for e in _causes(exc) if isinstance(e, HfHubHTTPError)), None)
    if http_error is not None:
        response = http_error.response
        detail = _server_message(exc, http_error)
        return error_for_status(backend, response.status_code, detail, retry_after=response.headers.get("retry-after"))
    # Typed TGI errors without a response (streaming): classify by kind.
    if isinstance(exc, ValidationError):
        return BackendRejected(backend, f"{url} rejected the request: {exc}")
    if isinstance(exc, OverloadedError | GenerationError | IncompleteGenerationError | TextGenerationError):
        return BackendUnavailable(backend, f"{url} failed to generate: {exc}")
    if isinstance(exc, httpx2.TransportError | ConnectionError):
        return BackendUnavailable(backend, f"cannot reach {url}: {exc}")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return BackendError(backend, f"unexpected answer from {url}: {exc!r}")
    return BackendError(backend, f"call to {url} failed: {exc!r}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _server_message(exc: Exception, http_error: HfHubHTTPError) -> str:
    if isinstance(exc, TextGenerationError) and str(exc):
        return str(exc)  # TGI's own ``error`` field, already parsed by huggingface_hub
    return http_error.server_message or str(http_error).splitlines()[0]


_offline_patch_lock = threading.Lock()
_offline_patched = False


def allow_self_hosted_servers_offline() -> None:
    """Let ``InferenceClient`` reach self-hosted servers while ``HF_HUB_OFFLINE=1``.

    Workers run with ``HF_HUB_OFFLINE=1`` so that no model is ever fetched from the Hub at run time.
    But huggingface_hub enforces it with a request hook on its one shared HTTP client that refuses
    *every* request, including those to our own TGI server. We install a client factory whose hook
    still refuses requests to the Hub's hosts (the point of offline mode) and lets every other
    host through. Done once per process, before the first request, and only in offline mode.
    """
    global _offline_patched  # noqa: PLW0603 - one process-wide patch of a process-wide client
    if _offline_patched or not constants.is_offline_mode():
        return
    with _offline_patch_lock:
        if _offline_patched:
            return
        hub_hosts = {
            host for host in (urlparse(constants.ENDPOINT).hostname, "huggingface.co", "hf.co") if host is not None
        }

        def refuse_only_the_hub(request: httpx2.Request) -> None:
            host = request.url.host
            if host in hub_hosts or any(host.endswith(f".{hub}") for hub in hub_hosts):
                raise OfflineModeIsEnabled(f"Cannot reach {request.url}: offline mode is enabled (HF_HUB_OFFLINE=1)")

        def client_factory() -> httpx2.Client:
            return httpx2.Client(event_hooks={"request": [refuse_only_the_hub]}, follow_redirects=True, timeout=None)

        set_client_factory(client_factory)
        _offline_patched = True
