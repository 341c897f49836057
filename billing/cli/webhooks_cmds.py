"""`billing webhooks endpoints | deliver | deliveries | replay`: signed webhooks to integrators' endpoints."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.core.errors import ConfigError
from billing.core.webhooks.endpoints import EXAMPLE_ENDPOINTS, EndpointSet, load_endpoints
from billing.settings import Settings, get_settings
from billing.webhooks.log import DeliveryLog, State
from billing.webhooks.replay import replay as replay_delivery
from billing.webhooks.service import DeliveryService

webhooks_app = typer.Typer(help="Webhooks: alerts and billing events POSTed, signed, to integrators' endpoints.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

ENDPOINTS_OPTION = typer.Option(None, "--endpoints", "-e",
                                help="Endpoints file or folder (repeatable); default: BILLING_WEBHOOK_ENDPOINTS_FILE.")


def configured_endpoints(settings: Settings, files: list[Path] | None) -> EndpointSet:
    """The endpoints of ``files``, else of the settings' endpoints file; neither is an error."""
    paths = files or ([settings.webhook_endpoints_file] if settings.webhook_endpoints_file else [])
    if not paths:
        raise ConfigError("no webhook endpoints configured; pass --endpoints FILE or set BILLING_WEBHOOK_ENDPOINTS_FILE "
                          f"(format: {EXAMPLE_ENDPOINTS})")
    return load_endpoints(paths)


@webhooks_app.command()
def endpoints(
    files: list[Path] = typer.Argument(None, help="Endpoints files or folders; default: BILLING_WEBHOOK_ENDPOINTS_FILE, "
                                                 "else the example endpoints."),
) -> None:
    """Validate webhook endpoints files and list the endpoints (secrets are not shown)."""
    settings = get_settings()
    found = load_endpoints(files or [settings.webhook_endpoints_file or EXAMPLE_ENDPOINTS])
    table = Table(title="webhook endpoints")
    table.add_column("id", no_wrap=True)
    for header in ("url", "event types", "customers", "description"):
        table.add_column(header)
    for endpoint in found:
        table.add_row(endpoint.id, endpoint.url, ", ".join(endpoint.types),
                      ", ".join(endpoint.customers) if endpoint.customers else "every customer", endpoint.description or "")
    console.print(table)
    console.print(f"[green]ok[/]: {len(found)} endpoint(s)")


@webhooks_app.command()
def deliver(
    files: list[Path] = ENDPOINTS_OPTION,
    name: str = typer.Option("webhooks", "--name", help="This process's Kafka client id in the delivery group."),
    loglevel: str = typer.Option("info", "--loglevel", help="Log level: debug, info, warning, error."),
) -> None:
    """Consume the alerts, invoices and payments topics and POST each event, signed, to every subscribed
    endpoint, with retries; runs until interrupted (SIGINT/SIGTERM finish the POSTs in flight first)."""
    settings = get_settings()
    found = configured_endpoints(settings, files)
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"webhooks: {len(found)} endpoint(s), group {settings.webhook_group_id} on {settings.kafka_bootstrap}, "
                  f"log in {settings.clickhouse_url}")
    stats = DeliveryService(settings, found, name=name).run(stop)
    console.print(f"webhooks: stopped: {stats.records:,} record(s), {stats.delivered:,} delivered, {stats.retried:,} retried, "
                  f"{stats.dead:,} dead, {stats.skipped:,} already done")


@webhooks_app.command()
def deliveries(
    state: State | None = typer.Option(None, "--state", help="Only deliveries in this state."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only deliveries to this endpoint id."),
    limit: int = typer.Option(50, "--limit", min=1, help="Most deliveries listed (newest first)."),
) -> None:
    """List the delivery log: each delivery's latest attempt."""
    found = DeliveryLog(get_settings()).deliveries(state=state, endpoint_id=endpoint, limit=limit)
    table = Table(title="webhook deliveries (newest first)")
    table.add_column("delivery", no_wrap=True)
    for header in ("event type", "customer", "endpoint", "state", "attempts", "status", "latency ms", "last attempt", "error"):
        table.add_column(header)
    for d in found:
        table.add_row(d.delivery_id, d.event.type, d.event.customer_id, d.endpoint_id, d.state, str(d.attempts),
                      "-" if d.status_code is None else str(d.status_code), f"{d.latency_ms:,.1f}",
                      f"{d.attempted_at:%Y-%m-%d %H:%M:%S}", d.error or "")
    console.print(table)
    console.print(f"[green]ok[/]: {len(found)} deliver{'y' if len(found) == 1 else 'ies'}")


@webhooks_app.command()
def replay(
    delivery_id: str = typer.Argument(..., help="The delivery id (from `billing webhooks deliveries`)."),
    files: list[Path] = ENDPOINTS_OPTION,
) -> None:
    """Send a delivery again now (typically a dead one), signed anew, and log the attempt."""
    settings = get_settings()
    attempt = replay_delivery(settings, configured_endpoints(settings, files), delivery_id)
    console.print(f"[green]ok[/]: delivery {delivery_id} delivered to {attempt.endpoint.url} "
                  f"(HTTP {attempt.outcome.status_code}, attempt {attempt.attempt})")
