"""Backends by name: settings pick one per role (``HERA_EDGE__BACKEND``, ``HERA_CLOUD__BACKEND``).

A worker builds its backend once per process (Celery's ``worker_process_init``) and reuses it::

    backend = create_backend(settings, "edge")        # a ResilientBackend around the client
    generation = backend.generate(messages, GenerationParams(max_new_tokens=128))
    cost = generation_cost(settings, generation, "edge")

Factories import their client lazily, so that choosing ``echo`` never imports torch and a missing
optional piece (the simulator, the SmolLM2 package) is reported as a :class:`BackendConfigError`
naming the setting, not as an ImportError at start-up.
"""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable

from hera_router.backends.base import BackendConfigError, BackendRole, ModelBackend
from hera_router.backends.resilience import (
    BreakerState,
    CircuitBreaker,
    Clock,
    ResilientBackend,
    RetryPolicy,
    Sleep,
)
from hera_router.config import ENV_PREFIX, NESTED_DELIMITER, BackendSettings, Settings

BackendFactory = Callable[[BackendSettings, Settings, BackendRole], ModelBackend]
"""Builds the raw client for one role from that role's settings (and the global ones)."""


def setting_name(role: BackendRole, field: str) -> str:
    """The environment variable of a backend setting, e.g. ``HERA_EDGE__URL``, for error messages."""
    return f"{ENV_PREFIX}{role.upper()}{NESTED_DELIMITER}{field.upper()}"


def _require_url(config: BackendSettings, role: BackendRole) -> str:
    if not config.url:
        raise BackendConfigError(
            config.backend, f"{setting_name(role, 'url')} is required for the {config.backend!r} backend"
        )
    return config.url


def _secret(config: BackendSettings) -> str | None:
    return config.api_key.get_secret_value() if config.api_key is not None else None


def _tgi(config: BackendSettings, settings: Settings, role: BackendRole) -> ModelBackend:
    from hera_router.backends.tgi import TGIBackend

    return TGIBackend(
        url=_require_url(config, role),
        model=config.model,
        timeout_s=config.timeout_s,
        api_key=_secret(config),
        use_chat=config.use_chat,
        max_new_tokens=config.max_new_tokens,
    )


def _openai(config: BackendSettings, settings: Settings, role: BackendRole) -> ModelBackend:
    from hera_router.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(
        url=config.url,
        model=config.model,
        timeout_s=config.timeout_s,
        api_key=_secret(config),
        use_chat=config.use_chat,
        max_new_tokens=config.max_new_tokens,
    )


def _local(config: BackendSettings, settings: Settings, role: BackendRole) -> ModelBackend:
    from hera_router.backends.local import resolve_checkpoint, shared_local_backend

    checkpoint = resolve_checkpoint(config.model, settings.artifacts)
    return shared_local_backend(
        checkpoint, model=config.model, max_new_tokens=config.max_new_tokens, threads=config.threads
    )


def _sim(config: BackendSettings, settings: Settings, role: BackendRole) -> ModelBackend:
    # Imported by name, not statically: the registry relies only on the ModelBackend protocol,
    # and a simulator that is missing or broken must fail here, naming the setting.
    try:
        sim_class = importlib.import_module("hera_router.simulator.backend").SimBackend
    except (ImportError, AttributeError) as exc:
        raise BackendConfigError(
            "sim",
            f"{setting_name(role, 'backend')}=sim needs hera_router.simulator.backend.SimBackend, "
            f"which cannot be imported ({exc})",
        ) from exc
    sim = settings.simulator
    # A model named by a HERA_MODELS tier that the simulator knows (tiny, mid, cheap-cloud, cloud)
    # runs as that simulated tier, on the role it is built on: any two rungs of the ladder can
    # then be the pipeline's edge and cloud models.
    tier = settings.tier_of(config.model)
    tiers = importlib.import_module("hera_router.simulator.presets").load_behaviour(sim.preset, sim.config_path).tiers
    simulated = tiers.get(tier.name) if tier is not None else None
    backend = sim_class(
        role=simulated.base if simulated is not None else ("slm" if role == "edge" else "llm"),
        model=config.model,
        seed=sim.seed,
        preset=sim.preset,
        config_path=sim.config_path,
        realtime=sim.realtime,
        tier=tier.name if simulated is not None and tier is not None else None,
    )
    if not isinstance(backend, ModelBackend):
        raise BackendConfigError("sim", f"{sim_class!r} does not implement the ModelBackend protocol")
    return backend


def _echo(config: BackendSettings, settings: Settings, role: BackendRole) -> ModelBackend:
    from hera_router.backends.echo import EchoBackend

    return EchoBackend(model=config.model)


_FACTORIES: dict[str, BackendFactory] = {
    "tgi": _tgi,
    "openai": _openai,
    "local": _local,
    "sim": _sim,
    "echo": _echo,
}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Add (or replace) a backend name; for plug-ins and tests."""
    _FACTORIES[name] = factory


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


def role_settings(settings: Settings, role: BackendRole) -> BackendSettings:
    return settings.edge if role == "edge" else settings.cloud


def build_raw_backend(settings: Settings, role: BackendRole, config: BackendSettings | None = None) -> ModelBackend:
    """The bare client for ``role`` (no retries, no breaker): what the dev server fronts.

    ``config`` overrides the role's settings (the ``serve-models`` command builds one from flags).
    """
    config = config if config is not None else role_settings(settings, role)
    factory = _FACTORIES.get(config.backend)
    if factory is None:
        raise BackendConfigError(
            config.backend,
            f"{setting_name(role, 'backend')}={config.backend!r} is not a known backend; "
            f"choose one of {', '.join(available_backends())}",
        )
    backend = factory(config, settings, role)
    if config.protocol == "scaffold":
        from hera_router.agent.scaffold import ScaffoldBackend

        backend = ScaffoldBackend(backend, cache=config.cache)
    return backend


def create_backend(
    settings: Settings,
    role: BackendRole,
    *,
    config: BackendSettings | None = None,
    probe: bool = False,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
    on_breaker_change: Callable[[str, BreakerState], None] | None = None,
) -> ResilientBackend:
    """The backend for ``role`` with the failure policy of its settings applied.

    ``probe=True`` checks at once that an HTTP server answers (TGI ``/health``, OpenAI
    ``/models``) and raises :class:`BackendConfigError` naming the URL if not: a worker should
    fail at start-up on a wrong URL rather than on its first task. ``sleep``/``clock``/``rng`` are
    for tests; ``on_breaker_change`` lets metrics follow the breaker.
    """
    config = config if config is not None else role_settings(settings, role)
    raw = build_raw_backend(settings, role, config)
    if probe:
        check = getattr(raw, "probe", None)
        if callable(check):
            check()
    breaker = CircuitBreaker(
        raw.name,
        failure_threshold=config.breaker_failure_threshold,
        reset_s=config.breaker_reset_s,
        clock=clock,
        on_change=on_breaker_change,
    )
    return ResilientBackend(raw, retry=RetryPolicy.from_settings(config), breaker=breaker, sleep=sleep, rng=rng)
