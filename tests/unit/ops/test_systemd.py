"""ops/systemd: one unit per process kind, always restarted, and every ExecStart parses with the CLI."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from tests.unit.ops.compose import REPO, hera_services, load_compose, resolve_cli

UNITS = REPO / "ops" / "systemd"
KINDS = {
    "api": "serve-api",
    "router": "worker",
    "edge": "worker",
    "cloud": "worker",
    "maintenance": "worker",
    "trainer": "worker",
    "beat": "beat",
    "flower": "flower",
}


def load_unit(path: Path) -> configparser.ConfigParser:
    # systemd allows repeated keys (Environment=); none of ours repeats one.
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def exec_argv(unit: configparser.ConfigParser) -> list[str]:
    """ExecStart as the process will see it: systemd expands %H to the host name and %% to %."""
    argv = shlex.split(unit["Service"]["ExecStart"])
    return [arg.replace("%H", "host-1").replace("%%", "%") for arg in argv]


def test_one_unit_per_process_kind_always_restarted() -> None:
    found = {path.stem.removeprefix("hera-") for path in UNITS.glob("hera-*.service")}
    assert found == set(KINDS)
    for kind in KINDS:
        unit = load_unit(UNITS / f"hera-{kind}.service")
        service = unit["Service"]
        assert service["Restart"] == "always", kind
        assert 1 <= int(service["RestartSec"].removesuffix("s")) <= 30, kind
        assert service["EnvironmentFile"].startswith("/etc/hera-router/"), kind
        assert "StartLimitBurst" in unit["Unit"], kind
        assert unit["Install"]["WantedBy"] == "hera.target", kind


def test_every_exec_start_parses_with_the_cli() -> None:
    for kind, command in KINDS.items():
        argv = exec_argv(load_unit(UNITS / f"hera-{kind}.service"))
        assert argv[0].endswith("/hera-router"), kind
        assert resolve_cli(argv[1:]).name == command, kind
        if command == "worker":
            assert "-Q" in argv, kind
            queues = argv[argv.index("-Q") + 1]
            assert kind in queues or (kind == "trainer" and queues == "training"), kind
            assert argv[argv.index("-n") + 1] == f"{kind}@host-1", kind  # one node name per kind


def test_the_target_wants_units_that_exist() -> None:
    wants = load_unit(UNITS / "hera.target")["Unit"]["Wants"].split()
    assert wants
    for name in wants:
        assert (UNITS / name).exists(), name


def test_every_long_running_compose_service_restarts_unless_stopped() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        if name in ("migrate", "bootstrap"):
            assert service["restart"] == "no"  # a one-shot job
        else:
            assert service.get("restart") == "unless-stopped", name
    assert len(hera_services(load_compose())) == 10
