"""`billing topics ...`: create and inspect the project's Kafka topics (local or real cluster)."""

from __future__ import annotations

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.kafka.topics import admin_client, ensure_topics, partition_counts, topic_specs
from billing.settings import get_settings

topics_app = typer.Typer(help="Kafka topics of the pipeline.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command()
def create() -> None:
    """Create missing topics with their partition counts and configs (idempotent)."""
    settings = get_settings()
    specs = list(topic_specs(settings).values())
    created = ensure_topics(admin_client(settings.kafka_bootstrap), specs, timeout=settings.start_timeout_s)
    console.print(f"created: {', '.join(created)}" if created else "all topics exist")


@topics_app.command("list")
def list_topics() -> None:
    """Show each topic of the pipeline, its partitions and whether it exists."""
    settings = get_settings()
    counts = partition_counts(admin_client(settings.kafka_bootstrap))
    table = Table("logical", "topic", "partitions", "wanted", "retention.ms")
    for logical, spec in topic_specs(settings).items():
        table.add_row(logical, spec.name, str(counts.get(spec.name, "[red]missing")), str(spec.partitions),
                      spec.config.get("retention.ms", ""))
    console.print(table)
