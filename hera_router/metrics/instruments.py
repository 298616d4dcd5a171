"""Prometheus metrics of the api and the workers, and the registries that serve them.

Labels stay bounded: task names, policies (registry names), executors (slm|llm), branches, backend
kinds and outcome words; never request, subtask or tenant ids (tenants are unbounded, so cost per
tenant is a database query, not a label).

Multiprocess mode. A prefork worker counts in its children, so the values must live in files that
the parent can merge: prometheus_client picks its value class when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``. ``hera-router worker`` sets that variable from
``HERA_OPS__METRICS_DIR`` (:mod:`hera_router.metrics.multiprocess`) before importing this module;
:func:`scrape_registry` then merges the directory's files with a ``MultiProcessCollector``. A
process started without it (the api under uvicorn, embedded mode, tests) counts in memory.

Counters change only after the transaction that wrote the same fact commits
(:func:`after_commit`), so a scrape can be compared with what the database holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from hera_router.config import Settings
    from hera_router.routing.base import Decision

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# -- task lifecycle (workers.base.HeraTask) ------------------------------------------------------

TASK_EVENTS = Counter(
    "hera_task_events_total",
    "Task lifecycle events by task name and event (started, succeeded, retried, failed).",
    ["task", "event"],
)
TASK_RUNTIME = Histogram(
    "hera_task_runtime_seconds",
    "Wall time of one task execution (one attempt), by task name.",
    ["task"],
    buckets=LATENCY_BUCKETS,
)

# -- routing (pipeline.routing.plan_step) ----------------------------------------------------------

DECISIONS = Counter(
    "hera_decisions_total",
    "Routing decisions recorded, one per step: routed by the policy, or continuing a span "
    "(SLE/CD/URC). Executor as decided; edge fallbacks are counted in hera_edge_fallbacks_total.",
    ["policy", "executor", "branch"],
)
DECISION_LATENCY = Histogram(
    "hera_decision_latency_seconds",
    "Time the policy took to decide one step (estimators included), by policy.",
    ["policy"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# -- execution (pipeline.execution.run_subtask) ------------------------------------------------------

MODEL_CALLS = Counter(
    "hera_model_calls_total",
    "Model calls recorded (one per executed subtask, plus one per failed attempt), by executor "
    "(slm runs on the edge, llm on the cloud), backend kind and status (ok|error).",
    ["executor", "backend", "status"],
)
MODEL_CALL_LATENCY = Histogram(
    "hera_model_call_latency_seconds",
    "Latency of successful model calls (retries inside the client included).",
    ["executor", "backend"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "hera_model_tokens_total",
    "Tokens of successful model calls, by executor and direction (in = prompt, out = completion).",
    ["executor", "direction"],
)
COST = Counter(
    "hera_cost_usd_total",
    "Cost of successful model calls in USD (token prices; edge GPU time if configured), by executor.",
    ["executor"],
)
COST_COMPONENTS = Counter(
    "hera_cost_component_usd_total",
    "Cost of model calls in USD by executor and component (tokens, gpu, energy, transfer): the full "
    "cost model; the components add up to hera_cost_usd_total.",
    ["executor", "component"],
)
TIER_COST = Counter(
    "hera_tier_cost_usd_total",
    "Cost of successful model calls in USD by model tier (HERA_MODELS; steps of two-role policies "
    "carry no tier and are not counted here).",
    ["tier"],
)
ALL_LLM_COST = Counter(
    "hera_cost_all_llm_usd_total",
    "What the same successful calls would have cost at the cloud model's token prices: an estimate "
    "of the All-LLM baseline (the LLM's own chain would differ in length and tokens).",
)
VERIFICATIONS = Counter(
    "hera_verifications_total",
    "SLM steps judged by the verify stage, by outcome (accepted, or escalated to the cloud).",
    ["outcome"],
)
FALLBACKS = Counter(
    "hera_edge_fallbacks_total",
    "Steps moved from the edge SLM to the cloud LLM because the edge backend failed.",
)
REDRIVES = Counter(
    "hera_reconciler_redrives_total",
    "Requests the reconciler re-drove because they made no progress within HERA_RECONCILE_AFTER_S.",
)

GOLD_SCORED = Counter(
    "hera_gold_scored_requests_total",
    "Succeeded requests that carry a gold answer, by policy (failed ones are in hera_requests).",
    ["policy"],
)
GOLD_SCORE = Counter(
    "hera_gold_score_total",
    "Sum of the scores (0..1) of those requests against their gold answers: divide by "
    "hera_gold_scored_requests_total for accuracy.",
    ["policy"],
)

# -- the producer API ------------------------------------------------------------------------------

API_REQUESTS = Counter(
    "hera_api_requests_total",
    "HTTP requests served by the producer API, by method, route template and status code.",
    ["method", "route", "status"],
)
API_LATENCY = Histogram(
    "hera_api_request_duration_seconds",
    "Time to serve one HTTP request of the producer API, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once ``session`` commits; never if it rolls back."""

    def run(_: Session) -> None:
        callback()

    event.listen(session, "after_commit", run, once=True)


