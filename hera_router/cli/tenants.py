"""``hera-router tenants`` and ``hera-router keys``: the producer API's tenants and keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from hera_router.cli.base import app, checked_runtime, settings_or_exit

if TYPE_CHECKING:
    pass

tenants_app = typer.Typer(help="Tenants of the producer API; run `hera-router db upgrade` first.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
keys_app = typer.Typer(help="API keys of the producer API's tenants.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@tenants_app.command("create")
def tenants_create(name: str = typer.Argument(..., help="A unique name for the tenant.")) -> None:
    """Create a tenant; then give it a key with `hera-router keys create NAME`."""
    from hera_router.api.tenants import TenantError, create_tenant

    runtime = checked_runtime(settings_or_exit())
    try:
        tenant = create_tenant(runtime.sessions, name)
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()
    typer.echo(f"created tenant {tenant.name!r} ({tenant.id}); give it a key: `hera-router keys create {tenant.name}`")


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Argument(..., help="Name of the tenant the key belongs to."),
    name: str = typer.Option("default", "--name", help="A label for the key, e.g. where it is used."),
) -> None:
    """Create an API key and print its secret, once: only a hash is stored.

    The secret is the only thing on stdout (`KEY=$(hera-router keys create acme)` works); the
    notes go to stderr.
    """
    from hera_router.api.tenants import TenantError, create_api_key

    runtime = checked_runtime(settings_or_exit())
    try:
        key, secret = create_api_key(runtime.sessions, tenant, name)
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()
    typer.echo(secret)
    typer.secho(
        f"API key {key.name!r} ({key.id}) for tenant {tenant!r}: store the secret above now, it cannot be shown "
        "again. Send it as 'Authorization: Bearer <key>'.",
        err=True,
        fg=typer.colors.YELLOW,
    )


@tenants_app.command("budget")
def tenants_budget(
    tenant: str = typer.Argument(..., help="Name of the tenant."),
    daily: float | None = typer.Option(None, "--daily", help="Budget per UTC day in USD; -1 removes it."),
    monthly: float | None = typer.Option(None, "--monthly", help="Budget per UTC month in USD; -1 removes it."),
    action: str | None = typer.Option(
        None,
        "--action",
        help="When a running request crosses a budget: `stop` it, or finish it on the `cheapest` rung.",
    ),
) -> None:
    """Show or set a tenant's daily and monthly budgets; submissions over budget get 402."""
    from hera_router.api.costs import read_budget, set_budget
    from hera_router.api.tenants import TenantError

    if action is not None and action not in ("stop", "cheapest"):
        raise typer.BadParameter(f"{action!r} is not an action; use `stop` or `cheapest`", param_hint="--action")
    settings = settings_or_exit()
    runtime = checked_runtime(settings)
    try:
        if daily is None and monthly is None and action is None:
            status = read_budget(runtime.sessions, settings, tenant)
        else:
            status = set_budget(
                runtime.sessions, settings, tenant, daily_usd=daily, monthly_usd=monthly,
                action="stop" if action == "stop" else "cheapest" if action == "cheapest" else None,
            )  # fmt: skip
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()

    def shown(value: float | None) -> str:
        return "none" if value is None else f"${value:.6f}"

    typer.echo(
        f"tenant {status.tenant!r}: daily budget {shown(status.daily_budget_usd)} "
        f"(spent today ${status.spent_today_usd:.6f}), monthly budget {shown(status.monthly_budget_usd)} "
        f"(spent this month ${status.spent_this_month_usd:.6f}); over budget: {status.action}"
    )


@app.command("costs")
def costs(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Name of the tenant."),
    since: str | None = typer.Option(None, "--since", help="From this UTC date or time (ISO 8601, e.g. 2026-12-01)."),
    until: str | None = typer.Option(None, "--until", help="Up to (not including) this UTC date or time."),
    as_csv: bool = typer.Option(False, "--csv", help="Write CSV to stdout instead of a table."),
) -> None:
    """A tenant's spend per UTC day, role and model, by cost component (tokens, GPU, energy, transfer)."""
    from rich.console import Console
    from rich.table import Table

    from hera_router.api.costs import cost_report, rows_csv
    from hera_router.api.tenants import TenantError

    window = [_utc_time(value, name) for value, name in ((since, "--since"), (until, "--until"))]
    runtime = checked_runtime(settings_or_exit())
    try:
        report = cost_report(runtime.sessions, tenant, window[0], window[1])
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()
    if as_csv:
        typer.echo(rows_csv(report.rows), nl=False)
        return
    table = Table(title=f"costs of tenant {report.tenant!r} (USD)")
    for column in ("day", "role", "model", "calls", "tokens", "GPU", "energy", "transfer", "total", "paper (cloud)"):
        table.add_column(column, justify="left" if column in ("day", "role", "model") else "right")
    for row in report.rows:
        table.add_row(
            row.day, row.role, row.model, str(row.calls), f"{row.tokens_usd:.6f}", f"{row.gpu_usd:.6f}",
            f"{row.energy_usd:.6f}", f"{row.transfer_usd:.6f}", f"{row.total_usd:.6f}", f"{row.cloud_tokens_usd:.6f}",
        )  # fmt: skip
    table.add_section()
    table.add_row("all", "", "", "", "", "", "", "", f"{report.total_usd:.6f}", f"{report.cloud_tokens_usd:.6f}")
    Console().print(table)


def _utc_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date or time (e.g. 2026-12-01)", param_hint=name
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
