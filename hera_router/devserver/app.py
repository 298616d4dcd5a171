"""The dev model server: any :class:`ModelBackend` behind the TGI and OpenAI protocols.

Tests and the demo point the real clients (``huggingface_hub.InferenceClient``, ``openai``) at it
over HTTP, so what they exercise is the wire protocol, not a mock. Shapes follow what TGI and
OpenAI answer; what a backend does not report is filled in plainly:

- Token ids: the protocol's backends report text and counts, not vocabulary ids, so ``id`` fields
  carry the token's position. ``prefill`` has one entry per prompt token with ``text`` empty and
  ``logprob`` null.
- Streaming: the backend generates the whole answer, then it is sent as one event per token
  (when the backend reports tokens that concatenate to the text, else as one event).
- A raw prompt (TGI ``inputs``, ``/v1/completions``) written in ChatML is parsed back into
  messages; any other prompt is one user message.

Faults (``faults.py``) are configured with the constructor or ``POST /_faults`` (loopback only).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import ipaddress
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hera_router.backends.base import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    Generation,
    GenerationParams,
    Message,
    ModelBackend,
    Role,
)
from hera_router.backends.chatml import parse_chatml
from hera_router.devserver.faults import Fault, FaultConfig, FaultInjector

Protocol = Literal["tgi", "openai"]
MAX_INPUT_TOKENS = 8192
MAX_TOTAL_TOKENS = 16384
DEFAULT_MAX_NEW_TOKENS = 256
OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # the OpenAI API's documented default


def _version() -> str:
    try:
        return importlib.metadata.version("hera-router")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


_TGI_FINISH = {"stop": "eos_token", "length": "length", "error": "eos_token"}


# ---- request bodies (unknown fields are ignored, as the real servers do) ----


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TGIParameters(_Lenient):
    max_new_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    do_sample: bool = False
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    details: bool = False
    decoder_input_details: bool = False


class TGIRequest(_Lenient):
    inputs: str
    parameters: TGIParameters = Field(default_factory=TGIParameters)
    stream: bool = False


class ChatContentPart(_Lenient):
    type: str = "text"
    text: str = ""


class ChatMessage(_Lenient):
    role: str
    content: str | list[ChatContentPart] | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatRequest(_Lenient):
    model: str | None = None
    messages: list[ChatMessage]
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class CompletionRequest(_Lenient):
    model: str | None = None
    prompt: str | list[str]
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def _role(role: str) -> Role:
    # OpenAI's "developer" is the newer name of "system"; tool results read as user turns.
    if role in ("system", "developer"):
        return "system"
    return "assistant" if role == "assistant" else "user"


def _content(content: str | list[ChatContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if part.type == "text")


def _pieces(generation: Generation) -> list[tuple[str, float]]:
    """The answer as (token text, logprob) pieces that concatenate back to the text."""
    tokens = generation.logprobs or ()
    if tokens and "".join(t.token for t in tokens) == generation.text:
        return [(t.token, t.logprob) for t in tokens]
    return [(generation.text, 0.0)] if generation.text else []


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(protocol: Protocol, status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    """An error in the shape the protocol's clients parse."""
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    if protocol == "tgi":
        kind = "overloaded" if status == 429 else "validation" if status < 500 else "generation"
        return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=headers)
    kind = "rate_limit_exceeded" if status == 429 else "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(backend: ModelBackend, *, faults: FaultConfig | FaultInjector | None = None) -> FastAPI:
    """A FastAPI app serving ``backend`` over TGI and OpenAI routes; ``app.state.faults`` is the injector."""
    injector = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
    app = FastAPI(title="hera-router dev model server", version=_version(), docs_url=None, redoc_url=None)
    app.state.backend = backend
    app.state.faults = injector
    run = _Runner(backend, injector)
    app.include_router(_tgi_routes(run, backend))
    app.include_router(_openai_routes(run, backend.model))
    app.include_router(_fault_routes(injector))
    return app


class _Runner:
    """Applies the faults, then calls the backend; errors come back as protocol-shaped responses."""

    def __init__(self, backend: ModelBackend, injector: FaultInjector) -> None:
        self.backend = backend
        self.injector = injector

    async def __call__(
        self, messages: list[Message], params: GenerationParams, protocol: Protocol
    ) -> Generation | JSONResponse:
        fault: Fault | None = self.injector.next_fault()
        if self.injector.latency_s > 0:
            await asyncio.sleep(self.injector.latency_s)
        if fault is not None:
            return _error(protocol, fault.status, f"injected fault: HTTP {fault.status}", fault.retry_after)
        try:
            # Backends are synchronous (a local model computes for seconds): keep the loop free.
            return await run_in_threadpool(self.backend.generate, messages, params)
        except BackendRejected as exc:
            return _error(protocol, 422 if protocol == "tgi" else 400, str(exc))
        except BackendUnavailable as exc:
            retry_after = None if exc.retry_after_s is None else f"{exc.retry_after_s:.3f}"
            return _error(protocol, 503, str(exc), retry_after)
        except BackendError as exc:
            return _error(protocol, 500, str(exc))


