"""``python -m hera_router.cli``: the same as the ``hera-router`` command."""

from hera_router.cli import app

app(prog_name="hera-router")
