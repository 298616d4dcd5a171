"""Estimator versions: register trained artefacts, find the active one, promote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import EstimatorStatus
from hera_router.db.models import EstimatorVersion


class EstimatorVersionRepository:
    """Versions per estimator name (``dp``, ``sd`` ...); at most one ``active`` per name."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_candidate(
        self,
        name: str,
        path: str,
        *,
        metrics: Mapping[str, Any] | None = None,
        backbone: str | None = None,
        data_window_start: datetime | None = None,
        data_window_end: datetime | None = None,
    ) -> EstimatorVersion:
        """Register a new candidate with the next version number for ``name``.

        Two trainers registering at once may pick the same number; the (name, version) unique key
        makes the second flush fail rather than overwrite (training runs one at a time anyway).
        """
        latest = self.session.scalar(select(func.max(EstimatorVersion.version)).where(EstimatorVersion.name == name))
        version = EstimatorVersion(
            name=name,
            version=(latest or 0) + 1,
            path=path,
            backbone=backbone,
            metrics=dict(metrics or {}),
            data_window_start=data_window_start,
            data_window_end=data_window_end,
        )
        self.session.add(version)
        self.session.flush()
        return version

    def get(self, name: str, version: int) -> EstimatorVersion | None:
        return self.session.scalars(
            select(EstimatorVersion).where(EstimatorVersion.name == name, EstimatorVersion.version == version)
        ).one_or_none()

    def active(self, name: str) -> EstimatorVersion | None:
        """The version serving ``name``, or None before the first promotion."""
        return self.session.scalars(
            select(EstimatorVersion).where(
                EstimatorVersion.name == name, EstimatorVersion.status == EstimatorStatus.ACTIVE
            )
        ).one_or_none()

    def all_active(self) -> Sequence[EstimatorVersion]:
        """Every active version (one per name): what a router process serves, in one query."""
        return self.session.scalars(
            select(EstimatorVersion)
            .where(EstimatorVersion.status == EstimatorStatus.ACTIVE)
            .order_by(EstimatorVersion.name)
        ).all()

    def list_all(self) -> Sequence[EstimatorVersion]:
        """Every version of every estimator, by name then version."""
        return self.session.scalars(
            select(EstimatorVersion).order_by(EstimatorVersion.name, EstimatorVersion.version)
        ).all()

    def list_versions(self, name: str) -> Sequence[EstimatorVersion]:
        return self.session.scalars(
            select(EstimatorVersion).where(EstimatorVersion.name == name).order_by(EstimatorVersion.version)
        ).all()

    def promote(self, name: str, version: int) -> EstimatorVersion:
        """Make ``version`` the active one and retire the previous active, in the caller's transaction.

        Promoting a retired version is how an operator rolls back. The rows of ``name`` are locked
        first (Postgres), so concurrent promotions queue instead of tripping the one-active index;
        the retire runs before the activate for the same reason. Raises LookupError if the version
        does not exist.
        """
        rows = self.session.scalars(
            select(EstimatorVersion).where(EstimatorVersion.name == name).with_for_update()
        ).all()
        target = next((row for row in rows if row.version == version), None)
        if target is None:
            raise LookupError(f"estimator {name!r} has no version {version}; register it before promoting")
        if target.status is EstimatorStatus.ACTIVE:
            return target
        self.session.execute(
            update(EstimatorVersion)
            .where(EstimatorVersion.name == name, EstimatorVersion.status == EstimatorStatus.ACTIVE)
            .values(status=EstimatorStatus.RETIRED)
        )
        target.status = EstimatorStatus.ACTIVE
        target.promoted_at = utcnow()
        self.session.flush()
        return target
