"""``hera-router tenants`` and ``hera-router keys``: the producer API's tenants and keys."""

from __future__ import annotations

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
