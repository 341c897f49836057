"""`billing worker`: run a stream worker (Faust agents writing to the warehouse)."""

from __future__ import annotations

import typer

from billing.cli.app import app, console
from billing.settings import get_settings


@app.command()
def worker(
    name: str = typer.Option("worker-1", "--name", help="Worker name: its state folder and metrics label."),
    web_port: int | None = typer.Option(None, "--web-port", help="Health/metrics port (default BILLING_WORKER_WEB_PORT)."),
    loglevel: str = typer.Option("warning", "--loglevel", help="Log level: debug, info, warning, error."),
) -> None:
    """Consume every topic: validate (dead letters), deduplicate, aggregate usage windows, track
    payments and write facts and rollups to the warehouse. Start more workers (each with its own
    --name and --web-port) to share the partitions."""
    from streams.worker import run_worker

    settings = get_settings()
    port = web_port or settings.worker_web_port
    console.print(f"worker {name}: {settings.kafka_bootstrap} -> {settings.clickhouse_url}, "
                  f"metrics on http://127.0.0.1:{port}/metrics")
    run_worker(settings, name, port, loglevel)
