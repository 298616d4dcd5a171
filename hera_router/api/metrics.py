"""``/metrics`` on the producer API, and the HTTP request counters behind it.

The endpoint has no auth, like Prometheus endpoints usually: keep the API's port on a private
network (or behind a proxy that does not route ``/metrics``); it shows counts, never ids.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from hera_router.metrics.instruments import API_LATENCY, API_REQUESTS, MetricsEndpoint

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    endpoint: MetricsEndpoint = request.app.state.metrics
    # The state collector queries Redis and Postgres with blocking clients.
    body = await run_in_threadpool(endpoint.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _route_template(request: Request) -> str:
    """The matched route's path template (bounded: no ids), or ``unmatched`` for 404s.

    The router records the route it matched in the ASGI scope, which this middleware shares.
    """
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"


def install(app: FastAPI, endpoint: MetricsEndpoint) -> None:
    """Serve ``endpoint`` on ``/metrics`` and count every other request by route and status."""
    app.state.metrics = endpoint
    app.include_router(router)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path == "/metrics":
            return await call_next(request)
        started = time.perf_counter()
        status_code = 500
        try:
            response = await call_next(request)
            status_code = response.status_code
            return response
        finally:
            route = _route_template(request)
            API_REQUESTS.labels(request.method, route, str(status_code)).inc()
            API_LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
