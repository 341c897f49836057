"""`billing simulate`: realistic, deterministic traffic into Kafka (or a file) plus its manifest."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from billing.cli.app import app, console
from billing.core.contracts import PaymentStatus
from billing.core.errors import ConfigError
from billing.core.invoicing.periods import closed_period
from billing.core.meters import active_meters
from billing.core.pricing.money import currency
from billing.invoicing.run import Invoicing
from billing.settings import get_settings
from producers.manifest import default_manifest_dir
from producers.paying import pay_period
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, KafkaSink

simulate_app = typer.Typer(help="Simulate the world the engine bills: usage, customers, subscriptions; `payers` pays invoices.")
app.add_typer(simulate_app, name="simulate")


def parse_rate(text: str) -> float | None:
    """``'max'`` -> None (unlimited), otherwise a positive number of events per second."""
    if text.strip().lower() == "max":
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--rate must be a number of events per second or 'max' (got {text!r})") from None


def parse_start(text: str | None) -> datetime | None:
    """An ISO 8601 time; a date or a time without zone is taken as UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start must be an ISO 8601 date or time (got {text!r})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@simulate_app.callback(invoke_without_command=True)
def simulate(
    ctx: typer.Context,
    customers: int = typer.Option(100, "--customers", help="Number of simulated customers."),
    rate: str = typer.Option("1000", "--rate", help="Usage events per second, or 'max'."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds to run (real time) or rate x duration events (history)."),
    events: int | None = typer.Option(None, "--events", help="Number of usage events to generate."),
    start: str | None = typer.Option(None, "--start", help="Simulate history from this UTC time (ISO 8601)."),
    days: float | None = typer.Option(None, "--days", help="Length of the simulated history (default 1 with --start)."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed and options, same output."),
    duplicate_rate: float = typer.Option(0.0, "--duplicate-rate", help="Probability an event is sent twice."),
    late_rate: float = typer.Option(0.0, "--late-rate", help="Probability an event arrives later than --lateness."),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate", help="Probability an event is malformed."),
    lateness: float = typer.Option(7200.0, "--lateness", help="Seconds a late event lags behind its event time (at least)."),
    anomalies: int = typer.Option(0, "--anomalies", help="Usage anomalies (spikes, drops) to inject, after 3 weeks of history."),
    manifest: Path | None = typer.Option(None, "--manifest", help="Manifest directory (default: <state>/manifests/seed-<seed>)."),
    output: Path | None = typer.Option(None, "--output", help="Write records to this file instead of Kafka."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write to <state>/simulate/dry-run.tsv instead of Kafka."),
) -> None:
    """Generate customers, usage and subscriptions, with injected faults (invoices come from `billing invoice run`).

    Without --start/--days, events are stamped with the wall clock (real time); with them, a past
    time range is simulated as fast as --rate allows, byte-identically for a given --seed.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    if events is None and duration is None:
        events = 10_000
    config = SimulationConfig(
        customers=customers, rate=parse_rate(rate), duration_s=duration, events=events, start=parse_start(start),
        days=days, seed=seed, duplicate_rate=duplicate_rate, late_rate=late_rate, malformed_rate=malformed_rate,
        lateness_s=lateness, anomalies=anomalies,
    )
    meters = active_meters()
    manifest_dir = manifest or default_manifest_dir(settings.state_dir, seed)
    if dry_run and output is None:
        output = settings.state_dir / "simulate" / "dry-run.tsv"
    if output is not None:
        sink = FileSink(output)
        target = str(output)
    else:
        with console.status(f"connecting to {settings.kafka_bootstrap}…"):
            sink = KafkaSink(settings.kafka_bootstrap, settings.topics())
        target = settings.kafka_bootstrap
    total = config.usage_events()
    columns = [TextColumn("[bold]usage events"), BarColumn(), TextColumn("{task.completed:,.0f}"),
               TextColumn("{task.fields[speed]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("simulate", total=total if total is not None else duration, speed="")
        produced = [0]

        def advance(n: int) -> None:
            produced[0] += n
            elapsed = bar.tasks[task].elapsed or 0.0
            speed = f"{produced[0] / elapsed:,.0f} ev/s" if elapsed else ""
            if total is None:
                bar.update(task, completed=min(elapsed, duration or 0.0), speed=speed)
            else:
                bar.update(task, advance=n, speed=speed)

        result = Simulator(config, meters, sink, manifest_dir, progress=advance).run()
    console.print(
        f"sent {sum(result.records.values()):,} records to {target} in {result.seconds:.1f}s "
        f"({result.usage_rate:,.0f} usage events/s): "
        + ", ".join(f"{topic} {n:,}" for topic, n in result.records.items())
    )
    console.print(f"manifest: {result.manifest}")


@simulate_app.command()
def payers(
    period: str = typer.Option(..., "--period", "-p", help="Closed month whose finalized invoices the payers pay, YYYY-MM."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed and invoices, same payments."),
    until: str | None = typer.Option(None, "--until", help="Send what happened by this UTC time (ISO 8601; default now)."),
    manifest: Path | None = typer.Option(None, "--manifest", help="Manifest directory (default: <state>/manifests/seed-<seed>)."),
    output: Path | None = typer.Option(None, "--output", help="Write the payment records to this file instead of Kafka."),
) -> None:
    """Pay (or fail to pay) the invoices the engine finalized for a month: payments, retries, refunds, disputes."""
    settings = get_settings()
    moment = parse_start(until) or datetime.now(UTC)
    sink = FileSink(output) if output is not None else KafkaSink(settings.kafka_bootstrap, settings.topics())
    manifest_dir = manifest or default_manifest_dir(settings.state_dir, seed)
    invoicing = Invoicing(settings)
    invoices = invoicing.store.invoices(period=closed_period(period, moment))
    done = pay_period(invoices, seed, moment, sink, invoicing.mark_paid, manifest_dir)
    console.print(f"{done.invoices:,} finalized invoices of {period}: {done.paid:,} paid ({done.newly_paid:,} just now), "
                  f"{done.unpaid:,} not paid by {moment:%Y-%m-%d %H:%M} UTC; sent {done.payment_events:,} payment events "
                  f"({done.scheduled_later:,} happen later: re-run to send them)")
    collected: dict[str, Decimal] = defaultdict(Decimal)
    for event in done.payments:
        if event.status is PaymentStatus.SUCCEEDED:
            collected[event.currency] += event.amount
    if collected:
        console.print("collected: " + ", ".join(currency(code).format(amount) for code, amount in sorted(collected.items())))
    console.print(f"manifest: {manifest_dir}")
