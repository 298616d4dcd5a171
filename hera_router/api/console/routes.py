"""The web console: static pages under ``/console`` and the JSON they read under ``/v1/console``.

Sign-in: the page asks for a token and keeps it in the tab's ``sessionStorage`` (gone when the
tab closes, never in a cookie, so no request is authenticated by the browser on its own and there
is nothing to forge cross-site); every call sends it as ``Authorization: Bearer``, as any client
does. The admin token (``HERA_API__ADMIN_TOKEN``) sees every tenant; a tenant's API key sees only
that tenant's requests and batches (another tenant's id answers 404) and is rate limited as on
every other route.

The pages are plain HTML, CSS and JavaScript in ``static/``, served from the package: no CDN, no
build step. The HTML answers with a Content-Security-Policy that allows scripts and styles from
this origin only, and the script writes text with ``textContent``, never as markup.
"""

from __future__ import annotations

import hmac
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles

from hera_router.api.auth import authenticate, bearer
from hera_router.api.console.schemas import BatchRow, ConsoleBatch, ConsoleRequest, Overview, RequestRow, Viewer
from hera_router.api.console.service import ConsoleService
from hera_router.api.schemas import ErrorBody
from hera_router.api.state import ApiState, api_state
from hera_router.db.enums import RequestStatus
from hera_router.db.repositories import TenantRepository
from hera_router.db.session import session_scope

STATIC = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

State = Annotated[ApiState, Depends(api_state)]


def authenticate_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    state: State,
) -> Viewer:
    """The admin token, else a tenant's API key (401 or 429 as on the tenant routes)."""
    token = state.settings.api.admin_token
    if (
        credentials is not None
        and token is not None
        and hmac.compare_digest(credentials.credentials.encode(), token.get_secret_value().encode())
    ):
        return Viewer(role="admin")
    caller = authenticate(request, credentials, state)
    with session_scope(state.sessions) as session:
        tenant = TenantRepository(session).get(caller.tenant_id)
        name = tenant.name if tenant is not None else str(caller.tenant_id)
    return Viewer(role="tenant", tenant=name, tenant_id=caller.tenant_id)


CurrentViewer = Annotated[Viewer, Depends(authenticate_viewer)]


def console_service(request: Request) -> ConsoleService:
    service: ConsoleService = request.app.state.hera_console
    return service


Service = Annotated[ConsoleService, Depends(console_service)]
Limit = Annotated[int, Query(ge=1, le=500, description="Rows to show.")]

router = APIRouter(
    prefix="/v1/console",
    tags=["console"],
    responses={
        401: {"model": ErrorBody, "description": "No token, or neither the admin token nor a valid API key."},
        404: {"model": ErrorBody, "description": "No such object for this viewer."},
    },
)


@router.get("/me", summary="Who the token signs in as")
def me(viewer: CurrentViewer) -> Viewer:
    return viewer


@router.get("/requests", summary="Recent requests, newest first (every tenant's for the admin token)")
def requests(
    viewer: CurrentViewer,
    service: Service,
    limit: Limit = 50,
    status_filter: Annotated[RequestStatus | None, Query(alias="status", description="Only this status.")] = None,
) -> list[RequestRow]:
    return service.requests(viewer, limit, status_filter)


@router.get("/requests/{request_id}", summary="A request's subtask tree: routing, scores, escalations, calls")
def request_tree(request_id: uuid.UUID, viewer: CurrentViewer, service: Service) -> ConsoleRequest:
    found = service.request(viewer, request_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent request {request_id}")
    return found


@router.get("/batches", summary="Recent agent batches, newest first")
def batches(viewer: CurrentViewer, service: Service, limit: Limit = 50) -> list[BatchRow]:
    return service.batches(viewer, limit)


@router.get("/batches/{batch_id}", summary="A batch's progress and its failed lines")
def batch(batch_id: uuid.UUID, viewer: CurrentViewer, service: Service) -> ConsoleBatch:
    found = service.batch(viewer, batch_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent batch {batch_id}")
    return found


@router.get("/overview", summary="Routing over the last days: SLM share, cost against All-LLM, branches, spend")
def overview(
    viewer: CurrentViewer,
    service: Service,
    days: Annotated[int, Query(ge=1, le=366, description="UTC days to cover, today included.")] = 14,
) -> Overview:
    return service.overview(viewer, days)


def _page() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )


def install(app: FastAPI, state: ApiState) -> None:
    """Serve the console's pages and its JSON routes on ``app``."""
    app.state.hera_console = ConsoleService(state.settings, state.sessions, state.views)
    app.include_router(router)

    async def page() -> FileResponse:
        return _page()

    async def slash() -> Any:
        return RedirectResponse("/console", status_code=status.HTTP_308_PERMANENT_REDIRECT)

    app.add_api_route("/console", page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/console/", slash, methods=["GET"], include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
