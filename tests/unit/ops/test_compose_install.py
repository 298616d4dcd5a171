"""Compose routes with the default policy: a bootstrap job, one shared artifacts volume, .env.example.

Docker cannot run here, so the compose files are read as YAML: which services run the router or
the API, what they mount, what they wait for, and which variables compose interpolates.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the venv

from hera_router.config import Settings
from hera_router.training import coldstart
from tests.unit.ops.compose import REPO, resolve_cli

COMPOSE_FILES = sorted([*(REPO / "docker").glob("compose*.yml"), *(REPO / "docker").glob("compose*.yaml")])
ENV_EXAMPLE = REPO / "docker" / ".env.example"
ARTIFACTS = "hera-artifacts"
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?message} with ``values`` (enough for these files)."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if values.get(name):
            return values[name]
        return rest if op in (":-", "-") else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}", one, text)


def loaded(path: Path) -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(interpolate(path.read_text(), env_example()))
    return compose


def argv_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def hera_commands(service: dict[str, Any]) -> list[list[str]]:
    """Every ``hera-router ...`` command a service runs, also inside an ``sh -c`` script."""
    argv = argv_of(service)
    if argv[:2] == ["sh", "-c"]:
        script = argv[2]
        pieces = re.split(r"\|\||&&|\||;", script)
        commands = [shlex.split(piece) for piece in pieces]
        commands = [c[1:] if c[:1] == ["exec"] else c for c in commands]
        return [c for c in commands if c[:1] == ["hera-router"]]
    return [argv] if argv[:1] == ["hera-router"] else []


def runs_router_or_api(service: dict[str, Any]) -> bool:
    for command in hera_commands(service):
        if command[1:2] == ["serve-api"]:
            return True
        if command[1:2] == ["worker"] and "-Q" in command:
            queues = command[command.index("-Q") + 1].split(",")
            if {"router", "training"} & set(queues):
                return True
    return False


@pytest.fixture(params=COMPOSE_FILES, ids=lambda path: path.name)
def compose(request: pytest.FixtureRequest) -> dict[str, Any]:
    return loaded(request.param)


def test_there_is_a_compose_file() -> None:
    assert REPO / "docker" / "compose.yaml" in COMPOSE_FILES


def test_the_router_api_and_trainer_share_one_artifacts_volume_at_the_data_dir(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert ARTIFACTS in compose["volumes"]
    readers = {name for name, service in services.items() if runs_router_or_api(service)}
    assert {"api", "router", "trainer"} <= readers
    for name in [*readers, "bootstrap", "beat"]:
        service = services[name]
        data_dir = service["environment"]["HERA_DATA_DIR"]
        assert f"{ARTIFACTS}:{data_dir}" in service.get("volumes", []), f"{name} does not mount {ARTIFACTS}"
    # No app service keeps its data dir on a volume of its own: the registry's paths are relative to it.
    for name, service in services.items():
        data_dir = service.get("environment", {}).get("HERA_DATA_DIR")
        for volume in service.get("volumes", []):
            if data_dir is not None and volume.split(":")[1:2] == [data_dir]:
                assert volume.split(":")[0] == ARTIFACTS, f"{name} mounts {volume}"


def test_the_bootstrap_job_runs_after_the_migrations_and_before_every_app_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    job = services["bootstrap"]
    assert job["restart"] == "no"
    assert job["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["hera-router", "db", "upgrade"]
    commands = hera_commands(job)
    assert [c[1] for c in commands] == ["estimators", "bootstrap"]
    for command in commands:
        resolve_cli(command[1:])  # the real CLI accepts it (an unknown option would raise)
    app = [name for name, service in services.items() if any(c[1:2] != ["db"] for c in hera_commands(service))]
    app = [name for name in app if name != "bootstrap" and not name.startswith("devserver")]
    assert {"api", "router", "edge", "cloud", "trainer", "beat", "flower"} <= set(app)
    for name in app:
        condition = services[name]["depends_on"].get("bootstrap", {}).get("condition")
        assert condition == "service_completed_successfully", f"{name} may start before bootstrap finished"


def test_the_bootstrap_guard_skips_only_in_trained_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    script = argv_of(loaded(REPO / "docker" / "compose.yaml")["services"]["bootstrap"])[2]
    match = re.search(r"grep -q '([^']+)'", script)
    assert match is not None
    pattern = re.compile(match.group(1), re.MULTILINE)
    runtime: Any = SimpleNamespace(settings=Settings())
    monkeypatch.setattr(coldstart, "mode", lambda _runtime: (coldstart.MODE_TRAINED, None))
    assert pattern.search(coldstart.mode_line(runtime))
    cold = SimpleNamespace(describe=lambda: "threshold -0.1 (default)")
    monkeypatch.setattr(coldstart, "mode", lambda _runtime: (coldstart.MODE_COLD_START, cold))
    assert not pattern.search(coldstart.mode_line(runtime))


def test_the_default_policy_is_hera(compose: dict[str, Any]) -> None:
    assert Settings.model_fields["routing"].default.policy == "hera"
    services = compose["services"]
    assert services["router"]["environment"]["HERA_ROUTING__POLICY"] == "hera"
    for name, service in services.items():
        if hera_commands(service):
            assert service["environment"].get("HERA_ROUTING__POLICY", "hera") == "hera", name


def test_env_example_covers_every_variable_compose_reads() -> None:
    names = env_example()
    used = {name for path in COMPOSE_FILES for name in VARIABLE.findall(path.read_text())}
    assert {"FLOWER_BASIC_AUTH", "GRAFANA_ADMIN_PASSWORD", "BOOTSTRAP_ARGS", "POSTGRES_PASSWORD"} <= used
    assert used <= set(names), f"missing from docker/.env.example: {sorted(used - set(names))}"
    # Required ones have a value there, so `cp docker/.env.example docker/.env` starts.
    for name in ("FLOWER_BASIC_AUTH", "GRAFANA_ADMIN_PASSWORD"):
        assert names[name]


def test_the_bootstrap_job_confirms_real_backends_if_the_cli_asks_for_it() -> None:
    """Once `hera-router bootstrap` asks for a confirmation on non-simulated backends (--yes), the
    job must give one, or every app service waits on a job that exits 2."""
    compose = loaded(REPO / "docker" / "compose.yaml")
    job = compose["services"]["bootstrap"]
    command = hera_commands(job)[-1]
    options = {opt for param in resolve_cli(["bootstrap"]).params for opt in param.opts}
    backends = {job["environment"]["HERA_EDGE__BACKEND"], job["environment"]["HERA_CLOUD__BACKEND"]}
    if "--yes" in options and backends != {"sim"}:
        assert {"--yes", "-y", "--budget-usd"} & set(command), command
    else:
        assert "--yes" not in command  # an option the CLI does not have would stop the job
    # Without docker/.env the job gets no confirmation: it stops before any call (nothing is spent).
    bare = yaml.safe_load(interpolate((REPO / "docker" / "compose.yaml").read_text(), {}))
    assert not {"--yes", "-y", "--budget-usd"} & set(hera_commands(bare["services"]["bootstrap"])[-1])


def test_the_image_ignores_the_venv_and_local_state() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".hera", ".git"} <= ignored
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE)
    assert all(part not in ignored for line in copied for part in line.split())
