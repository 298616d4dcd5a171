"""Tenants and API keys, as the operator creates them (``hera-router tenants/keys create``)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.models import ApiKey, Tenant
from hera_router.db.repositories import ApiKeyRepository, TenantRepository
from hera_router.db.session import session_scope

TENANT_NAME_MAX_CHARS = 128


class TenantError(ValueError):
    """A tenant or key cannot be created; the message says why and what to do."""


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
