"""Settings: defaults resolve sensibly and every bad value names its environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_router.config import Mode, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("HERA_"):
            monkeypatch.delenv(name)


def test_embedded_defaults_need_no_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.mode is Mode.EMBEDDED
    assert settings.broker_url == "memory://"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'hera.sqlite3'}"
    assert settings.artifacts == tmp_path / "artifacts"
    assert not settings.is_postgres


def test_distributed_mode_defaults_to_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_MODE", "distributed")
    monkeypatch.setenv("HERA_REDIS_URL", "redis://127.0.0.1:6390/3")
    assert load_settings().broker_url == "redis://127.0.0.1:6390/3"


def test_explicit_urls_and_nested_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_DATABASE_URL", "postgresql+psycopg://u@db/hera")
    monkeypatch.setenv("HERA_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("HERA_ROUTING__TAU_REQ", "0.75")
    monkeypatch.setenv("HERA_CLOUD__MODEL", "gpt-4o-mini")
    monkeypatch.setenv("HERA_QUEUES__EDGE", "edge.site-a")
    settings = load_settings()
    assert settings.is_postgres
    assert settings.broker_url.startswith("amqp://")
    assert settings.routing.tau_req == 0.75
    assert settings.cloud.model == "gpt-4o-mini"
    assert settings.queues.edge == "edge.site-a"


def test_prices_come_from_json_and_unknown_models_are_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_PRICES", '{"my-llm": {"input_per_mtok": 1.5, "output_per_mtok": 6}}')
    settings = load_settings()
    assert settings.price_of("my-llm").output_per_mtok == 6
    assert settings.price_of("smollm2").input_per_mtok == 0


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HERA_ROUTING__TAU_REQ", "1.5", "HERA_ROUTING__TAU_REQ"),
        ("HERA_ROUTING__KAPPA_CAP", "five", "HERA_ROUTING__KAPPA_CAP"),
        ("HERA_MODE", "cluster", "HERA_MODE"),
        ("HERA_EDGE__TIMEOUT_S", "-1", "HERA_EDGE__TIMEOUT_S"),
        ("HERA_PRICES", '{"m": {"input_per_mtok": 1}}', "HERA_PRICES"),
        ("HERA_PRICES", "{not json", "HERA_PRICES"),
        ("HERA_TASK_TIME_LIMIT_S", "7200", "HERA_TASK_TIME_LIMIT_S"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings()


def test_cli_reports_bad_settings_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hera_router.cli import app

    monkeypatch.setenv("HERA_ROUTING__TAU_REQ", "lots")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert "HERA_ROUTING__TAU_REQ" in result.output
    assert "Traceback" not in result.output


def test_role_defaults_survive_configuring_the_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A default set only on a default instance was lost as soon as HERA_EDGE__BACKEND was set.
    monkeypatch.setenv("HERA_EDGE__BACKEND", "tgi")
    monkeypatch.setenv("HERA_EDGE__URL", "http://edge:8080")
    monkeypatch.setenv("HERA_CLOUD__BACKEND", "openai")
    settings = load_settings()
    assert settings.edge.logprobs is True
    assert (settings.edge.model, settings.cloud.model) == ("sim-slm", "sim-llm")
    assert settings.cloud.logprobs is False


def test_the_default_ladder_is_todays_edge_and_cloud_pair() -> None:
    from hera_router.config import load_settings

    settings = load_settings(edge_cost_per_gpu_second=0.001)
    edge, cloud = settings.ladder
    assert (edge.name, edge.role, edge.queue_name, edge.gpu_usd_per_second) == ("edge", "edge", "edge", 0.001)
    assert (cloud.name, cloud.role, cloud.backend.model) == ("cloud", "cloud", "sim-llm")
    assert settings.price_of("sim-llm").input_per_mtok == 2.5


def test_model_tiers_from_json_price_their_models() -> None:
    import json

    import pytest

    from hera_router.backends.pricing import call_cost
    from hera_router.config import SettingsError, load_settings

    tiers = [
        {
            "name": "tiny",
            "role": "edge",
            "backend": {"model": "sim-tiny"},
            "queue": "edge.tiny",
            "gpu_usd_per_second": 0.0001,
            "power_w": 70,
        },
        {
            "name": "cheap",
            "role": "cloud",
            "backend": {"model": "sim-cheap"},
            "input_per_mtok": 0.15,
            "output_per_mtok": 0.6,
        },
    ]
    settings = load_settings(models=json.dumps(tiers), costs={"energy_usd_per_kwh": 0.3})
    assert [tier.queue_name for tier in settings.ladder] == ["edge.tiny", "cloud"]
    cost = call_cost(settings, "sim-tiny", 100, 50, 2.0, "edge")
    assert cost.gpu_usd == pytest.approx(0.0002)
    assert cost.energy_usd == pytest.approx(70 * 2.0 / 3.6e6 * 0.3)
    assert call_cost(settings, "sim-cheap", 1_000_000, 0, 1.0, "cloud").tokens_usd == pytest.approx(0.15)
    with pytest.raises(SettingsError, match="unique"):
        load_settings(models=json.dumps([tiers[0], tiers[0]]))


@pytest.mark.parametrize(
    "url",
    ["postgres://bob:pw@db:5432/hera", "postgresql://bob:pw@db:5432/hera", "postgresql+psycopg://bob:pw@db:5432/hera"],
)
def test_postgres_urls_mean_the_installed_driver(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_DATABASE_URL", url)
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://bob:pw@db:5432/hera"
    assert settings.is_postgres


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HERA_DATABASE_URL", "mysql://bob:hunter2@db/hera"),
        ("HERA_BROKER_URL", "http://127.0.0.1:6379"),
        ("HERA_REDIS_URL", "127.0.0.1:6379"),
    ],
)
def test_a_url_with_the_wrong_scheme_names_its_variable(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert f"{variable}: " in str(raised.value)
    assert "expected" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_unknown_variables_name_the_nearest_known_one() -> None:
    from hera_router.config import unknown_variables

    environ = {
        "HERA_ROUTNG__POLICY": "all-llm",
        "hera_databse_url": "x",
        "HERA_ROUTING__POLICY": "all-llm",
        "HERA_PRICES__GPT_X__INPUT_PER_MTOK": "1",
        "HERA_TEST_POSTGRES_URL": "postgresql+psycopg://x@y/z",
        "HERA_QQQ": "1",
        "PATH": "/bin",
    }

    problems = unknown_variables(environ)

    assert problems == [
        "warning: HERA_QQQ is not a hera-router setting and is ignored (`hera-router config` shows the settings)",
        "warning: HERA_ROUTNG__POLICY is not a hera-router setting and is ignored; did you mean HERA_ROUTING__POLICY?",
        "warning: hera_databse_url is not a hera-router setting and is ignored; did you mean HERA_DATABASE_URL?",
    ]
