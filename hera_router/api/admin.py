"""Admin routes: trigger continual fine-tuning, read the training runs.

Authenticated with the operator's token (``HERA_API__ADMIN_TOKEN``), not a tenant key: retraining
changes routing for every tenant. Without the setting the routes answer 403 and say how to enable
them. The retrain route only publishes ``training.retrain_nightly`` for a slot; the training
queue's worker does the work and ``GET /v1/admin/training-runs`` (or ``hera-router runs``) shows
how it went.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hera_router.api.auth import CHALLENGE, bearer
from hera_router.api.schemas import ErrorBody
from hera_router.api.state import ApiState, api_state

State = Annotated[ApiState, Depends(api_state)]


def authenticate_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    state: State,
) -> None:
    token = state.settings.api.admin_token
    if token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admin routes are disabled; set HERA_API__ADMIN_TOKEN on the API and send it as a Bearer token",
        )
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "no admin token was sent; send 'Authorization: Bearer <HERA_API__ADMIN_TOKEN>'",
            headers=CHALLENGE,
        )
    if not hmac.compare_digest(credentials.credentials.encode(), token.get_secret_value().encode()):
        # A tenant's API key lands here too: it authenticates tenants, not operators.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route needs the admin token (HERA_API__ADMIN_TOKEN)")


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(authenticate_admin)],
    responses={
        401: {"model": ErrorBody, "description": "No admin token."},
        403: {"model": ErrorBody, "description": "Not the admin token, or admin routes disabled."},
    },
)


class RetrainBody(BaseModel):
    estimators: list[str] | None = Field(
        default=None, description="Estimators to update (dp, urc, sp_slm, sp_llm); default HERA_CONTINUAL__ESTIMATORS."
    )
    slot: datetime | None = Field(
        default=None, description="Schedule slot (one run per estimator and slot); default: the current minute."
    )


class RetrainQueued(BaseModel):
    slot: datetime
    task_id: str
    estimators: list[str]


class TrainingRunView(BaseModel):
    id: str
    estimator: str
    slot: datetime
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    error: str | None
    metrics: dict[str, Any]


@router.post("/retrain", status_code=status.HTTP_202_ACCEPTED, summary="Queue continual fine-tuning now")
async def retrain(state: State, body: RetrainBody | None = None) -> RetrainQueued:
    """Publish `training.retrain_nightly` for a slot on the training queue (the same task beat runs
    nightly). A second call for the same slot does nothing more: the run is unique per slot."""
    from hera_router.db.base import utcnow
    from hera_router.pipeline.names import TaskName
    from hera_router.training.continual import CONTINUAL_ESTIMATORS, manual_slot

    body = body or RetrainBody()
    names = body.estimators or list(state.settings.continual.estimators)
    unknown = [name for name in names if name not in CONTINUAL_ESTIMATORS]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"cannot retrain {', '.join(unknown)} continually; choose from {', '.join(CONTINUAL_ESTIMATORS)}",
        )
    slot = manual_slot(body.slot if body.slot is not None and body.slot.tzinfo else utcnow())
    task_id = f"retrain:{slot.isoformat()}"
    kwargs = {"scheduled_for": slot.isoformat(), "trigger": "api", "names": names}

    def send() -> None:
        state.celery.send_task(TaskName.RETRAIN_NIGHTLY, kwargs=kwargs, task_id=task_id)

    try:
        await run_in_threadpool(send)
    except Exception as exc:  # the broker refused or is down: say so, nothing was queued
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the broker did not accept the task ({exc}); try again"
        ) from None
    return RetrainQueued(slot=slot, task_id=task_id, estimators=names)


@router.get("/training-runs", summary="Training runs, newest first")
def training_runs(
    state: State,
    estimator: Annotated[str | None, Query(description="Only this estimator's runs.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[TrainingRunView]:
    from hera_router.db.repositories import TrainingRunRepository
    from hera_router.db.session import session_scope

    with session_scope(state.sessions) as session:
        return [
            TrainingRunView(
                id=str(row.id),
                estimator=row.model_name,
                slot=row.scheduled_for,
                status=row.status.value,
                started_at=row.started_at,
                finished_at=row.finished_at,
                heartbeat_at=row.heartbeat_at,
                error=row.error,
                metrics=row.metrics,
            )
            for row in TrainingRunRepository(session).recent(limit, estimator)
        ]
