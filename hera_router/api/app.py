"""The producer API's application factory.

``create_app(settings)`` builds everything the routes need (the Celery producer with its database
runtime, the submission service, the publisher thread) and nothing at import time; the engine
connects on first use and the broker on first publish. ``uvicorn --factory
hera_router.api.app:create_app`` works too: without arguments the settings come from the
environment (and nothing in that process consumes: on the embedded ``memory://`` broker use
``hera-router serve-api``, which runs the workers beside the API).

Every error response is ``{"error": "<sentence>"}`` (plus ``details`` or ``rejected`` where there
is more to say), whatever raised it: FastAPI's validation, an HTTPException, or a service error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hera_router.api import console, docs, error_shapes, errors
from hera_router.api import metrics as api_metrics
from hera_router.api.admin import router as admin_router
from hera_router.api.health import database_problem
from hera_router.api.limits import BodyLimit, BodySizeLimitMiddleware
from hera_router.api.listing import router as listing_router
from hera_router.api.openai import install as openai_api
from hera_router.api.publisher import BackgroundPublisher
from hera_router.api.ratelimit import rate_limiter
from hera_router.api.routes import router
from hera_router.api.service import SubmissionService
from hera_router.api.state import ApiState
from hera_router.api.validation import describe_error
from hera_router.api.views import RequestViews
from hera_router.backends.pricing import require_cloud_prices
from hera_router.config import Settings, load_settings
from hera_router.metrics.instruments import MetricsEndpoint
from hera_router.workers.app import HeraCelery
from hera_router.workers.app import create_app as create_celery_app
from hera_router.workers.publisher import celery_dispatcher

log = logging.getLogger(__name__)

DESCRIPTION = """\
Submit AI-agent requests one by one or in batches; every step of each request is routed between an
edge SLM and a cloud LLM, and its subtasks, decisions and costs are recorded.

Authenticate with `Authorization: Bearer <key>` (keys come from `hera-router keys create`).
Errors are JSON: `{"error": "<what was wrong and what to do>"}` on the native routes, and OpenAI's
`{"error": {"message", "type", "param", "code"}}` on the OpenAI-compatible ones (`/v1/files`,
`/v1/batches`, `/v1/chat/completions`, `/v1/models`), which the official `openai` client reads.
"""

MULTIPART_SLACK_BYTES = 64 * 1024
"""Room for multipart boundaries and form fields around an uploaded file of the maximum size."""

SERVICE_ERROR_STATUS: dict[type[errors.SubmissionError], int] = {
    errors.InvalidRequestError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    errors.BatchRejectedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    errors.TooLargeError: status.HTTP_413_CONTENT_TOO_LARGE,
    errors.NotFoundError: status.HTTP_404_NOT_FOUND,
    errors.NotCancellableError: status.HTTP_409_CONFLICT,
    errors.BudgetExceededError: status.HTTP_402_PAYMENT_REQUIRED,
}


def create_app(settings: Settings | None = None, *, celery: HeraCelery | None = None) -> FastAPI:
    """The API on ``settings``; with ``celery``, on that Celery app and its database runtime (the
    embedded ``serve-api`` passes the app its in-process workers consume, so the API's messages
    reach them through the ``memory://`` broker and both share one engine)."""
    settings = settings if settings is not None else load_settings()
    require_cloud_prices(settings)  # a cloud model billed $0 would slip past every budget
    producer_only = celery is None
    celery = celery if celery is not None else create_celery_app(settings)
    dispatcher = celery_dispatcher(celery)
    publisher = BackgroundPublisher(dispatcher)
    sessions = celery.hera_runtime.sessions  # lazy: builds the engine object, opens no connection
    state = ApiState(
        settings=settings,
        celery=celery,
        publisher=publisher,
        submissions=SubmissionService(settings, sessions, dispatcher, publish=publisher),
        views=RequestViews(sessions, results_page_size=settings.api.results_page_size),
    )
    metrics = MetricsEndpoint(settings, multiprocess_dir=settings.ops.metrics_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        problem = database_problem(state.engine)
        if problem is not None:
            # Serve anyway (healthz reports it, and the database may come up later), but say so now.
            log.error("%s", problem)
        if producer_only and settings.broker_url.startswith("memory://"):
            log.warning(
                "the broker is memory:// and this process runs no workers: accepted requests stay queued "
                "(`hera-router serve-api` runs the workers beside the API on the embedded default)"
            )
        yield
        state.close()
        metrics.close()

    app = FastAPI(
        title="hera-router",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.hera = state
    app.state.hera_limiter = rate_limiter(settings)
    file_limit = BodyLimit(
        settings.openai.max_file_bytes + MULTIPART_SLACK_BYTES,
        "HERA_OPENAI__MAX_FILE_BYTES",
        "split the file",
        stated_bytes=settings.openai.max_file_bytes,
    )
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.api.max_upload_bytes, path_limits={"/v1/files": file_limit}
    )
    _install_error_handlers(app)
    error_shapes.install(app)
    app.include_router(listing_router)
    app.include_router(router)
    app.include_router(admin_router)
    openai_api.install(app, state)
    console.install(app, state)
    docs.install(app)
    api_metrics.install(app, metrics)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def validation_failed(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [describe_error(error) for error in exc.errors()]
        return JSONResponse(
            {
                "error": "; ".join(f"{field}: {message}" for field, message in details),
                "details": [{"field": field, "message": message} for field, message in details],
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.SubmissionError)
        code = next(code for kind, code in SERVICE_ERROR_STATUS.items() if isinstance(exc, kind))
        body: dict[str, object] = {"error": str(exc)}
        if isinstance(exc, errors.BatchRejectedError):
            body["rejected"] = [rejection.as_record() for rejection in exc.rejected]
        return JSONResponse(body, status_code=code)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        # Either the database is down or it was never migrated; both are the operator's to fix,
        # and the client should retry later rather than read a stack trace.
        state: ApiState = request.app.state.hera
        log.error("database error on %s %s: %s", request.method, request.url.path, exc)
        problem = database_problem(state.engine) or "the database failed to answer; try again later"
        return JSONResponse({"error": problem}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(errors.SubmissionError, service_error)
    app.add_exception_handler(DBAPIError, database_error)
