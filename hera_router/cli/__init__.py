"""The ``hera-router`` command line: one module per command group, all on one Typer app.

Configuration comes from HERA_* environment variables (README); every command reads the settings
once and reports bad ones as one readable message, and an unreachable or unmigrated database or
broker is one sentence, not a traceback (``base.HeraTyper``).
"""

from __future__ import annotations

import importlib

from hera_router.cli.base import app, quiet_libraries, settings_or_exit
from hera_router.cli.evaluation import eval_app
from hera_router.cli.world import world_app
from hera_router.config import load_settings, mask_url

# Commands register on ``app`` when their module is imported; this order is the order of --help.
for _group in ("requests", "operate", "processes", "tenants", "estimators", "db"):
    importlib.import_module(f"hera_router.cli.{_group}")

app.add_typer(world_app, name="world")
app.add_typer(eval_app, name="eval")

__all__ = ["app", "load_settings", "mask_url", "quiet_libraries", "settings_or_exit"]
