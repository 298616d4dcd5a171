"""API-key authentication: ``Authorization: Bearer <key>`` → the caller's tenant.

Keys are stored hashed (``ApiKeyRepository``); a missing, malformed, unknown or revoked key is a
401 whose message says which of "missing" or "not valid" it was, never more (no hint whether a
key exists but was revoked).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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
        key = ApiKeyRepository(session).find_by_secret(credentials.credentials)
        caller = Caller(tenant_id=key.tenant_id, key_id=key.id) if key is not None else None
    if caller is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API key is not valid (unknown or revoked); check it, or create a new one with "
            "`hera-router keys create`",
            headers=CHALLENGE,
        )
    return caller


CurrentCaller = Annotated[Caller, Depends(authenticate)]
