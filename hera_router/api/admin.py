"""Admin routes: the operator's surface. Tenants and their keys (list, revoke, per-key rate
limits), any tenant's request (show, cancel) and batch (cancel), continual fine-tuning (trigger,
read the training runs).

Authenticated with the operator's token (``HERA_API__ADMIN_TOKEN``), not a tenant key: retraining
changes routing for every tenant. Without the setting the routes answer 403 and say how to enable
them. The retrain route only publishes ``training.retrain_nightly`` for a slot; the training
queue's worker does the work and ``GET /v1/admin/training-runs`` (or ``hera-router runs``) shows
how it went.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hera_router.api import operate
from hera_router.api.auth import CHALLENGE, bearer
from hera_router.api.openai import ids
from hera_router.api.openai.schemas import BatchObject
from hera_router.api.openai.service import OpenAIService
from hera_router.api.schemas import BatchCancelled, ErrorBody, RequestCancelled, RequestDetail
from hera_router.api.state import ApiState, api_state
from hera_router.api.tenants import (
    KeyRevokedError,
    KeySummary,
    NoSuchTenantOrKeyError,
    TenantError,
    TenantSummary,
    list_api_keys,
    list_tenants,
    revoke_api_key,
    set_key_limits,
)

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


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such tenant, key, request or batch."}
}


def _tenant_error(exc: TenantError) -> HTTPException:
    if isinstance(exc, NoSuchTenantOrKeyError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, KeyRevokedError):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.get("/tenants", summary="Every tenant, with its key counts and budgets")
def get_tenants(state: State) -> list[TenantSummary]:
    return list_tenants(state.sessions)


@router.get(
    "/tenants/{tenant}/keys", summary="A tenant's API keys (prefix and times, never the secret)", responses=NOT_FOUND
)
def get_keys(tenant: str, state: State) -> list[KeySummary]:
    try:
        return list_api_keys(state.sessions, tenant)
    except TenantError as exc:
        raise _tenant_error(exc) from None


@router.post(
    "/keys/{key_id}/revoke",
    summary="Revoke an API key",
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The key was already revoked."}},
)
def revoke_key(key_id: uuid.UUID, state: State) -> KeySummary:
    """From now on the key authenticates nothing (401)."""
    try:
        return revoke_api_key(state.sessions, key_id)
    except TenantError as exc:
        raise _tenant_error(exc) from None


class KeyLimitsBody(BaseModel):
    requests_per_minute: int | None = Field(
        default=None, ge=0, description="Calls per minute; null: HERA_API__REQUESTS_PER_MINUTE, 0: unlimited."
    )
    tokens_per_minute: int | None = Field(
        default=None, ge=0, description="Tokens sent per minute; null: HERA_API__TOKENS_PER_MINUTE, 0: unlimited."
    )


@router.put("/keys/{key_id}/limits", summary="Set an API key's own rate limits", responses=NOT_FOUND)
def put_key_limits(key_id: uuid.UUID, body: KeyLimitsBody, state: State) -> KeySummary:
    try:
        return set_key_limits(
            state.sessions,
            key_id,
            requests_per_minute=body.requests_per_minute,
            tokens_per_minute=body.tokens_per_minute,
        )
    except TenantError as exc:
        raise _tenant_error(exc) from None


@router.get("/requests/{request_id}", summary="Any tenant's request, its steps and cost", responses=NOT_FOUND)
def get_request(request_id: uuid.UUID, state: State) -> RequestDetail:
    return operate.show_request(state.views, state.sessions, request_id)


@router.post(
    "/requests/{request_id}/cancel",
    summary="Cancel any tenant's queued or running request",
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The request already finished."}},
)
def cancel_request(request_id: uuid.UUID, state: State) -> RequestCancelled:
    request = operate.cancel_request(state.submissions, request_id)
    return RequestCancelled(id=request.id, status=request.status)


@router.post(
    "/batches/{batch_id}/cancel",
    summary="Cancel any tenant's batch (an agent batch's UUID, or an OpenAI `batch_...` id)",
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The OpenAI batch already finished."}},
)
def cancel_batch(batch_id: str, request: Request, state: State) -> BatchCancelled | BatchObject:
    """An agent batch answers as `POST /v1/agent-batches/{id}/cancel` does, an OpenAI batch as
    `POST /v1/batches/{id}/cancel` does (moved to `cancelling`, its unfinished requests cancelled)."""
    if batch_id.startswith(ids.BATCH_PREFIX):
        return _cancel_openai_batch(request.app.state.hera_openai, state, batch_id)
    try:
        native = uuid.UUID(batch_id)
    except ValueError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no batch {batch_id!r}: expected an agent batch's UUID or a `batch_...` id"
        ) from None
    batch, cancelled = operate.cancel_batch(state.submissions, native)
    return BatchCancelled(id=batch.id, cancelled_at=batch.cancelled_at, cancelled_requests=cancelled)


def _cancel_openai_batch(service: OpenAIService, state: ApiState, public_id: str) -> BatchObject:
    from hera_router.api.openai.errors import OpenAIError
    from hera_router.db.models import OpenAIBatch
    from hera_router.db.session import session_scope

    key = ids.parse(public_id, ids.BATCH_PREFIX)
    with session_scope(state.sessions) as session:
        row = session.get(OpenAIBatch, key) if key is not None else None
        tenant_id = row.tenant_id if row is not None else None
    if tenant_id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no batch {public_id!r}")
    try:
        return service.cancel_batch(tenant_id, public_id)
    except OpenAIError as exc:  # the admin routes answer in the native shape
        raise HTTPException(exc.status_code, exc.message) from None
