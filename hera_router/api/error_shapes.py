"""One documented error shape per route family, whatever raised the error, and never a 5xx for
bad input.

``install(app)`` runs after ``app.py`` has registered its handlers and:

- rewrites the framework's own words into sentences that say what to do: a routing 404 names
  the routes this API serves, a 405 the path, FastAPI's "There was an error parsing the body"
  (a multipart body without a boundary, a JSON body that is not UTF-8) what could not be parsed;
- answers OpenAI routes (``/v1/files`` ...) in OpenAI's shape (``api/openai/errors.py``) and the
  native ones in ``{"error": "<sentence>"}``;
- refuses a NUL character in the path or a query parameter (Postgres cannot compare or store
  one) with 422 naming the parameter, before any route runs;
- turns a database *data* error (a value the database refuses, which only input can cause) into
  422 instead of the outage answer (503), and an unexpected error into a JSON 500 with no trace.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hera_router.api.openai.errors import OpenAIError, error_response, from_native, is_openai_path
from hera_router.api.storable import text_problem

log = logging.getLogger(__name__)

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]

ROUTES_HINT = (
    "this API serves the OpenAI-compatible /v1/chat/completions, /v1/files, /v1/batches and /v1/models, "
    "and the native /v1/agent-requests and /v1/agent-batches (see /docs)"
)
PARSE_ERROR = "There was an error parsing the body"


def install(app: FastAPI) -> None:
    app.add_exception_handler(OpenAIError, _openai_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(UnicodeEncodeError, _data_error)
    app.add_exception_handler(Exception, _unexpected_error)
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _shaped(handler)
    app.add_middleware(UnstorableTextMiddleware)
    _document_errors(app)


COMMON_ERRORS: dict[str, str] = {
    "400": "The body could not be parsed (not UTF-8 JSON, a multipart body without its boundary).",
    "500": "An unexpected failure; it is logged, the body says no more.",
    "503": "The database is unreachable or not migrated; try again later.",
}


def _document_errors(app: FastAPI) -> None:
    """Add the answers every route can give to the OpenAPI document, in the route's error shape,
    so generated clients (and schemathesis) know every status the server sends."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        for path, operations in spec.get("paths", {}).items():
            shape = "OpenAIErrorBody" if is_openai_path(path) else "ErrorBody"
            for operation in operations.values():
                extra = dict(COMMON_ERRORS)
                if operation.get("security"):
                    extra["401"] = "No API key, or not a valid one."
                    extra["429"] = "The key is over its rate limit; `Retry-After` says when to try again."
                if "requestBody" in operation:
                    extra["413"] = "The body is larger than the limit the message names."
                if shape == "ErrorBody":
                    extra["422"] = "A parameter or field is not valid (or holds a NUL character); the message names it."
                responses = operation.setdefault("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    # FastAPI's default 422 ({"detail": [...]}) is never sent: validation errors
                    # answer in the route's shape (OpenAI routes: 400).
                    del responses["422"]
                for code, description in extra.items():
                    responses.setdefault(
                        code,
                        {
                            "description": description,
                            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
                        },
                    )
        schemas = spec.get("components", {}).get("schemas", {})
        if not json.dumps(spec["paths"]).count("HTTPValidationError"):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _shaped(handler: Handler) -> Handler:
    async def shaped(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        if not isinstance(response, JSONResponse):
            return response
        body = json.loads(bytes(response.body))
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return response
        body["error"] = _sentence(request, exc, body["error"])
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        if is_openai_path(request.url.path):
            return from_native(response.status_code, body, headers)
        return JSONResponse(body, response.status_code, headers=headers)

    return shaped


def _sentence(request: Request, exc: Exception, message: str) -> str:
    """The framework's terse messages as sentences; the package's own ones are left alone."""
    if not isinstance(exc, StarletteHTTPException):
        return message
    where = f"{request.method} {request.url.path}"
    if exc.status_code == status.HTTP_404_NOT_FOUND and message == "Not Found":
        return f"there is no route {where}; {ROUTES_HINT}"
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED and message == "Method Not Allowed":
        return f"{request.url.path} does not accept {request.method}; see /docs for the methods it does"
    if exc.status_code == status.HTTP_400_BAD_REQUEST and "multipart" in message.lower():
        return (
            f"the multipart/form-data body could not be parsed ({message.rstrip('.')}); send the file as a "
            "multipart upload with its boundary, as HTTP clients do"
        )
    if exc.status_code == status.HTTP_400_BAD_REQUEST and message == PARSE_ERROR:
        content_type = request.headers.get("content-type") or "no Content-Type"
        cause = exc.__cause__
        reason = f" ({type(cause).__name__}: {cause})" if cause is not None and str(cause) else ""
        return (
            f"the body could not be read as {content_type}{reason}; send JSON as UTF-8 with "
            "Content-Type application/json, or a file as multipart/form-data with its boundary"
        )
    return message


async def _openai_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenAIError)
    return error_response(exc.status_code, exc.message, param=exc.param, code=exc.code, headers=exc.headers)


async def _data_error(request: Request, exc: Exception) -> Response:
    # Only a value the client sent can make the database refuse *data* (text it cannot encode, a
    # number out of range); the validators should have caught it, so log it to fix them.
    log.warning("the database refused a value on %s %s: %s", request.method, request.url.path, exc)
    reason = getattr(exc, "orig", None) or exc
    message = (
        f"the database cannot store a value of this request ({str(reason).strip().splitlines()[0]}); "
        "check the text fields for NUL characters or invalid Unicode"
    )
    return JSONResponse({"error": message}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "the server failed unexpectedly while answering; the error is logged, try again or report it"
    if is_openai_path(request.url.path):
        return error_response(status.HTTP_500_INTERNAL_SERVER_ERROR, message, code="server_error")
    return JSONResponse({"error": message}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


class UnstorableTextMiddleware:
    """422 (OpenAI routes: 400) for a NUL character in the path or in a query parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (problem := _request_line_problem(scope)) is not None:
            field, message = problem
            path = str(scope.get("path", ""))
            response: Response
            if is_openai_path(path):
                response = error_response(status.HTTP_400_BAD_REQUEST, message, param=field.split(".", 1)[-1])
            else:
                body: dict[str, Any] = {"error": message, "details": [{"field": field, "message": message}]}
                response = JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _request_line_problem(scope: Scope) -> tuple[str, str] | None:
    path = str(scope.get("path", ""))
    if (problem := text_problem(path)) is not None:
        return "path", f"the path {problem}"
    raw = bytes(scope.get("query_string", b"")).decode("latin-1")
    if "%00" not in raw and "\x00" not in raw:
        return None
    for name, value in parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if (problem := text_problem(name)) is not None:
            return "query", f"a query parameter name {problem}"
        if (problem := text_problem(value)) is not None:
            return f"query.{name}", f"query parameter `{name}` {problem}"
    return None