def _tgi_routes(run: _Runner, backend: ModelBackend) -> APIRouter:
    router = APIRouter()
    model_id = backend.model

    def tgi_params(p: TGIParameters, details: bool) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=p.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
            temperature=(p.temperature or 1.0) if p.do_sample else 0.0,
            stop=tuple(p.stop),
            seed=p.seed,
            # Token-level details need the backend's tokens; ask for them only when they are shown.
            logprobs=details,
        )

    def tgi_tokens(pieces: Iterable[tuple[str, float]]) -> list[dict[str, Any]]:
        return [{"id": i, "text": t, "logprob": lp, "special": False} for i, (t, lp) in enumerate(pieces)]

    def tgi_body(g: Generation, p: TGIParameters, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"generated_text": g.text}
        if p.details:
            prefill = [{"id": i, "text": "", "logprob": None} for i in range(g.prompt_tokens)]
            body["details"] = {
                "finish_reason": _TGI_FINISH[g.finish_reason],
                "generated_tokens": g.completion_tokens,
                "seed": seed,
                "prefill": prefill if p.decoder_input_details else [],
                "tokens": tgi_tokens(_pieces(g)),
            }
        return body

    async def tgi_stream(g: Generation, seed: int | None) -> AsyncIterator[bytes]:
        pieces = _pieces(g) or [("", 0.0)]
        for i, (text, logprob) in enumerate(pieces):
            last = i == len(pieces) - 1
            event: dict[str, Any] = {
                "index": i,
                "token": {"id": i, "text": text, "logprob": logprob, "special": False},
                "generated_text": g.text if last else None,
                "details": None,
                "top_tokens": None,
            }
            if last:
                event["details"] = {
                    "finish_reason": _TGI_FINISH[g.finish_reason],
                    "generated_tokens": g.completion_tokens,
                    "seed": seed,
                    "input_length": g.prompt_tokens,
                }
            yield _sse(event)

    async def tgi_generate(body: TGIRequest, *, stream: bool, as_list: bool) -> Response:
        params = tgi_params(body.parameters, details=body.parameters.details or stream)
        result = await run(parse_chatml(body.inputs), params, "tgi")
        if isinstance(result, Response):
            return result
        if stream:
            return StreamingResponse(tgi_stream(result, params.seed), media_type="text/event-stream")
        payload = tgi_body(result, body.parameters, params.seed)
        return JSONResponse([payload] if as_list else payload)

    @router.post("/", response_model=None)
    async def tgi_compat(body: TGIRequest) -> Response:
        """TGI's compatibility route: what ``InferenceClient.text_generation`` posts to."""
        return await tgi_generate(body, stream=body.stream, as_list=True)

    @router.post("/generate", response_model=None)
    async def tgi_generate_route(body: TGIRequest) -> Response:
        return await tgi_generate(body, stream=False, as_list=False)

    @router.post("/generate_stream", response_model=None)
    async def tgi_generate_stream(body: TGIRequest) -> Response:
        return await tgi_generate(body, stream=True, as_list=False)

    @router.get("/info")
    async def tgi_info() -> dict[str, Any]:
        return {
            "model_id": model_id,
            "model_sha": None,
            "model_dtype": "float32",
            "model_device_type": "cpu",
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": 1,
            "max_stop_sequences": 4,
            "max_input_tokens": MAX_INPUT_TOKENS,
            "max_total_tokens": MAX_TOTAL_TOKENS,
            "validation_workers": 1,
            "max_client_batch_size": 1,
            "router": "hera-router-devserver",
            "version": _version(),
            "sha": None,
            "docker_label": None,
            "backend": backend.name,
        }

    @router.get("/health")
    async def tgi_health() -> Response:
        return Response(status_code=200)

    return router


