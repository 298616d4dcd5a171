"""What the OpenAI routes share: the service dependency and the documented error answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from hera_router.api.openai.errors import OpenAIErrorBody
from hera_router.api.openai.service import OpenAIService


def openai_service(request: Request) -> OpenAIService:
    service: OpenAIService = request.app.state.hera_openai
    return service


Service = Annotated[OpenAIService, Depends(openai_service)]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OpenAIErrorBody, "description": "The request is not valid; `param` names the field."},
    401: {"model": OpenAIErrorBody, "description": "No API key, or not a valid one."},
    404: {"model": OpenAIErrorBody, "description": "No such object for this tenant."},
    413: {"model": OpenAIErrorBody, "description": "The body is larger than the limit the message names."},
    429: {
        "model": OpenAIErrorBody,
        "description": (
            "`insufficient_quota`: the tenant is at its daily or monthly budget (the message names it); "
            "`rate_limit_exceeded`: the key is over its rate limit (`Retry-After` says when to try again)."
        ),
    },
    500: {"model": OpenAIErrorBody, "description": "An unexpected failure (logged)."},
    503: {"model": OpenAIErrorBody, "description": "The database is unreachable or not migrated."},
}
