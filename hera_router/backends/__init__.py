"""Model backends: TGI, OpenAI-compatible, local transformers, simulated, echo; retries and pricing.

Obtain one per role with :func:`hera_router.backends.registry.create_backend`; clients are imported
only when a backend of their kind is created.
"""

from hera_router.backends.base import (
    BackendConfigError,
    BackendError,
    BackendRejected,
    BackendRole,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    Generation,
    GenerationParams,
    Message,
    ModelBackend,
    TokenLogprob,
)
from hera_router.backends.pricing import cost_usd, generation_cost
from hera_router.backends.registry import available_backends, create_backend, register_backend

__all__ = [
    "BackendConfigError",
    "BackendError",
    "BackendRejected",
    "BackendRole",
    "BackendTimeout",
    "BackendUnavailable",
    "CircuitOpen",
    "Generation",
    "GenerationParams",
    "Message",
    "ModelBackend",
    "TokenLogprob",
    "available_backends",
    "cost_usd",
    "create_backend",
    "generation_cost",
    "register_backend",
]
