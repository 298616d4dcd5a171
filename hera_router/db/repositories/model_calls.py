"""Model calls: what each backend call cost, recorded exactly once per idempotency key."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hera_router.db.enums import CallStatus, ModelRole
from hera_router.db.models import ModelCall
from hera_router.db.repositories._dml import (
    guarded_update,
    insert_if_absent,
    insert_if_absent_deferred,
    run_update,
    table_of,
)

_CALLS = table_of(ModelCall)


class ModelCallRepository:
    """Model calls keyed by their idempotency key."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def start(
        self,
        *,
        idempotency_key: str,
        request_id: uuid.UUID,
        subtask_id: uuid.UUID,
        backend: str,
        model: str,
        role: ModelRole,
        estimated_cost_usd: float,
        tier: str | None = None,
        defer: bool = False,
    ) -> bool | None:
        """Put a call on record before it is made (status ``started``); False if it already was.

        ``defer``: the caller does not need to know (returns None): on Postgres the INSERT then
        goes out with the transaction's ``COMMIT`` (``_dml.insert_if_absent_deferred``)."""
        values = {
            "idempotency_key": idempotency_key,
            "request_id": request_id,
            "subtask_id": subtask_id,
            "backend": backend,
            "model": model,
            "role": role,
            "latency_ms": 0.0,
            "status": CallStatus.STARTED,
            "estimated_cost_usd": estimated_cost_usd,
            "tier": tier,
        }
        if defer:
            insert_if_absent_deferred(self.session, ModelCall, values, ("idempotency_key",))
            return None
        return insert_if_absent(self.session, ModelCall, values, ("idempotency_key",))

    def finish(
        self,
        idempotency_key: str,
        *,
        status: CallStatus,
        latency_ms: float,
        backend: str | None = None,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        error: str | None = None,
        attempts: int = 1,
        components: Mapping[str, float] | None = None,
    ) -> bool:
        """Record the outcome of a ``started`` call; False if it already has one (a duplicate
        delivery: its cost was counted by the first). ``components`` are the cost columns
        (``tokens_cost_usd`` ... ``bytes_sent``) whose sum is ``cost_usd``."""
        values: dict[str, Any] = {
            "status": status,
            "latency_ms": latency_ms,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost_usd": cost_usd,
            "error": error,
            "attempts": attempts,
        }
        values.update(components or {})
        if backend is not None:
            values["backend"] = backend
        if model is not None:
            values["model"] = model
        columns = tuple(sorted(values))
        statement = guarded_update(_CALLS, ("idempotency_key", "status"), columns)
        parameters = {f"v_{key}": value for key, value in values.items()}
        parameters.update({"w_idempotency_key": idempotency_key, "w_status": CallStatus.STARTED})
        return run_update(self.session, statement, parameters) == 1

    def by_key(self, idempotency_key: str) -> ModelCall | None:
        return self.session.scalars(select(ModelCall).where(ModelCall.idempotency_key == idempotency_key)).one_or_none()

    def list_for_request(self, request_id: uuid.UUID) -> Sequence[ModelCall]:
        return self.session.scalars(
            select(ModelCall).where(ModelCall.request_id == request_id).order_by(ModelCall.created_at, ModelCall.id)
        ).all()

    def list_for_requests(self, request_ids: Collection[uuid.UUID]) -> Sequence[ModelCall]:
        """The model calls of several requests, oldest first."""
        if not request_ids:
            return []
        return self.session.scalars(
            select(ModelCall)
            .where(ModelCall.request_id.in_(list(request_ids)))
            .order_by(ModelCall.created_at, ModelCall.id)
        ).all()

    def token_totals(self, request_ids: Collection[uuid.UUID]) -> dict[ModelRole, tuple[int, int]]:
        """(input, output) tokens of the successful calls of ``request_ids``, per role."""
        if not request_ids:
            return {}
        rows = self.session.execute(
            select(ModelCall.role, func.sum(ModelCall.tokens_in), func.sum(ModelCall.tokens_out))
            .where(ModelCall.request_id.in_(list(request_ids)), ModelCall.status == CallStatus.OK)
            .group_by(ModelCall.role)
        ).all()
        return {role: (int(tokens_in or 0), int(tokens_out or 0)) for role, tokens_in, tokens_out in rows}

    def total_cost(self, request_id: uuid.UUID) -> float:
        """Sum of the request's call costs, recomputed from the calls (audits the running total)."""
        total = self.session.scalar(
            select(func.coalesce(func.sum(ModelCall.cost_usd), 0.0)).where(ModelCall.request_id == request_id)
        )
        return float(total or 0.0)
