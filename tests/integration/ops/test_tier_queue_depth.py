"""The queue-depth gauge covers model tiers' own queues, read from a real Redis the
way kombu's transport keeps them (priority sibling lists included)."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis

from hera_router.config import load_settings
from hera_router.metrics.state import PRIORITY_SEPARATOR, StateCollector
from tests.conftest import REDIS_URL


def test_a_tiers_own_queue_is_on_the_gauge(tmp_path: Path, migrated_postgres_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    queue = f"edge.tiny.{suffix}"
    tiers = [
        {"name": "tiny", "role": "edge", "backend": {"backend": "sim", "model": "tiny"}, "queue": queue},
        {"name": "mid", "role": "edge", "backend": {"backend": "sim", "model": "mid"}},  # the role's queue
        {"name": "cloud", "role": "cloud", "backend": {"backend": "sim", "model": "cloud"}},
    ]
    settings = load_settings(
        data_dir=tmp_path,
        database_url=migrated_postgres_url,
        broker_url=REDIS_URL,
        models=tiers,
        queues={"edge": f"edge.{suffix}", "cloud": f"cloud.{suffix}"},
    )
    client = redis.Redis.from_url(REDIS_URL)
    collector = StateCollector(settings)
    try:
        client.rpush(queue, b"m1", b"m2")
        client.rpush(f"{queue}{PRIORITY_SEPARATOR}6", b"m3")
        samples = {
            (sample.labels["queue"], sample.labels["broker_queue"]): sample.value
            for family in collector.collect()
            if family.name == "hera_queue_depth"
            for sample in family.samples
        }
    finally:
        client.delete(queue, f"{queue}{PRIORITY_SEPARATOR}6")
        client.close()
        collector.close()
    assert samples[("tier:tiny", queue)] == 3
    # mid shares the edge role's queue: counted there once, not as a tier of its own.
    assert samples[("edge", f"edge.{suffix}")] == 0
    assert not any(label == "tier:mid" for label, _ in samples)
