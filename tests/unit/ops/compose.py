"""Reading docker/compose.yaml for the tests: services, their argv and HERA_* settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the venv
from pydantic import BaseModel

from hera_router.cli import app as cli_app
from hera_router.config import ENV_PREFIX, NESTED_DELIMITER, Settings

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker" / "compose.yaml"


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


def load_compose() -> dict[str, Any]:
    """The compose file as ``docker compose`` reads it with no ``.env``: ``${VAR:-default}`` is the
    default (the test processes' own environment is not the deployment's)."""
    text = _VARIABLE.sub(lambda m: m.group("default") or "", COMPOSE.read_text())
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def hera_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services whose command is a hera-router command."""
    return {
        name: service
        for name, service in compose["services"].items()
        if isinstance(service.get("command"), list) and service["command"][:1] == ["hera-router"]
    }


def resolve_cli(argv: list[str]) -> Any:
    """Parse ``hera-router ARGV`` with the real (click) command tree, as running it would; raises
    the usage error it would print. Typer vendors click, so groups are recognised by behaviour."""
    command: Any = typer.main.get_command(cli_app)
    ctx = command.make_context("hera-router", list(argv))
    while hasattr(command, "resolve_command"):
        args = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        name, sub, rest = command.resolve_command(ctx, args)
        assert sub is not None, f"no command in {argv}"
        assert name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return command


def is_known_setting(variable: str) -> bool:
    """Is ``HERA_A__B`` a field path of :class:`Settings` (nested groups by ``__``)?"""
    if not variable.startswith(ENV_PREFIX):
        return False
    parts = variable[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER)
    model: type[BaseModel] = Settings
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if index == len(parts) - 1:
            return True
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return False
