"""``hera-router request show|cancel`` and ``hera-router batch cancel``: any tenant's requests and
batches, straight from the database (no API, no broker: a cancel is a state change the workers
read at their next step)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import typer

from hera_router.cli.base import app, checked_runtime, settings_or_exit

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from hera_router.api.service import SubmissionService
    from hera_router.db.runtime import Runtime

request_app = typer.Typer(help="Any tenant's agent requests: show one, cancel one.", no_args_is_help=True)
app.add_typer(request_app, name="request")
batch_app = typer.Typer(help="Any tenant's agent batches: cancel one.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")


def _uuid(value: str, what: str, hint: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not {what} (a UUID)", param_hint=hint) from None


def _service(runtime: Runtime) -> SubmissionService:
    from hera_router.api.service import SubmissionService
    from hera_router.pipeline.outbox import Dispatcher

    def refuse(name: str, message: Mapping[str, Any], task_id: str) -> None:  # pragma: no cover
        raise RuntimeError("cancelling publishes nothing")

    return SubmissionService(runtime.settings, runtime.sessions, Dispatcher(lambda: runtime.sessions, refuse))


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(str(exc), err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@request_app.command("show")
def request_show(
    request_id: str = typer.Argument(..., help="The agent request's id."),
    as_json: bool = typer.Option(False, "--json", help="The full view (steps, decisions, calls) as JSON."),
) -> None:
    """A request's status, answer, cost and steps (the API's request view, for any tenant)."""
    from hera_router.api.errors import SubmissionError
    from hera_router.api.operate import show_request
    from hera_router.api.views import RequestViews

    parsed = _uuid(request_id, "a request id", "REQUEST_ID")
    runtime = checked_runtime(settings_or_exit())
    try:
        detail = show_request(RequestViews(runtime.sessions), runtime.sessions, parsed)
    except SubmissionError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    if as_json:
        typer.echo(detail.model_dump_json(indent=2))
        return
    typer.echo(
        f"request {detail.id}: {detail.status.value}, policy {detail.policy}, {detail.slm_steps} SLM and "
        f"{detail.llm_steps} LLM steps, cost ${detail.cost_usd:.6f}"
        + (f", batch {detail.batch_id}" if detail.batch_id else "")
        + (f", custom_id {detail.custom_id!r}" if detail.custom_id else "")
    )
    typer.echo(f"input: {detail.input}")
    if detail.final_answer is not None:
        typer.echo(f"answer: {detail.final_answer}")
    if detail.error is not None:
        typer.echo(f"error: {detail.error}")
    for decision in detail.decisions:
        typer.echo(f"  step {decision.seq}: {decision.branch} -> {decision.executor.value}")


@request_app.command("cancel")
def request_cancel(request_id: str = typer.Argument(..., help="The agent request's id.")) -> None:
    """Cancel a queued or running request of any tenant (a finished one cannot be)."""
    from hera_router.api.errors import SubmissionError
    from hera_router.api.operate import cancel_request

    parsed = _uuid(request_id, "a request id", "REQUEST_ID")
    runtime = checked_runtime(settings_or_exit())
    try:
        request = cancel_request(_service(runtime), parsed)
    except SubmissionError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    typer.echo(f"request {request.id}: {request.status.value}")


@batch_app.command("cancel")
def batch_cancel(batch_id: str = typer.Argument(..., help="The agent batch's id.")) -> None:
    """Cancel an agent batch's queued and running requests; finished ones keep their results."""
    from hera_router.api.errors import SubmissionError
    from hera_router.api.operate import cancel_batch

    if batch_id.startswith("batch_"):
        typer.secho(
            f"{batch_id!r} is an OpenAI batch; cancel it with POST /v1/admin/batches/{batch_id}/cancel "
            "(or the tenant's POST /v1/batches/{id}/cancel), which also writes its output files",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=1)
    parsed = _uuid(batch_id, "an agent batch id", "BATCH_ID")
    runtime = checked_runtime(settings_or_exit())
    try:
        batch, cancelled = cancel_batch(_service(runtime), parsed)
    except SubmissionError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    typer.echo(f"batch {batch.id}: cancelled {cancelled} unfinished request{'s' if cancelled != 1 else ''}")
