"""API-key authentication: ``Authorization: Bearer <key>`` → the caller's tenant.

Keys are stored hashed (``ApiKeyRepository``); a missing, malformed, unknown or revoked key is a
401 whose message says which of "missing" or "not valid" it was, never more (no hint whether a
key exists but was revoked).

An authenticated call is then admitted by the key's rate limits (``api/ratelimit.py``): over one,
the answer is 429 with ``Retry-After`` (in OpenAI's error shape on the OpenAI routes, code
``rate_limit_exceeded``). Each key's ``last_used_at`` is refreshed at most once a minute.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hera_router.api.openai.errors import OpenAIError, is_openai_path
from hera_router.api.ratelimit import KeyLimits, RateLimiter, refusal_message, tokens_of
from hera_router.api.state import ApiState, api_state
from hera_router.db.repositories import ApiKeyRepository
from hera_router.db.session import session_scope

# auto_error=False: FastAPI's own 403 "Not authenticated" would say neither what nor how.
bearer = HTTPBearer(auto_error=False, description="An API key created with `hera-router keys create`.")

CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the tenant every read and write is scoped to, and the key used."""

    tenant_id: uuid.UUID
    key_id: uuid.UUID


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    state: Annotated[ApiState, Depends(api_state)],
) -> Caller:
    if credentials is None:
        detail = (
            "the Authorization header is not a Bearer key"
            if request.headers.get("authorization")
            else "no API key was sent"
        )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"{detail}; send 'Authorization: Bearer <key>' with a key from `hera-router keys create`",
            headers=CHALLENGE,
        )
    with session_scope(state.sessions) as session:
        keys = ApiKeyRepository(session)
        key = keys.find_by_secret(credentials.credentials)
        if key is None:
            caller, limits, prefix = None, None, ""
        else:
            keys.mark_used(key)
            caller = Caller(tenant_id=key.tenant_id, key_id=key.id)
            api = state.settings.api
            limits = KeyLimits(
                api.requests_per_minute if key.requests_per_minute is None else key.requests_per_minute,
                api.tokens_per_minute if key.tokens_per_minute is None else key.tokens_per_minute,
            )
            prefix = key.prefix
    if caller is None or limits is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API key is not valid (unknown or revoked); check it, or create a new one with "
            "`hera-router keys create`",
            headers=CHALLENGE,
        )
    limiter: RateLimiter | None = getattr(request.app.state, "hera_limiter", None)
    if limiter is not None and not limits.unlimited:
        refusal = limiter.admit(caller.key_id, tokens_of(request.headers.get("content-length")), limits)
        if refusal is not None:
            message = refusal_message(refusal, prefix)
            headers = {"Retry-After": str(refusal.retry_after_s)}
            if is_openai_path(request.url.path):
                raise OpenAIError(
                    status.HTTP_429_TOO_MANY_REQUESTS, message, code="rate_limit_exceeded", headers=headers
                )
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, message, headers=headers)
    return caller


CurrentCaller = Annotated[Caller, Depends(authenticate)]
