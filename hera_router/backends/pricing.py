"""What one model call cost, in USD, component by component.

Token prices (USD per 1M input/output tokens) come from ``Settings.price_of`` by model name (a
``HERA_MODELS`` tier's prices first, then ``HERA_PRICES``); models without a price (a self-hosted
edge SLM) cost nothing for their tokens. The paper counts only those cloud token dollars; the full
model (beyond the paper, §5's "edge device power consumption and hardware costs, data transfer
expenses") adds, per call:

- GPU time on the edge: the call's measured seconds × the device's price per GPU-second
  (``HERA_EDGE_COST_PER_GPU_SECOND``, or the tier's ``gpu_usd_per_second``);
- energy on the edge: watts × seconds × USD per kWh (``HERA_COSTS__EDGE_POWER_W`` or the tier's
  ``power_w``, and ``HERA_COSTS__ENERGY_USD_PER_KWH``);
- transfer: the bytes a cloud call sends off the edge (its prompt, UTF-8) × USD per GB (10^9 B).

Cloud calls are never priced by time: the provider bills tokens. Every component is stored on the
call (``model_calls``); ``total`` is their sum in a fixed order, and is what ``cost_usd`` holds.

A cloud model must have a price: :func:`require_cloud_prices` refuses a configuration whose cloud
backend (or a cloud tier) names a model no price covers, since its calls would be billed $0 and
no budget would ever trip. A price of 0 set explicitly, or ``allow_unpriced``, accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hera_router.backends.base import BackendRole, Generation, Message
from hera_router.config import BackendSettings, ModelTier, Settings, SettingsError

_PER_TOKEN = 1e-6
UNBILLED_BACKENDS = frozenset({"sim", "echo"})
"""Backends that call no provider (the simulated world, the echo model): nothing bills them."""
_JOULES_PER_KWH = 3.6e6
_BYTES_PER_GB = 1e9


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """One call's cost by component, in USD."""

    tokens_usd: float = 0.0
    gpu_usd: float = 0.0
    energy_usd: float = 0.0
    transfer_usd: float = 0.0
    bytes_sent: int = 0

    @property
    def total(self) -> float:
        """The call's cost: the components added in this order (the stored ``cost_usd``)."""
        return self.tokens_usd + self.gpu_usd + self.energy_usd + self.transfer_usd


def cost_columns(breakdown: CostBreakdown) -> dict[str, float]:
    """The ``model_calls`` columns of a breakdown (what ``ModelCallRepository.finish`` stores)."""
    return {
        "tokens_cost_usd": breakdown.tokens_usd,
        "gpu_cost_usd": breakdown.gpu_usd,
        "energy_cost_usd": breakdown.energy_usd,
        "transfer_cost_usd": breakdown.transfer_usd,
        "bytes_sent": breakdown.bytes_sent,
    }


def bytes_sent(messages: Sequence[Message]) -> int:
    """Bytes of a prompt on the wire (UTF-8 content; the JSON framing is left out)."""
    return sum(len(message.content.encode()) for message in messages)


def call_cost(
    settings: Settings,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    latency_s: float,
    role: BackendRole,
    sent_bytes: int = 0,
) -> CostBreakdown:
    """Every component of one call's cost; ``sent_bytes`` counts only on the cloud."""
    price = settings.price_of(model)
    tokens = (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) * _PER_TOKEN
    if role == "cloud":
        transfer = settings.costs.transfer_usd_per_gb * max(0, sent_bytes) / _BYTES_PER_GB
        return CostBreakdown(tokens_usd=tokens, transfer_usd=transfer, bytes_sent=max(0, sent_bytes))
    seconds = max(0.0, latency_s)
    tier = settings.tier_of(model)
    gpu_price = (
        tier.gpu_usd_per_second if tier is not None and tier.gpu_usd_per_second else settings.edge_cost_per_gpu_second
    )
    watts = tier.power_w if tier is not None and tier.power_w else settings.costs.edge_power_w
    energy = watts * seconds / _JOULES_PER_KWH * settings.costs.energy_usd_per_kwh
    return CostBreakdown(tokens_usd=tokens, gpu_usd=gpu_price * seconds, energy_usd=energy)


def cost_usd(
    settings: Settings,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    latency_s: float,
    role: BackendRole,
) -> float:
    """Cost of one call without transfer: token prices plus, on the edge, GPU time and energy."""
    return call_cost(settings, model, prompt_tokens, completion_tokens, latency_s, role).total


def generation_breakdown(
    settings: Settings, generation: Generation, role: BackendRole, sent_bytes: int = 0
) -> CostBreakdown:
    """:func:`call_cost` of a completed :class:`Generation`."""
    return call_cost(
        settings,
        generation.model,
        generation.prompt_tokens,
        generation.completion_tokens,
        generation.latency_s,
        role,
        sent_bytes,
    )


def generation_cost(settings: Settings, generation: Generation, role: BackendRole) -> float:
    """:func:`cost_usd` of a completed :class:`Generation`."""
    return generation_breakdown(settings, generation, role).total


def _tier_priced(tier: ModelTier) -> bool:
    return bool({"input_per_mtok", "output_per_mtok"} & tier.model_fields_set)


def unpriced_cloud_models(settings: Settings) -> list[tuple[str, BackendSettings]]:
    """The cloud backends whose model no price covers: ``(setting, backend)`` pairs, where the
    setting names where the backend is configured (``HERA_CLOUD`` or a ``HERA_MODELS`` tier).

    A model is priced when ``HERA_PRICES`` (with its defaults) has it, even at 0, or when a tier
    serving it states its token prices. Simulated and echo backends bill nothing and are skipped,
    as is a backend with ``allow_unpriced``.
    """
    candidates: list[tuple[str, BackendSettings]] = [("HERA_CLOUD", settings.cloud)]
    cloud_tiers = [tier for tier in settings.models if tier.role == "cloud"]
    candidates += [(f"HERA_MODELS tier {tier.name!r}", tier.backend) for tier in cloud_tiers]
    missing: list[tuple[str, BackendSettings]] = []
    for where, backend in candidates:
        if backend.backend in UNBILLED_BACKENDS or backend.allow_unpriced or backend.model in settings.prices:
            continue
        tier = settings.tier_of(backend.model)
        if tier is not None and (_tier_priced(tier) or tier.name in settings.prices):
            continue
        missing.append((where, backend))
    return missing


def require_cloud_prices(settings: Settings) -> None:
    """Raise :class:`SettingsError` naming the first cloud model without a price and how to set one."""
    missing = unpriced_cloud_models(settings)
    if not missing:
        return
    where, backend = missing[0]
    allow = "HERA_CLOUD__ALLOW_UNPRICED=true" if where == "HERA_CLOUD" else '"allow_unpriced": true in its backend'
    raise SettingsError(
        f"the cloud model {backend.model!r} ({where}) has no price, so its calls would cost $0 and no budget "
        f'would count them; set HERA_PRICES=\'{{"{backend.model}": {{"input_per_mtok": ..., '
        f'"output_per_mtok": ...}}}}\' (0 is a price), or {allow} to bill it $0'
    )
