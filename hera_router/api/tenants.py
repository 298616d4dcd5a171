"""Tenants and API keys, as the operator manages them (``hera-router tenants/keys``, ``/v1/admin``).

A key is shown by its id, label, lookup prefix (``hk_`` and 9 characters) and times, never by its
secret, which is not stored.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.models import ApiKey, Tenant
from hera_router.db.repositories import ApiKeyRepository, TenantRepository
from hera_router.db.session import session_scope

TENANT_NAME_MAX_CHARS = 128


class TenantError(ValueError):
    """A tenant or key cannot be created or changed; the message says why and what to do."""


class NoSuchTenantOrKeyError(TenantError):
    """The tenant or key named does not exist."""


class KeyRevokedError(TenantError):
    """The key was already revoked."""


class TenantSummary(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    live_keys: int
    keys: int
    daily_budget_usd: float | None
    monthly_budget_usd: float | None


class KeySummary(BaseModel):
    id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    requests_per_minute: int | None
    """The key's own limit; None: the deployment's (HERA_API__REQUESTS_PER_MINUTE), 0: unlimited."""
    tokens_per_minute: int | None
    """The key's own limit; None: the deployment's (HERA_API__TOKENS_PER_MINUTE), 0: unlimited."""


def _summary(key: ApiKey, tenant_name: str) -> KeySummary:
    return KeySummary(
        id=key.id,
        tenant=tenant_name,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        requests_per_minute=key.requests_per_minute,
        tokens_per_minute=key.tokens_per_minute,
    )


def list_tenants(sessions: sessionmaker[Session]) -> list[TenantSummary]:
    with session_scope(sessions) as session:
        return [
            TenantSummary(
                id=tenant.id,
                name=tenant.name,
                created_at=tenant.created_at,
                live_keys=live,
                keys=total,
                daily_budget_usd=tenant.daily_budget_usd,
                monthly_budget_usd=tenant.monthly_budget_usd,
            )
            for tenant, live, total in TenantRepository(session).all_with_key_counts()
        ]


def list_api_keys(sessions: sessionmaker[Session], tenant_name: str) -> list[KeySummary]:
    """The tenant's keys, oldest first, revoked ones included (with ``revoked_at``)."""
    with session_scope(sessions) as session:
        tenant = TenantRepository(session).by_name(tenant_name)
        if tenant is None:
            raise NoSuchTenantOrKeyError(f"no tenant named {tenant_name!r}; `hera-router tenants list` shows them")
        return [_summary(key, tenant.name) for key in ApiKeyRepository(session).list_for_tenant(tenant.id)]


def _key(session: Session, key_id: uuid.UUID) -> tuple[ApiKey, str]:
    key = ApiKeyRepository(session).get(key_id)
    if key is None:
        raise NoSuchTenantOrKeyError(f"no API key {key_id}; `hera-router keys list TENANT` shows a tenant's keys")
    return key, key.tenant.name


def revoke_api_key(sessions: sessionmaker[Session], key_id: uuid.UUID) -> KeySummary:
    """Revoke the key: from now on it authenticates nothing (401)."""
    with session_scope(sessions) as session:
        key, tenant_name = _key(session, key_id)
        if not ApiKeyRepository(session).revoke(key_id):
            raise KeyRevokedError(f"API key {key_id} ({key.prefix}…) was already revoked at {key.revoked_at}")
        session.refresh(key)
        return _summary(key, tenant_name)


def set_key_limits(
    sessions: sessionmaker[Session],
    key_id: uuid.UUID,
    *,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
) -> KeySummary:
    """Replace the key's own rate limits (None: the deployment's default, 0: unlimited)."""
    for value, name in ((requests_per_minute, "requests"), (tokens_per_minute, "tokens")):
        if value is not None and value < 0:
            raise TenantError(f"a limit of {name} per minute must be 0 (unlimited) or more, not {value}")
    with session_scope(sessions) as session:
        key, tenant_name = _key(session, key_id)
        ApiKeyRepository(session).set_limits(
            key_id, requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )
        session.refresh(key)
        return _summary(key, tenant_name)


def create_tenant(sessions: sessionmaker[Session], name: str) -> Tenant:
    name = name.strip()
    if not name or len(name) > TENANT_NAME_MAX_CHARS:
        raise TenantError(f"a tenant name must have 1 to {TENANT_NAME_MAX_CHARS} characters")
    with session_scope(sessions) as session:
        tenants = TenantRepository(session)
        if tenants.by_name(name) is not None:
            raise TenantError(f"a tenant named {name!r} already exists")
        return tenants.create(name)


def create_api_key(sessions: sessionmaker[Session], tenant_name: str, key_name: str = "default") -> tuple[ApiKey, str]:
    """Issue a key for the tenant named ``tenant_name``; returns the row and the secret, which is
    stored only as a hash and so can never be shown again."""
    with session_scope(sessions) as session:
        tenant = TenantRepository(session).by_name(tenant_name)
        if tenant is None:
            raise TenantError(
                f"no tenant named {tenant_name!r}; create it with `hera-router tenants create {tenant_name}`"
            )
        return ApiKeyRepository(session).create_key(tenant, name=key_name)
