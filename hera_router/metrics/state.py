"""Metrics read from Redis and Postgres at scrape time: what no single process can count.

Queue depth (Flower exports none), the age of the oldest request still waiting for its first
step, outbox lag, requests per status, the latest training runs and the mode the default policy
``hera`` routes in (trained, or cold start with its threshold). Each scrape costs a few
``LLEN`` calls and a few indexed queries; a source that does not answer is reported through
``hera_state_source_up`` instead of failing the whole scrape, so the process's own counters are
still collected while Redis or Postgres is down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import redis
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hera_router.config import Settings
from hera_router.db.base import utcnow
from hera_router.db.repositories import OutboxRepository, RequestRepository, TrainingRunRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.pipeline.queues import Queue, physical_name
from hera_router.pipeline.tiers import tier_only_queues
from hera_router.routing.coldstart import MODES, ColdStart
from hera_router.training.coldstart import mode

log = logging.getLogger(__name__)

# kombu's Redis transport keeps priorities 1-9 in sibling lists named ``<queue>\x06\x16<step>``
# (default steps 0, 3, 6, 9; step 0 is the queue's own list). Flower counts them the same way.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)

STATE_METRIC_NAMES: tuple[str, ...] = (
    "hera_queue_depth",
    "hera_oldest_queued_request_age_seconds",
    "hera_outbox_lag_seconds",
    "hera_requests",
    "hera_training_runs",
    "hera_training_latest_timestamp_seconds",
    "hera_routing_mode",
    "hera_cold_start_threshold",
    "hera_cold_start_shadow_requests",
    "hera_state_source_up",
)
"""Every family :class:`StateCollector` can export (the ops tests check alerts against these)."""


def _age_s(then: datetime | None, now: datetime) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # SQLite drops the zone of aggregated values; the schema stores UTC
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


class StateCollector(Collector):
    """Prometheus collector computing deployment state on every scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Its own engine: the scrape runs in a server thread of the worker's parent process, which
        # must not share connections with the Celery app it forks children from.
        self.runtime = Runtime(settings)
        broker = settings.broker_url
        self._redis = (
            redis.Redis.from_url(broker, socket_timeout=2.0, socket_connect_timeout=2.0)
            if broker.startswith(("redis://", "rediss://"))
            else None
        )

    def close(self) -> None:
        self.runtime.close()
        if self._redis is not None:
            self._redis.close()

    def describe(self) -> list[Metric]:
        # Declaring nothing keeps registration from running a scrape (and hitting the services).
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "hera_state_source_up", "1 if the source answered during this scrape, else 0.", labels=["source"]
        )
        if self._redis is not None:
            depth = self._queue_depth()
            up.add_metric(["redis"], 0.0 if depth is None else 1.0)
            if depth is not None:
                yield depth
        database = self._database()
        up.add_metric(["postgres"], 0.0 if database is None else 1.0)
        if database is not None:
            yield from database
        yield up

    def _queue_depth(self) -> GaugeMetricFamily | None:
        assert self._redis is not None
        family = GaugeMetricFamily(
            "hera_queue_depth",
            "Messages waiting in each Celery queue on the Redis broker (LLEN, all priorities); "
            "delivered but unacknowledged messages are not included. A model tier's own queue "
            '(HERA_MODELS) is labelled queue="tier:<name>".',
            labels=["queue", "broker_queue"],
        )
        try:
            pipe = self._redis.pipeline(transaction=False)
            names = [(queue.value, physical_name(queue, self.settings.queues)) for queue in Queue]
            names += [(label, name) for name, label in tier_only_queues(self.settings).items()]
            for _, name in names:
                pipe.llen(name)
                for step in PRIORITY_STEPS:
                    pipe.llen(f"{name}{PRIORITY_SEPARATOR}{step}")
            lengths = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: the broker did not answer: %s", exc)
            return None
        per_queue = 1 + len(PRIORITY_STEPS)
        for index, (queue, name) in enumerate(names):
            total = sum(int(n) for n in lengths[index * per_queue : (index + 1) * per_queue])
            family.add_metric([queue, name], float(total))
        return family

    def _database(self) -> list[Metric] | None:
        now = utcnow()
        try:
            with session_scope(self.runtime.sessions) as session:
                oldest_queued = RequestRepository(session).oldest_queued_at()
                oldest_unpublished = OutboxRepository(session).oldest_unpublished_at()
                by_status = RequestRepository(session).count_by_status()
                training = TrainingRunRepository(session).status_summary()
            current, cold = mode(self.runtime)
        except Exception as exc:  # any database failure must not break the scrape
            log.warning("metrics: the database did not answer: %s", exc)
            return None
        queued_age = GaugeMetricFamily(
            "hera_oldest_queued_request_age_seconds",
            "Age of the oldest request still waiting for its first routing step (0 if none).",
            value=_age_s(oldest_queued, now),
        )
        outbox_lag = GaugeMetricFamily(
            "hera_outbox_lag_seconds",
            "Age of the oldest outbox message not yet marked published (0 if none). A sent message is "
            "marked within about a quarter of HERA_RELAY_GRACE_S; values past the grace mean the relay is behind.",
            value=_age_s(oldest_unpublished, now),
        )
        requests = GaugeMetricFamily("hera_requests", "Requests in the database by status.", labels=["status"])
        for status, count in sorted(by_status.items()):
            requests.add_metric([status.value], float(count))
        runs = GaugeMetricFamily(
            "hera_training_runs", "Training runs in the database by model and status.", labels=["model", "status"]
        )
        latest = GaugeMetricFamily(
            "hera_training_latest_timestamp_seconds",
            "Unix time the latest training run of a model in a status finished (scheduled, if not finished).",
            labels=["model", "status"],
        )
        for summary in training:
            labels = [summary.model_name, summary.status.value]
            runs.add_metric(labels, float(summary.runs))
            stamp = summary.latest_at if summary.latest_at.tzinfo else summary.latest_at.replace(tzinfo=UTC)
            latest.add_metric(labels, stamp.timestamp())
        return [queued_age, outbox_lag, requests, runs, latest, *self._mode_metrics(current, cold)]

    def _mode_metrics(self, current: str, cold: ColdStart | None) -> list[Metric]:
        """Which mode the default policy ``hera`` routes in (1 on the mode in force, 0 on the other)
        and, in cold start, the threshold in force and the shadowed requests it rests on."""
        family = GaugeMetricFamily(
            "hera_routing_mode",
            "1 for the mode HERA routes in: trained (active estimators) or cold-start (no estimators: "
            "every step to the SLM, kept when its mean token logprob reaches the cold-start threshold).",
            labels=["policy", "mode"],
        )
        for name in MODES:
            family.add_metric(["hera", name], 1.0 if name == current else 0.0)
        if cold is None:
            return [family]
        threshold = GaugeMetricFamily(
            "hera_cold_start_threshold",
            "The cold-start verify threshold in force (a mean token logprob): learned from shadow traffic "
            "or the configured default.",
            value=cold.threshold,
        )
        samples = GaugeMetricFamily(
            "hera_cold_start_shadow_requests",
            "Shadowed requests the cold-start threshold was fitted on (0: the configured default).",
            value=float(cold.samples),
        )
        return [family, threshold, samples]
