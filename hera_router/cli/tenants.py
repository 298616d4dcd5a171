"""``hera-router tenants`` and ``hera-router keys``: the producer API's tenants and keys."""

from __future__ import annotations

import uuid
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


@tenants_app.command("list")
def tenants_list() -> None:
    """Every tenant, with its live and total keys and its budgets."""
    from rich.console import Console
    from rich.table import Table

    from hera_router.api.tenants import list_tenants

    runtime = checked_runtime(settings_or_exit())
    try:
        tenants = list_tenants(runtime.sessions)
    finally:
        runtime.close()
    if not tenants:
        typer.echo("no tenants yet; create one with `hera-router tenants create NAME`")
        return
    table = Table(title="tenants")
    for column in ("name", "id", "created", "live keys", "keys", "daily USD", "monthly USD"):
        table.add_column(column)
    for tenant in tenants:
        table.add_row(
            tenant.name,
            str(tenant.id),
            _when(tenant.created_at),
            str(tenant.live_keys),
            str(tenant.keys),
            _usd(tenant.daily_budget_usd),
            _usd(tenant.monthly_budget_usd),
        )
    Console(width=160).print(table)


def _when(value: datetime | None) -> str:
    return "never" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _usd(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f}"


def _limit(value: int | None) -> str:
    return "default" if value is None else "unlimited" if value == 0 else f"{value:,}"


def _key_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a key id (a UUID; `hera-router keys list TENANT` shows them)", param_hint="KEY_ID"
        ) from None


@keys_app.command("list")
def keys_list(tenant: str = typer.Argument(..., help="Name of the tenant.")) -> None:
    """The tenant's keys: id, label, prefix, created and last used, revoked, own rate limits (never the secret)."""
    from rich.console import Console
    from rich.table import Table

    from hera_router.api.tenants import TenantError, list_api_keys

    runtime = checked_runtime(settings_or_exit())
    try:
        keys = list_api_keys(runtime.sessions, tenant)
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()
    if not keys:
        typer.echo(f"tenant {tenant!r} has no keys; create one with `hera-router keys create {tenant}`")
        return
    table = Table(title=f"API keys of tenant {tenant!r}")
    for column in ("id", "name", "prefix", "created", "last used", "revoked", "req/min", "tokens/min"):
        table.add_column(column, no_wrap=column in ("id", "prefix"))
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            f"{key.prefix}…",
            _when(key.created_at),
            _when(key.last_used_at),
            "no" if key.revoked_at is None else _when(key.revoked_at),
            _limit(key.requests_per_minute),
            _limit(key.tokens_per_minute),
        )
    Console(width=200).print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (`hera-router keys list TENANT`).")) -> None:
    """Revoke an API key: from now on it authenticates nothing (401)."""
    from hera_router.api.tenants import TenantError, revoke_api_key

    parsed = _key_id(key_id)
    runtime = checked_runtime(settings_or_exit())
    try:
        key = revoke_api_key(runtime.sessions, parsed)
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()
    typer.echo(f"revoked API key {key.name!r} ({key.prefix}…, {key.id}) of tenant {key.tenant!r}")


@keys_app.command("limit")
def keys_limit(
    key_id: str = typer.Argument(..., help="The key's id (`hera-router keys list TENANT`)."),
    requests: int | None = typer.Option(
        None, "--requests-per-minute", "--rpm", help="Calls per minute; 0: unlimited, -1: the deployment's default."
    ),
    tokens: int | None = typer.Option(
        None, "--tokens-per-minute", "--tpm", help="Tokens sent per minute; 0: unlimited, -1: the default."
    ),
) -> None:
    """Show or set an API key's own rate limits (HERA_API__REQUESTS_PER_MINUTE / __TOKENS_PER_MINUTE otherwise)."""
    from hera_router.api.tenants import TenantError, set_key_limits
    from hera_router.db.repositories import ApiKeyRepository
    from hera_router.db.session import session_scope

    parsed = _key_id(key_id)
    settings = settings_or_exit()
    runtime = checked_runtime(settings)
    try:
        with session_scope(runtime.sessions) as session:
            row = ApiKeyRepository(session).get(parsed)
            current = None if row is None else (row.requests_per_minute, row.tokens_per_minute)

        def wanted(value: int | None, now: int | None) -> int | None:
            return now if value is None else None if value == -1 else value

        rpm, tpm = current if current is not None else (None, None)
        key = set_key_limits(
            runtime.sessions, parsed, requests_per_minute=wanted(requests, rpm), tokens_per_minute=wanted(tokens, tpm)
        )
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()

    def effective(own: int | None, default: int) -> str:
        value = default if own is None else own
        shown = "unlimited" if value == 0 else f"{value:,} per minute"
        return f"{shown} ({'default' if own is None else 'own'})"

    requests_shown = effective(key.requests_per_minute, settings.api.requests_per_minute)
    tokens_shown = effective(key.tokens_per_minute, settings.api.tokens_per_minute)
    typer.echo(f"API key {key.prefix}… ({key.id}): requests {requests_shown}, tokens {tokens_shown}")


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
                runtime.sessions,
                settings,
                tenant,
                daily_usd=daily,
                monthly_usd=monthly,
                action="stop" if action == "stop" else "cheapest" if action == "cheapest" else None,
            )
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
            row.day,
            row.role,
            row.model,
            str(row.calls),
            f"{row.tokens_usd:.6f}",
            f"{row.gpu_usd:.6f}",
            f"{row.energy_usd:.6f}",
            f"{row.transfer_usd:.6f}",
            f"{row.total_usd:.6f}",
            f"{row.cloud_tokens_usd:.6f}",
        )
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
