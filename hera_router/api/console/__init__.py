"""The web console: pages under ``/console``, their JSON under ``/v1/console`` (``routes.py``)."""

from hera_router.api.console.routes import install

__all__ = ["install"]
