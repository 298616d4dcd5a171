"""Misconfigurations a person makes on the first day, each run as a real ``hera-router`` process.

Every case must end with a non-zero exit, the problem named on stderr in one sentence (a settings
error is a header line and one line naming the variable), no traceback, and no password. The
services are never needed: the "unreachable" database and broker are ports nobody listens on, the
unmigrated database is an empty SQLite file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database
from tests.integration.ops.processes import free_port

REPO = Path(__file__).resolve().parents[2]
HERA = [sys.executable, "-m", "hera_router.cli"]
SECRET = "s3cret-pw"
BATCH = str(uuid.UUID(int=1))


def _closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


UNREACHABLE_DB = f"postgresql+psycopg://hera:{SECRET}@127.0.0.1:{_closed_port()}/hera"
DOWN_BROKER = f"redis://:{SECRET}@127.0.0.1:{_closed_port()}/0"


@dataclass
class Case:
    argv: list[str]
    env: dict[str, str]
    expected: str
    """A phrase of the sentence that names the problem."""
    migrated: bool = False
    """Run ``db upgrade`` on the scratch SQLite database first (the case is about something else)."""


CASES = {
    # An unreachable database, for the commands a person runs first.
    "db-upgrade/unreachable-db": Case(["db", "upgrade"], {"HERA_DATABASE_URL": UNREACHABLE_DB}, "is unreachable"),
    "db-check/unreachable-db": Case(["db", "check"], {"HERA_DATABASE_URL": UNREACHABLE_DB}, "is unreachable"),
    "status/unreachable-db": Case(["status"], {"HERA_DATABASE_URL": UNREACHABLE_DB}, "is unreachable"),
    "results/unreachable-db": Case(["results", BATCH], {"HERA_DATABASE_URL": UNREACHABLE_DB}, "is unreachable"),
    "submit/unreachable-db": Case(
        ["submit", "requests.jsonl"],
        {"HERA_DATABASE_URL": UNREACHABLE_DB, "HERA_BROKER_URL": DOWN_BROKER},
        "is unreachable",
    ),
    "serve-api/unreachable-db": Case(["serve-api"], {"HERA_DATABASE_URL": UNREACHABLE_DB}, "is unreachable"),
    "tenants-create/unreachable-db": Case(
        ["tenants", "create", "acme"], {"HERA_DATABASE_URL": UNREACHABLE_DB}, "is unreachable"
    ),
    # A URL with the wrong scheme.
    "status/mysql-url": Case(["status"], {"HERA_DATABASE_URL": f"mysql://hera:{SECRET}@db/hera"}, "HERA_DATABASE_URL"),
    "db-upgrade/http-broker": Case(["db", "upgrade"], {"HERA_BROKER_URL": "http://127.0.0.1:6379"}, "HERA_BROKER_URL"),
    "worker/redis-url-without-scheme": Case(
        ["worker", "-Q", "router"], {"HERA_MODE": "distributed", "HERA_REDIS_URL": "127.0.0.1:6379"}, "HERA_REDIS_URL"
    ),
    # A database that was never migrated.
    "status/missing-migrations": Case(["status"], {}, "run `hera-router db upgrade` first"),
    "results/missing-migrations": Case(["results", BATCH], {}, "run `hera-router db upgrade` first"),
    "serve-api/missing-migrations": Case(["serve-api"], {}, "run `hera-router db upgrade` first"),
    "db-check/missing-migrations": Case(["db", "check"], {}, "run `hera-router db upgrade` first"),
    "keys-create/missing-migrations": Case(["keys", "create", "acme"], {}, "run `hera-router db upgrade` first"),
    # The broker is down.
    "submit/broker-down": Case(["submit", "requests.jsonl"], {"HERA_BROKER_URL": DOWN_BROKER}, "broker", migrated=True),
    "worker/broker-down": Case(["worker", "-Q", "router"], {"HERA_BROKER_URL": DOWN_BROKER}, "broker", migrated=True),
    "beat/broker-down": Case(["beat"], {"HERA_BROKER_URL": DOWN_BROKER}, "is unreachable", migrated=True),
    "flower/broker-down": Case(["flower", "--insecure"], {"HERA_BROKER_URL": DOWN_BROKER}, "is unreachable"),
    "status/broker-down": Case(["status"], {"HERA_BROKER_URL": DOWN_BROKER}, "is unreachable", migrated=True),
    # A process that needs a shared broker, on the embedded default's memory:// one.
    "worker/memory-broker": Case(["worker", "-Q", "router"], {}, "memory://", migrated=True),
    "submit/memory-broker": Case(["submit", "requests.jsonl"], {}, "memory://", migrated=True),
    "beat/memory-broker": Case(["beat"], {}, "memory://"),
    "flower/memory-broker": Case(["flower", "--insecure"], {}, "memory://"),
    # Bad values (and an unknown variable next to one: warned, and the bad value still stops it).
    "status/tau-out-of-range": Case(["status"], {"HERA_ROUTING__TAU_REQ": "2"}, "HERA_ROUTING__TAU_REQ"),
    "serve-api/port-not-a-number": Case(["serve-api"], {"HERA_API__PORT": "eighty"}, "HERA_API__PORT"),
    "status/prices-not-json": Case(["status"], {"HERA_PRICES": "{gpt-4o: 1}"}, "HERA_PRICES"),
    "worker/unknown-mode": Case(["worker"], {"HERA_MODE": "cluster"}, "HERA_MODE"),
    "status/misspelt-and-bad": Case(
        ["status"], {"HERA_ROUTNG__POLICY": "all-llm", "HERA_MODE": "cluster"}, "HERA_MODE"
    ),
}


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    base = {name: value for name, value in os.environ.items() if not name.startswith("HERA_")}
    return base | {"PYTHONPATH": str(REPO), "HERA_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"} | extra


def _hera(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HERA, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", list(CASES))
def test_misconfiguration_is_one_sentence(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    (tmp_path / "requests.jsonl").write_text('{"input": "What is 2 + 3?"}\n')
    if case.migrated:
        assert _hera(["db", "upgrade"], _env(tmp_path, {}), tmp_path).returncode == 0

    run = _hera(case.argv, _env(tmp_path, case.env), tmp_path)

    output = run.stdout + run.stderr
    problem_lines = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert run.returncode != 0, output
    assert "Traceback" not in output, output
    assert SECRET not in output, output
    assert case.expected in run.stderr, output
    # One sentence; a settings error is its header ("invalid settings:") and the variable's line.
    assert len(problem_lines) == (2 if problem_lines[0] == "invalid settings:" else 1), output


def test_a_misspelt_variable_is_warned_with_the_nearest_name(tmp_path: Path) -> None:
    env = _env(tmp_path, {"HERA_ROUTNG__POLICY": "all-llm", "HERA_OPENAI__CHAT_TIMEOUT": "5", "HERA_ZZZ": "1"})

    run = _hera(["config"], env, tmp_path)

    assert run.returncode == 0, run.stderr
    assert (
        "warning: HERA_ROUTNG__POLICY is not a hera-router setting and is ignored; did you mean HERA_ROUTING__POLICY?"
        in run.stderr
    )
    assert "did you mean HERA_OPENAI__CHAT_TIMEOUT_S?" in run.stderr
    assert "warning: HERA_ZZZ is not a hera-router setting" in run.stderr
    assert '"policy": "hera"' in run.stdout  # ignored, as the warning says; stdout stays JSON


@pytest.mark.postgres
def test_a_postgres_url_is_accepted(tmp_path: Path) -> None:
    with fresh_postgres_database("hera_cli_url") as url:
        plain = url.replace("postgresql+psycopg://", "postgres://", 1)
        env = _env(tmp_path, {"HERA_DATABASE_URL": plain})

        upgraded = _hera(["db", "upgrade"], env, tmp_path)
        status = _hera(["status"], env, tmp_path)

    assert upgraded.returncode == 0, upgraded.stderr
    assert "postgresql+psycopg://" in upgraded.stdout
    assert status.returncode == 0, status.stderr


def test_help_shows_the_defaults_and_version_exists(tmp_path: Path) -> None:
    env = _env(tmp_path, {})

    serve_api = _hera(["serve-api", "--help"], env, tmp_path)
    worker = _hera(["worker", "--help"], env, tmp_path)
    version = _hera(["--version"], env, tmp_path)

    serve_api_help, worker_help = (" ".join(run.stdout.split()) for run in (serve_api, worker))  # unwrapped
    assert serve_api.returncode == 0, serve_api.stderr
    assert "Port [default: HERA_API__PORT, 8000]" in serve_api_help
    assert "Bind address [default: HERA_API__HOST, 127.0.0.1]" in serve_api_help
    assert "[default: 2;" in worker_help
    assert "[default: router]" in worker_help
    assert version.returncode == 0
    assert version.stdout.strip() == f"hera-router {metadata.version('hera-router')}"
