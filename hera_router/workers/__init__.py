"""The Celery runtime: ``create_app``, queues, the Task base class, embedded workers.

``celery -A hera_router.workers worker ...`` finds the app through the module attribute ``app``,
built on first access from the environment's settings (PEP 562), so importing this package never
connects to anything.
"""

from __future__ import annotations

from typing import Any

from hera_router.workers.app import HeraCelery, create_app
from hera_router.workers.queues import Queue

__all__ = ["HeraCelery", "Queue", "create_app"]

_app: HeraCelery | None = None


def __getattr__(name: str) -> Any:
    global _app  # noqa: PLW0603  # the one lazily built app of a `celery -A` process
    if name in {"app", "celery"}:
        if _app is None:
            from hera_router.config import load_settings

            _app = create_app(load_settings())
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
