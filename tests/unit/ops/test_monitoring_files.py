"""ops/: Prometheus config and rules, the Grafana dashboard, runbooks; names must exist in the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the venv
from prometheus_client.metrics import MetricWrapperBase

from hera_router.metrics import instruments as metrics
from hera_router.metrics.state import STATE_METRIC_NAMES

OPS = Path(__file__).resolve().parents[3] / "ops"
NAME = re.compile(r"\b(hera[_:][a-zA-Z0-9_:]+)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every series name the code can export: the metrics module and the state collector."""
    names = set(STATE_METRIC_NAMES)
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            names |= {value._name + suffix for suffix in SUFFIXES[str(value._type)]}
    return names


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((OPS / "prometheus" / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_prometheus_config_loads_and_scrapes_api_workers_flower() -> None:
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"hera-api", "hera-workers", "flower"}
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_alerts_and_dashboard_reference_only_exported_metrics() -> None:
    exported = exported_names()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    dashboard = json.loads((OPS / "grafana" / "dashboards" / "hera-router.json").read_text())
    expressions = [rule["expr"] for rule in rules()]
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    referenced = {name for expr in expressions for name in NAME.findall(expr)}
    assert referenced, "no hera metric referenced at all"
    assert referenced <= exported | recorded, sorted(referenced - exported - recorded)
    # The panels and alerts are all there.
    titles = " | ".join(panel["title"] for panel in dashboard["panels"])
    for word in ("SLM share", "All-LLM", "Accuracy", "latency", "Queue depth", "Decisions by branch"):
        assert word in titles, word
    assert {
        "hera_queue_depth",
        "hera_outbox_lag_seconds",
        "hera_model_calls_total",
        "hera_cost_usd_total",
        "hera_training_latest_timestamp_seconds",
        "hera_task_events_total",
    } <= referenced


def test_every_alert_has_a_runbook() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 6
    for alert in alerts:
        runbook = OPS / "runbooks" / f"{alert['alert']}.md"
        assert alert["annotations"]["runbook"] == f"ops/runbooks/{runbook.name}"
        text = runbook.read_text()
        for section in ("## What it means", "## How to confirm", "## How to fix"):
            assert section in text, f"{runbook.name}: {section}"
    assert {p.stem for p in (OPS / "runbooks").glob("*.md")} == {alert["alert"] for alert in alerts}


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    provisioning = OPS / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    provider = yaml.safe_load((provisioning / "dashboards" / "hera-router.yml").read_text())["providers"][0]
    dashboard = json.loads((OPS / "grafana" / "dashboards" / "hera-router.json").read_text())
    assert datasource["uid"] == "prometheus"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {"prometheus"}
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
