"""The per-app resources the routes share, built once by ``create_app``.

Kept on ``app.state`` rather than in module globals, so two apps (two tests, two databases) in one
process never share an engine or a broker connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.publisher import BackgroundPublisher
from hera_router.api.service import SubmissionService
from hera_router.api.views import RequestViews
from hera_router.config import Settings
from hera_router.workers.app import HeraCelery


@dataclass(slots=True)
class ApiState:
    settings: Settings
    celery: HeraCelery
    """The producer: only ever publishes (through the outbox); consumes nothing."""
    publisher: BackgroundPublisher
    submissions: SubmissionService
    views: RequestViews

    @property
    def engine(self) -> Engine:
        return self.celery.hera_runtime.engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.celery.hera_runtime.sessions

    def close(self) -> None:
        """Stop the publisher thread and close the database pool (app shutdown, test teardown)."""
        self.publisher.close()
        self.celery.hera_runtime.close()


def api_state(request: Request) -> ApiState:
    """FastAPI dependency: the state of the app serving ``request``."""
    state: ApiState = request.app.state.hera
    return state
