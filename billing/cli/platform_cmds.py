"""`billing up | down | status`: manage the local platform."""

from __future__ import annotations

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.kafka.lag import group_lag, wait_caught_up
from billing.platform import stack
from billing.settings import get_settings

ServiceArg = typer.Argument(None, help="Services to act on (default: all).", show_default=False)


@app.command()
def up(names: list[str] | None = ServiceArg) -> None:
    """Install what is missing and start the local services (idempotent)."""
    settings = get_settings()
    with console.status("starting…") as spinner:
        stack.up(settings, names, on_start=lambda svc: spinner.update(f"starting {svc.name}…"))
    _print_status()


@app.command()
def down(names: list[str] | None = ServiceArg) -> None:
    """Stop the local services and their child processes."""
    for name, was_running in stack.down(get_settings(), names):
        console.print(f"{name}: {'stopped' if was_running else 'not running'}")


@app.command()
def status() -> None:
    """Show health, ports and lag of every local service."""
    healthy = _print_status()
    raise typer.Exit(0 if healthy else 3)


def _print_status() -> bool:
    table = Table(title="billing platform")
    for column in ("service", "state", "pid", "endpoint", "details"):
        table.add_column(column)
    rows = stack.status(get_settings())
    for row in rows:
        if row.healthy:
            state = "[green]healthy"
        elif row.running:
            state = "[yellow]unhealthy"
        else:
            state = "[dim]off (optional)" if row.optional else "[red]stopped"
        table.add_row(row.name, state, str(row.pid or "-"), row.endpoint, row.details)
    console.print(table)
    return all(row.ok for row in rows)


@app.command()
def lag(
    wait: float | None = typer.Option(
        None, "--wait", help="Wait up to this many seconds until the workers have processed everything."
    ),
) -> None:
    """Show the stream workers' consumer lag per topic (read from Kafka)."""
    settings = get_settings()
    if wait is not None:
        with console.status("waiting for the workers…") as spinner:
            wait_caught_up(settings, wait, on_poll=lambda total: spinner.update(f"waiting for the workers: lag {total:,}"))
    table = Table("topic", "lag")
    for topic, records in group_lag(settings).items():
        table.add_row(topic, f"{records:,}")
    console.print(table)
