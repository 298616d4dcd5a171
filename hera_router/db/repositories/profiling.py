"""Profiling runs and their trees of SLM/LLM steps (the estimators' training data)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hera_router.db.enums import Executor, RunStatus
from hera_router.db.models import ProfileNode, ProfileRun
from hera_router.db.repositories._dml import rows_changed


class ProfilingRepository:
    """Profile runs and nodes. Nodes are append-only; a run is finished once."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create_run(self, name: str, source: str, config: Mapping[str, Any] | None = None) -> ProfileRun:
        """A new run in ``running``; ``source`` is ``sim`` or ``real``."""
        run = ProfileRun(name=name, source=source, config=dict(config or {}), status=RunStatus.RUNNING)
        self.session.add(run)
        self.session.flush()
        return run

    def get_run(self, run_id: uuid.UUID) -> ProfileRun | None:
        return self.session.get(ProfileRun, run_id)

    def finish_run(self, run_id: uuid.UUID, status: RunStatus, n_requests: int) -> bool:
        """Close a running run with its final request count; False if it was not running."""
        result = self.session.execute(
            update(ProfileRun)
            .where(ProfileRun.id == run_id, ProfileRun.status == RunStatus.RUNNING)
            .values(status=status, n_requests=n_requests)
        )
        return rows_changed(result) == 1

    def add_node(
        self,
        *,
        run_id: uuid.UUID,
        request_key: str,
        depth: int,
        producing_model: Executor | None,
        text: str,
        kind: str = "step",
        parent_id: uuid.UUID | None = None,
        output: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        is_final: bool = False,
        correct: bool | None = None,
        confidence: float | None = None,
        step_correct: bool | None = None,
    ) -> ProfileNode:
        """Append one node; pass the parent's id to hang it in the tree."""
        node = ProfileNode(
            run_id=run_id,
            request_key=request_key,
            parent_id=parent_id,
            depth=depth,
            kind=kind,
            producing_model=producing_model,
            text=text,
            output=output,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost_usd,
            is_final=is_final,
            correct=correct,
            confidence=confidence,
            step_correct=step_correct,
        )
        self.session.add(node)
        self.session.flush()
        return node

    def add_nodes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append many nodes in one flush; each row holds ``add_node``'s fields and its own ``id``
        (client-side UUIDs, so children can name parents that are not flushed yet)."""
        self.session.add_all([ProfileNode(**row) for row in rows])
        self.session.flush()

    def request_keys(self, run_id: uuid.UUID) -> set[str]:
        """The requests of a run that already have nodes (a resumed run skips them)."""
        return set(
            self.session.scalars(select(ProfileNode.request_key).where(ProfileNode.run_id == run_id).distinct()).all()
        )

    def latest_run(self, status: RunStatus | None = RunStatus.SUCCEEDED) -> ProfileRun | None:
        """The most recently created profiling run (in ``status``, when given); the one-request
        trees of shadow execution (source ``shadow``) are not profiling runs in this sense."""
        statement = (
            select(ProfileRun).where(ProfileRun.source != "shadow").order_by(ProfileRun.created_at.desc()).limit(1)
        )
        if status is not None:
            statement = statement.where(ProfileRun.status == status)
        return self.session.scalars(statement).one_or_none()

    def nodes(self, run_id: uuid.UUID, request_key: str | None = None) -> Sequence[ProfileNode]:
        """A run's nodes (optionally one request's tree), parents before children."""
        statement = select(ProfileNode).where(ProfileNode.run_id == run_id)
        if request_key is not None:
            statement = statement.where(ProfileNode.request_key == request_key)
        return self.session.scalars(
            statement.order_by(ProfileNode.request_key, ProfileNode.depth, ProfileNode.created_at, ProfileNode.id)
        ).all()
