"""Errors of the OpenAI-compatible routes, in OpenAI's shape.

``{"error": {"message", "type", "param", "code"}}`` is what the official client parses: it raises
``BadRequestError`` for 400, ``NotFoundError`` for 404 and so on, with ``.message``, ``.param``
and ``.code`` read from this body. Native routes keep ``{"error": "<sentence>"}``; which shape an
answer takes depends only on its path (:func:`is_openai_path`).
"""

from __future__ import annotations

from typing import Any

from fastapi import status
from pydantic import BaseModel
from starlette.responses import JSONResponse

OPENAI_PREFIXES: tuple[str, ...] = ("/v1/files", "/v1/batches", "/v1/chat/completions", "/v1/models")
NATIVE_PREFIXES: tuple[str, ...] = ("/v1/agent-", "/v1/admin", "/v1/costs", "/v1/budget", "/v1/console")

ERROR_TYPES: dict[int, str] = {
    status.HTTP_400_BAD_REQUEST: "invalid_request_error",
    status.HTTP_401_UNAUTHORIZED: "authentication_error",
    status.HTTP_403_FORBIDDEN: "permission_error",
    status.HTTP_404_NOT_FOUND: "invalid_request_error",
    status.HTTP_405_METHOD_NOT_ALLOWED: "invalid_request_error",
    status.HTTP_409_CONFLICT: "invalid_request_error",
    status.HTTP_413_CONTENT_TOO_LARGE: "invalid_request_error",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "invalid_request_error",
    status.HTTP_422_UNPROCESSABLE_CONTENT: "invalid_request_error",
    status.HTTP_429_TOO_MANY_REQUESTS: "rate_limit_error",
}
DEFAULT_CODES: dict[int, str] = {
    status.HTTP_401_UNAUTHORIZED: "invalid_api_key",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_413_CONTENT_TOO_LARGE: "too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
}


def is_openai_path(path: str) -> bool:
    """Answers on these paths use OpenAI's error shape: the OpenAI routes, and any other ``/v1``
    path that is not a native one (an OpenAI client calling a route we do not serve)."""
    if path.startswith(OPENAI_PREFIXES):
        return True
    return path.startswith("/v1/") and not path.startswith(NATIVE_PREFIXES)


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """Every error of the OpenAI-compatible routes."""

    error: OpenAIErrorDetail


class OpenAIError(Exception):
    """Raised by the OpenAI routes; answered in OpenAI's shape with ``status_code``."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers


def error_body(status_code: int, message: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    error_type = ERROR_TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error")
    return {
        "error": {
            "message": message,
            "type": error_type,
            "param": param,
            "code": code if code is not None else DEFAULT_CODES.get(status_code),
        }
    }


def error_response(
    status_code: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status_code, message, param=param, code=code), status_code, headers=headers)


def from_native(status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A native error answer (``{"error": "<sentence>", "details"?: [...]}``) in OpenAI's shape.

    Validation errors become 400 (OpenAI answers invalid parameters with 400, never 422), with the
    first offending field as ``param`` (``body.purpose`` → ``purpose``).
    """
    message = str(body.get("error", "the request failed"))
    param: str | None = None
    details = [detail for detail in body.get("details") or [] if isinstance(detail, dict)]
    if details:
        fields = [_param(str(detail.get("field", ""))) for detail in details]
        param = fields[0]
        message = "; ".join(
            text if text.startswith("`") else f"`{field}`: {text}"
            for field, text in zip(fields, (str(detail.get("message", "")) for detail in details), strict=True)
        )
    if status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        status_code = status.HTTP_400_BAD_REQUEST
    return error_response(status_code, message, param=param, headers=headers)


def _param(field: str) -> str:
    """``body.purpose`` → ``purpose``: OpenAI names parameters without their location."""
    return field.split(".", 1)[1] if field.startswith(("body.", "query.", "path.")) else field
