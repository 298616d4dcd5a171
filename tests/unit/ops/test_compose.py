"""docker/compose.yaml, checked without Docker: structure, commands, settings."""

from __future__ import annotations

import pytest

from tests.unit.ops.compose import hera_services, is_known_setting, load_compose, resolve_cli

EXPECTED = {
    "postgres",
    "redis",
    "migrate",
    "bootstrap",
    "api",
    "router",
    "edge",
    "cloud",
    "trainer",
    "beat",
    "flower",
    "devserver",
    "devserver-cloud",
    "tgi",
    "prometheus",
    "grafana",
}
ONE_SHOT = {"migrate", "bootstrap"}


def test_compose_has_every_service_with_healthchecks_and_ordering() -> None:
    services = load_compose()["services"]
    assert set(services) == EXPECTED
    redis_command = " ".join(services["redis"]["command"])
    assert "--maxmemory-policy noeviction" in redis_command
    assert "--appendonly yes" in redis_command
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["migrate"]["command"] == ["hera-router", "db", "upgrade"]
    assert services["devserver"]["profiles"] == ["cpu"]
    assert services["tgi"]["profiles"] == ["gpu"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition["condition"] == expected, f"{name} -> {dependency}"
    for name, service in hera_services(load_compose()).items():
        if name not in ("migrate", "devserver", "devserver-cloud"):
            assert "migrate" in service["depends_on"], f"{name} may start before the migrations ran"


def test_every_command_and_healthcheck_parses_with_the_cli() -> None:
    services = hera_services(load_compose())
    assert len(services) == 10
    for name, service in services.items():
        resolve_cli(service["command"][1:])
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:2] == ["hera-router"]:
            assert resolve_cli(test[2:]).name == "ping", name


def test_an_unknown_option_would_be_caught() -> None:
    with pytest.raises(Exception, match="No such option") as unknown_option:
        resolve_cli(["serve-api", "--no-such-option"])
    with pytest.raises(Exception, match="No such command") as unknown_command:
        resolve_cli(["no-such-command"])
    assert "UsageError" in {kind.__name__ for kind in type(unknown_option.value).__mro__}
    assert "UsageError" in {kind.__name__ for kind in type(unknown_command.value).__mro__}


def test_every_hera_variable_is_a_known_setting() -> None:
    compose = load_compose()
    seen = set()
    for service in compose["services"].values():
        for variable in service.get("environment", {}):
            if variable.startswith("HERA_"):
                seen.add(variable)
                assert is_known_setting(variable), f"{variable} is not a setting"
    assert {"HERA_DATABASE_URL", "HERA_OPS__METRICS_DIR", "HERA_OPS__FLOWER_BASIC_AUTH", "HERA_EDGE__URL"} <= seen
    assert not is_known_setting("HERA_OPS__NO_SUCH")
    assert not is_known_setting("HERA_EDGE__URL__X")
