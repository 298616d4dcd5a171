"""Submit a request file as a batch and follow it to the end (``run`` and ``submit``)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from hera_router.agent.inputs import RequestFile
from hera_router.api.service import BatchSubmission, SubmissionService
from hera_router.db.models import Tenant
from hera_router.db.repositories import BatchRepository, RequestRepository, TenantRepository
from hera_router.db.session import session_scope

LOCAL_TENANT = "local"


def ensure_tenant(sessions: sessionmaker[Session], name: str) -> Tenant:
    with session_scope(sessions) as session:
        tenants = TenantRepository(session)
        return tenants.by_name(name) or tenants.create(name)


def submit_file(
    service: SubmissionService,
    tenant: Tenant,
    path: Path,
    request_file: RequestFile,
    *,
    policy: str | None,
    console: Console,
) -> BatchSubmission:
    submission = service.submit_batch(tenant.id, request_file.jsonl, policy=policy, name=path.name)
    for rejection in submission.rejected:
        console.print(f"[yellow]skipped[/] {path.name}: {rejection.message}")
    return submission


def follow_batch(
    sessions: sessionmaker[Session],
    batch_id: uuid.UUID,
    *,
    console: Console,
    label: str,
    poll_s: float = 0.25,
    timeout_s: float | None = None,
) -> list[uuid.UUID]:
    """Show a progress bar until every request of the batch has finished; returns their ids.

    Pass read-only sessions (``Runtime.read_sessions``): polling must not compete with the run for
    the database's write lock.
    """
    started = time.monotonic()
    with session_scope(sessions) as session:
        batch = BatchRepository(session).get(batch_id)
        total = batch.accepted if batch is not None else 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("${task.fields[cost]:.4f}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=total, cost=0.0)
        while True:
            with session_scope(sessions) as session:
                state = BatchRepository(session).progress(batch_id)
            progress.update(task, completed=state.done, cost=state.cost_usd)
            if state.done >= total:
                break
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise TimeoutError(f"batch {batch_id}: {total - state.done} of {total} requests still running")
            time.sleep(poll_s)
    with session_scope(sessions) as session:
        return [request.id for request in RequestRepository(session).list_for_batch(batch_id)]
