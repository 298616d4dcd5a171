"""A cap on request body size, enforced before and while the body is read.

A declared ``Content-Length`` over the cap is refused before the route runs; a chunked body is
counted as it streams in and refused as soon as it passes the cap, so an oversized upload never
sits in memory or in a temporary file in full.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def body_too_large_message(limit: int) -> str:
    return (
        f"the request body is larger than the limit of {limit:,} bytes (HERA_API__MAX_UPLOAD_BYTES); "
        "split the batch into smaller ones"
    )


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` mid-body; an HTTPException so FastAPI passes it through to the
    app's handler instead of turning it into "There was an error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, body_too_large_message(limit))


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(
                {"error": body_too_large_message(self.max_bytes)}, status_code=status.HTTP_413_CONTENT_TOO_LARGE
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, counted_receive, send)
