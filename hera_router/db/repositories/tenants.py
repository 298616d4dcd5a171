"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.models import ApiKey, Tenant
from hera_router.db.repositories._dml import rows_changed

KEY_PREFIX = "hk_"
"""Marks a string as a hera-router key (secret scanners and humans recognise it)."""
LOOKUP_PREFIX_LENGTH = 12
"""Characters of the secret stored in clear for lookup: ``hk_`` plus 9 random ones (54 bits)."""
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``api_keys.last_used_at`` is refreshed at most this often: one write per key and minute, not per call."""


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a key secret. Keys are 256-bit random, so a plain hash (no salt, no KDF) is
    enough: there is no dictionary to attack, and the lookup must stay one indexed query."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TenantRepository:
    """Tenants by id and by name."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, name: str) -> Tenant:
        tenant = Tenant(name=name)
        self.session.add(tenant)
        self.session.flush()
        return tenant

    def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        return self.session.get(Tenant, tenant_id)

    def by_name(self, name: str) -> Tenant | None:
        return self.session.scalars(select(Tenant).where(Tenant.name == name)).one_or_none()

    def all_with_key_counts(self) -> list[tuple[Tenant, int, int]]:
        """Every tenant by name, with its number of live keys and of all keys."""
        live = func.count(ApiKey.id).filter(ApiKey.revoked_at.is_(None))
        rows = self.session.execute(
            select(Tenant, live, func.count(ApiKey.id))
            .outerjoin(ApiKey, ApiKey.tenant_id == Tenant.id)
            .group_by(Tenant.id)
            .order_by(Tenant.name)
        ).all()
        return [(tenant, int(live_keys), int(all_keys)) for tenant, live_keys, all_keys in rows]

    def set_budget(
        self, tenant_id: uuid.UUID, *, daily_usd: float | None, monthly_usd: float | None, action: str | None
    ) -> None:
        """Replace the tenant's budgets (None: no cap) and its over-budget action (None: the default)."""
        self.session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(daily_budget_usd=daily_usd, monthly_budget_usd=monthly_usd, budget_action=action)
        )


class ApiKeyRepository:
    """Issue, find and revoke API keys; the plaintext secret exists only in ``create_key``'s result."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create_key(self, tenant: Tenant, name: str = "default") -> tuple[ApiKey, str]:
        """Issue a key for ``tenant``; returns the row and the secret to show the user once."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            tenant_id=tenant.id,
            name=name,
            prefix=secret[:LOOKUP_PREFIX_LENGTH],
            key_hash=hash_secret(secret),
        )
        self.session.add(key)
        self.session.flush()
        return key, secret

    def find_by_secret(self, secret: str) -> ApiKey | None:
        """The live (not revoked) key whose secret is ``secret``, or None.

        The prefix narrows the search by index; the hash comparison is constant-time so response
        timing says nothing about how much of a guessed key matched.
        """
        if not secret.startswith(KEY_PREFIX) or len(secret) <= LOOKUP_PREFIX_LENGTH:
            return None
        presented = hash_secret(secret)
        candidates = self.session.scalars(
            select(ApiKey).where(ApiKey.prefix == secret[:LOOKUP_PREFIX_LENGTH], ApiKey.revoked_at.is_(None))
        )
        for key in candidates:
            if hmac.compare_digest(key.key_hash, presented):
                return key
        return None

    def list_for_tenant(self, tenant_id: uuid.UUID) -> Sequence[ApiKey]:
        return self.session.scalars(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
        ).all()

    def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    def mark_used(self, key: ApiKey) -> None:
        """Record that ``key`` authenticated a call now, unless that was recorded under a minute ago."""
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            self.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))

    def set_limits(self, key_id: uuid.UUID, *, requests_per_minute: int | None, tokens_per_minute: int | None) -> bool:
        """Replace the key's own rate limits (None: the deployment's default, 0: unlimited);
        False if there is no such key."""
        result = self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute)
        )
        return rows_changed(result) == 1

    def revoke(self, key_id: uuid.UUID) -> bool:
        """Revoke a key; False if it does not exist or was already revoked."""
        result = self.session.execute(
            update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
        return rows_changed(result) == 1
