"""`billing api` (serve the HTTP API) and `billing apikey create | list | revoke`."""

from __future__ import annotations

import os
import shutil

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.settings import get_settings


@app.command()
def api(
    host: str | None = typer.Option(None, help="Address to listen on (default: BILLING_API_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: BILLING_API_PORT)."),
    workers: int | None = typer.Option(None, min=1, help="Worker processes (default: BILLING_API_WORKERS)."),
    log_level: str = typer.Option("warning", help="Uvicorn log level."),
) -> None:
    """Serve the HTTP API (usage ingest, billing queries, docs at /docs) with uvicorn."""
    import uvicorn

    settings = get_settings()
    workers = workers or settings.api_workers
    os.environ["BILLING_API_WORKERS"] = str(workers)  # what the workers' settings see
    if workers > 1:
        metrics_dir = settings.state_dir / "api" / f"metrics-{port or settings.api_port}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run("api.app:serve_app", factory=True, host=host or settings.api_host, port=port or settings.api_port,
                workers=workers, log_level=log_level, access_log=False)


apikey_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _store():
    from api.keys import KeyStore, store_path

    return KeyStore(store_path(get_settings()))


@apikey_app.command("create")
def apikey_create(
    tenant: list[str] = typer.Option([], "--tenant", help="Customer id the key may write and read (repeatable)."),
    admin: bool = typer.Option(False, "--admin", help="Admin key: every customer plus the management endpoints."),
    rate: float | None = typer.Option(None, help="Requests/s for this key (default: BILLING_API_RATE_PER_S)."),
    label: str = typer.Option("", help="Free text shown by `billing apikey list`."),
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    key, token = _store().create(tenant, admin=admin, rate_per_s=rate, label=label)
    scope = "admin" if key.admin else ", ".join(sorted(key.tenants))
    console.print(f"created key [bold]{key.key_id}[/] ({scope}); store it now, it is not shown again:", highlight=False)
    print(token)


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (ids, tenants, state; never the tokens)."""
    table = Table(title="API keys")
    for column in ("id", "tenants", "admin", "rate/s", "label", "created", "state"):
        table.add_column(column, no_wrap=column in ("id", "created"))
    for key in _store().list():
        state = f"[red]revoked {key.revoked_at}" if key.revoked_at else "[green]active"
        table.add_row(key.key_id, ", ".join(sorted(key.tenants)) or "-", "yes" if key.admin else "",
                      f"{key.rate_per_s:g}" if key.rate_per_s else "default", key.label, key.created_at, state)
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(key_id: str = typer.Argument(..., help="Key id (from `billing apikey list`).")) -> None:
    """Revoke an API key (effective within seconds on running API workers)."""
    from billing.core.errors import ConfigError

    if not _store().revoke(key_id):
        raise ConfigError(f"no active API key with id {key_id!r}; see `billing apikey list`")
    console.print(f"revoked key {key_id}")