def _openai_routes(run: _Runner, model_id: str) -> APIRouter:
    router = APIRouter()

    def completion_id(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:24]}"

    def usage(g: Generation) -> dict[str, int]:
        return {
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.completion_tokens,
            "total_tokens": g.prompt_tokens + g.completion_tokens,
        }

    @router.get("/v1/models")
    async def openai_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "hera-router"}],
        }

    @router.post("/v1/chat/completions", response_model=None)
    async def openai_chat(body: ChatRequest) -> Response:
        messages = [Message(role=_role(m.role), content=_content(m.content)) for m in body.messages]
        params = GenerationParams(
            max_new_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_NEW_TOKENS,
            temperature=body.temperature if body.temperature is not None else 0.0,
            stop=_stops(body.stop),
            seed=body.seed,
            logprobs=bool(body.logprobs) or body.stream,
        )
        result = await run(messages, params, "openai")
        if isinstance(result, Response):
            return result
        g, created, cid = result, int(time.time()), completion_id("chatcmpl")
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(chat_stream(g, cid, created, include_usage), media_type="text/event-stream")
        logprobs: dict[str, Any] | None = None
        if body.logprobs:
            content: list[dict[str, Any]] = [
                {"token": t, "logprob": lp, "bytes": None, "top_logprobs": []} for t, lp in _pieces(g)
            ]
            logprobs = {"content": content}
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model_id,
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": g.text},
                        "logprobs": logprobs,
                        "finish_reason": g.finish_reason if g.finish_reason != "error" else "stop",
                    }
                ],
                "usage": usage(g),
            }
        )

    async def chat_stream(g: Generation, cid: str, created: int, include_usage: bool) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_id,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        yield _sse(chunk({"role": "assistant", "content": ""}, None))
        for text, _ in _pieces(g):
            yield _sse(chunk({"content": text}, None))
        yield _sse(chunk({}, g.finish_reason if g.finish_reason != "error" else "stop"))
        if include_usage:
            last = chunk({}, None) | {"choices": [], "usage": usage(g)}
            yield _sse(last)
        yield _sse("[DONE]")

    @router.post("/v1/completions", response_model=None)
    async def openai_completions(body: CompletionRequest) -> Response:
        prompt = body.prompt if isinstance(body.prompt, str) else "".join(body.prompt)
        params = GenerationParams(
            max_new_tokens=body.max_tokens or OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS,
            temperature=body.temperature if body.temperature is not None else 0.0,
            stop=_stops(body.stop),
            seed=body.seed,
            logprobs=body.logprobs is not None or body.stream,
        )
        result = await run(parse_chatml(prompt), params, "openai")
        if isinstance(result, Response):
            return result
        g, created, cid = result, int(time.time()), completion_id("cmpl")
        finish = g.finish_reason if g.finish_reason != "error" else "stop"

        def choice(text: str, finish_reason: str | None, logprobs: dict[str, Any] | None) -> dict[str, Any]:
            return {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}

        def envelope(choices: list[dict[str, Any]]) -> dict[str, Any]:
            return {"id": cid, "object": "text_completion", "created": created, "model": model_id, "choices": choices}

        if body.stream:

            async def events() -> AsyncIterator[bytes]:
                for text, _ in _pieces(g):
                    yield _sse(envelope([choice(text, None, None)]))
                yield _sse(envelope([choice("", finish, None)]))
                if body.stream_options is not None and body.stream_options.include_usage:
                    yield _sse(envelope([]) | {"usage": usage(g)})
                yield _sse("[DONE]")

            return StreamingResponse(events(), media_type="text/event-stream")
        logprobs = None
        if body.logprobs is not None:
            pieces = _pieces(g)
            logprobs = {
                "tokens": [t for t, _ in pieces],
                "token_logprobs": [lp for _, lp in pieces],
                "top_logprobs": None,
                "text_offset": None,
            }
        return JSONResponse(envelope([choice(g.text, finish, logprobs)]) | {"usage": usage(g)})

    return router


def _fault_routes(injector: FaultInjector) -> APIRouter:
    """Admin routes to change the faults at run time; loopback clients only."""
    router = APIRouter()

    @router.get("/_faults", response_model=None)
    async def faults_show(request: Request) -> Response:
        if not _is_loopback(request):
            return JSONResponse({"error": "fault injection is only open to loopback clients"}, status_code=403)
        return JSONResponse(injector.snapshot())

    @router.post("/_faults", response_model=None)
    async def faults_set(request: Request, config: FaultConfig) -> Response:
        if not _is_loopback(request):
            return JSONResponse({"error": "fault injection is only open to loopback clients"}, status_code=403)
        injector.configure(config)
        return JSONResponse(injector.snapshot())

    @router.delete("/_faults", response_model=None)
    async def faults_reset(request: Request) -> Response:
        if not _is_loopback(request):
            return JSONResponse({"error": "fault injection is only open to loopback clients"}, status_code=403)
        injector.reset()
        return JSONResponse(injector.snapshot())

    return router