def record_verify(*, accepted: bool) -> None:
    VERIFICATIONS.labels("accepted" if accepted else "escalated").inc()


def record_decision(decision: Decision, *, routed: bool = True) -> None:
    """Count a recorded decision; ``routed`` is False for a span continuation (no policy call)."""
    DECISIONS.labels(decision.policy, decision.executor.value, decision.branch).inc()
    if routed:
        DECISION_LATENCY.labels(decision.policy).observe(decision.elapsed_ms / 1e3)


def record_model_call(
    executor: str,
    backend: str,
    *,
    latency_s: float,
    tokens_in: int,
    tokens_out: int,
    cost_usd: float,
    all_llm_cost_usd: float,
    components: Mapping[str, float] | None = None,
    tier: str | None = None,
) -> None:
    """Count one successful model call; ``components`` splits ``cost_usd`` (tokens, gpu, ...)."""
    MODEL_CALLS.labels(executor, backend, "ok").inc()
    MODEL_CALL_LATENCY.labels(executor, backend).observe(latency_s)
    TOKENS.labels(executor, "in").inc(tokens_in)
    TOKENS.labels(executor, "out").inc(tokens_out)
    COST.labels(executor).inc(cost_usd)
    for component, usd in (components or {}).items():
        COST_COMPONENTS.labels(executor, component).inc(usd)
    ALL_LLM_COST.inc(all_llm_cost_usd)
    if tier is not None:
        TIER_COST.labels(tier).inc(cost_usd)


def record_failed_call(executor: str, backend: str) -> None:
    MODEL_CALLS.labels(executor, backend, "error").inc()


def record_gold_score(policy: str, quality: float) -> None:
    GOLD_SCORED.labels(policy).inc()
    GOLD_SCORE.labels(policy).inc(quality)


def multiprocess_enabled() -> bool:
    """Did prometheus_client start in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` was set)?"""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class MetricsEndpoint:
    """What one metrics endpoint (the api's ``/metrics``, a worker's port) serves.

    In multiprocess mode a fresh registry merges the files in ``multiprocess_dir`` (every process
    of this worker, children included); otherwise it shows the process's default registry. The
    state collector (queues, outbox, requests, training runs) is added when
    ``HERA_OPS__SYSTEM_METRICS`` is on.
    """

    def __init__(self, settings: Settings, *, multiprocess_dir: Path | None = None) -> None:
        from hera_router.metrics.state import StateCollector

        self.registry = CollectorRegistry()
        if multiprocess_enabled():
            if multiprocess_dir is None:
                raise ValueError(
                    "prometheus_client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR is set): set "
                    "HERA_OPS__METRICS_DIR to the same directory so that /metrics can merge its files"
                )
            MultiProcessCollector(self.registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
        else:
            self.registry.register(_DefaultRegistryView())
        self.state = StateCollector(settings) if settings.ops.system_metrics else None
        if self.state is not None:
            self.registry.register(self.state)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        if self.state is not None:
            self.state.close()


class _DefaultRegistryView(Collector):
    """The default registry's metrics as one collector, so each endpoint's registry can add its
    own collectors without registering them process-wide (two api apps in one test process)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve ``registry`` on ``http://host:port/metrics`` from a daemon thread; returns the server.

    Raises OSError at once if the port is taken, before the worker starts consuming.
    """
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
