"""What one model call cost, in USD.

Token prices (USD per 1M input/output tokens) come from ``Settings.prices`` by model name; models
without a price (a self-hosted edge SLM) cost nothing for their tokens. The edge can additionally
be priced by GPU time (``edge_cost_per_gpu_second`` × the call's latency) so that operators who
pay for the box, not per token, still see what a step costs. Cloud calls are never priced by time:
the provider bills tokens.
"""

from __future__ import annotations

from hera_router.backends.base import BackendRole, Generation
from hera_router.config import Settings

_PER_TOKEN = 1e-6


def cost_usd(
    settings: Settings,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    latency_s: float,
    role: BackendRole,
) -> float:
    """Cost of one call: token prices of ``model`` plus, on the edge, GPU-seconds if configured."""
    price = settings.price_of(model)
    cost = (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) * _PER_TOKEN
    if role == "edge" and settings.edge_cost_per_gpu_second > 0:
        cost += settings.edge_cost_per_gpu_second * max(0.0, latency_s)
    return cost


def generation_cost(settings: Settings, generation: Generation, role: BackendRole) -> float:
    """:func:`cost_usd` of a completed :class:`Generation`."""
    return cost_usd(
        settings,
        generation.model,
        generation.prompt_tokens,
        generation.completion_tokens,
        generation.latency_s,
        role,
    )
