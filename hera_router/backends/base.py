"""The model-backend protocol every edge and cloud client implements.

A backend turns chat messages into one generation and reports what it cost in tokens and time.
Failures are raised as the typed exceptions below so that tasks can map them to retry, fail, or
fall back to the cloud without knowing which client raised them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "error"]
BackendRole = Literal["edge", "cloud"]
"""Which tier a backend serves: settings ``edge``/``cloud``, priced differently (``pricing.py``)."""


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    idempotency_key: str | None = None
    """Sent as the ``Idempotency-Key`` header by the HTTP backends: a provider that honours it
    bills a retried call once; the same key is the call's row in ``model_calls``."""


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float


@dataclass(frozen=True, slots=True)
class Generation:
    """One completed model call."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: FinishReason
    model: str
    backend: str
    logprobs: tuple[TokenLogprob, ...] | None = None
    attempts: int = 1
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class ModelBackend(Protocol):
    """What the workers call. Implementations must be safe to call from several threads."""

    name: str
    """Registry name (``tgi``, ``openai``, ``local``, ``sim``)."""
    model: str
    """The model this backend answers with; also the key of its price."""

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation: ...


class BackendError(Exception):
    """Base of every backend failure. ``backend`` names the configured backend."""

    retryable: bool = False

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend

    def __reduce__(self) -> tuple[Any, ...]:
        # The constructors take more than the one formatted message in ``args``, so the default
        # pickling (``cls(*args)``) would fail when an error crosses a process boundary.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(cls: type[BackendError], args: tuple[Any, ...], state: dict[str, Any]) -> BackendError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class BackendConfigError(BackendError):
    """The backend is misconfigured (unknown name, missing URL, unreachable at start-up)."""


class BackendUnavailable(BackendError):  # noqa: N818 - the name the tasks already map
    """Transient: connection refused, 5xx, 429 after retries; the call may succeed later or elsewhere.

    ``retry_after_s`` is the server's ``Retry-After`` (or, for :class:`CircuitOpen`, the time until
    the breaker lets a trial call through): a task can use it as its retry countdown instead of
    blocking a worker thread.
    """

    retryable = True

    def __init__(
        self,
        backend: str,
        message: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(backend, message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class BackendTimeout(BackendUnavailable):
    """The call did not finish within the configured timeout."""


class BackendRejected(BackendError):  # noqa: N818 - the name the tasks already map
    """The server refused the request (4xx other than 429): retrying the same call will not help."""

    def __init__(self, backend: str, message: str, status_code: int | None = None) -> None:
        super().__init__(backend, message)
        self.status_code = status_code


class CircuitOpen(BackendUnavailable):
    """The backend's circuit breaker is open: recent calls failed, so this one was not attempted."""


def mean_logprob(generation: Generation) -> float | None:
    """The answer's mean token logprob: from the tokens if the backend returned them, else from a
    backend that reports only the mean (the simulator), else unknown."""
    if generation.logprobs:
        return sum(token.logprob for token in generation.logprobs) / len(generation.logprobs)
    reported = generation.extra.get("mean_logprob")
    try:
        return float(reported) if reported is not None else None
    except ValueError:
        return None
