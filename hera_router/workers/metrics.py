"""Prometheus metrics that every task reports through the Task base class.

Labels stay bounded: task names and outcome words, never ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TASK_EVENTS = Counter(
    "hera_task_events_total",
    "Task lifecycle events by task name and event (started, succeeded, retried, failed).",
    ["task", "event"],
)
TASK_RUNTIME = Histogram(
    "hera_task_runtime_seconds",
    "Wall time of one task execution (one attempt), by task name.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
