"""A cap on request body size, enforced before and while the body is read.

A declared ``Content-Length`` over the cap is refused before the route runs; a chunked body is
counted as it streams in and refused as soon as it passes the cap, so an oversized upload never
sits in memory or in a temporary file in full.

One cap applies to every route (``HERA_API__MAX_UPLOAD_BYTES``) except those given their own
(``path_limits``: the Files API takes files up to ``HERA_OPENAI__MAX_FILE_BYTES``). The refusal
names the setting to raise, in the error shape of the route's family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hera_router.api.openai.errors import error_response, is_openai_path


@dataclass(frozen=True, slots=True)
class BodyLimit:
    max_bytes: int
    setting: str = "HERA_API__MAX_UPLOAD_BYTES"
    advice: str = "split the batch into smaller ones"
    stated_bytes: int | None = None
    """The setting's value, when ``max_bytes`` adds room for framing (multipart boundaries)."""

    def message(self) -> str:
        limit = self.stated_bytes if self.stated_bytes is not None else self.max_bytes
        return f"the request body is larger than the limit of {limit:,} bytes ({self.setting}); {self.advice}"


def body_too_large_message(limit: int) -> str:
    return BodyLimit(limit).message()


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` mid-body; an HTTPException so FastAPI passes it through to the
    app's handler instead of turning it into "There was an error parsing the body"."""

    def __init__(self, limit: BodyLimit | int) -> None:
        limit = limit if isinstance(limit, BodyLimit) else BodyLimit(limit)
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, limit.message())


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, path_limits: Mapping[str, BodyLimit] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.default = BodyLimit(max_bytes)
        self.path_limits = dict(path_limits or {})

    def limit_for(self, path: str) -> BodyLimit:
        return next((limit for prefix, limit in self.path_limits.items() if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = self.limit_for(path)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit.max_bytes:
            code = status.HTTP_413_CONTENT_TOO_LARGE
            response = (
                error_response(code, limit.message(), code="too_large")
                if is_openai_path(path)
                else JSONResponse({"error": limit.message()}, status_code=code)
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counted_receive, send)
