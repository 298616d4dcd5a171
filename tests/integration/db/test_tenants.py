"""Tenants and API keys: keys are found by their secret, and the secret is never stored."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hera_router.db.models import ApiKey, Tenant
from hera_router.db.repositories import ApiKeyRepository, TenantRepository
from hera_router.db.repositories.tenants import hash_secret
from tests.integration.db.roundtrip import assert_round_trip


def test_tenant_round_trip(session: Session) -> None:
    tenant = TenantRepository(session).create("globex")
    loaded = assert_round_trip(session, tenant)
    assert TenantRepository(session).by_name("globex") == loaded
    assert TenantRepository(session).by_name("nobody") is None


def test_api_key_is_found_by_its_secret(session: Session, tenant: Tenant) -> None:
    keys = ApiKeyRepository(session)
    key, secret = keys.create_key(tenant, name="ci")
    assert_round_trip(session, key)

    found = keys.find_by_secret(secret)
    assert found is not None
    assert found.id == key.id
    assert found.tenant_id == tenant.id


def test_api_key_table_never_holds_the_secret(session: Session, tenant: Tenant) -> None:
    key, secret = ApiKeyRepository(session).create_key(tenant)
    session.flush()
    stored = session.execute(select(ApiKey.__table__).where(ApiKey.id == key.id)).one()
    assert all(secret != value and secret not in str(value) for value in stored)
    assert stored.key_hash == hash_secret(secret)
    assert secret.startswith(stored.prefix)


def test_wrong_or_revoked_secret_is_not_found(session: Session, tenant: Tenant) -> None:
    keys = ApiKeyRepository(session)
    key, secret = keys.create_key(tenant)
    assert keys.find_by_secret(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert keys.find_by_secret("not-a-key") is None
    assert keys.find_by_secret("") is None

    assert keys.revoke(key.id) is True
    assert keys.revoke(key.id) is False
    assert keys.find_by_secret(secret) is None
    assert [k.id for k in keys.list_for_tenant(tenant.id)] == [key.id]
