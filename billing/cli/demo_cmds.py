"""`billing demo`: the whole pipeline end to end on the local platform, step by step."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from billing.cli.app import app, console
from billing.core.errors import BillingError
from billing.settings import get_settings
from producers.customers import customer_id
from producers.manifest import default_manifest_dir

CLOSED_MONTHS = 2
"""Whole months the demo simulates, bills, finalizes and lets the payers pay (then the open month)."""


def months_back(now: datetime, months: int = CLOSED_MONTHS) -> datetime:
    """First instant of the calendar month ``months`` months before the month of ``now`` (UTC)."""
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    index = first.year * 12 + first.month - 1 - months
    return first.replace(year=index // 12, month=index % 12 + 1)


def _next_month(moment: datetime) -> datetime:
    """First instant of the calendar month after ``moment``."""
    first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)


def closed_months(start: datetime, end: datetime) -> list[datetime]:
    """Starts of the whole calendar months from ``start`` that ended by ``end``."""
    months, month = [], start
    while _next_month(month) <= end:
        months.append(month)
        month = _next_month(month)
    return months


FAULTS = {"duplicate_rate": 0.01, "late_rate": 0.005, "malformed_rate": 0.001}


def earlier_window(manifest_dir: Path, customers: int, events: int, seed: int) -> tuple[datetime, float] | None:
    """Start and days of an earlier demo simulation of the same size and seed (from its manifest).

    A re-run sends exactly the same records again (all duplicates to the pipeline): a new window
    would give the same event, invoice and payment ids other times and amounts, and the marts'
    reconciliation tests would then compare two versions of the same records."""
    summary = manifest_dir / "summary.json"
    if not summary.exists():
        return None
    config = json.loads(summary.read_text())["config"]
    same = {"customers": customers, "events": events, "seed": seed, **FAULTS}
    if any(config.get(name) != value for name, value in same.items()):
        return None
    return datetime.fromisoformat(config["start"]), float(config["days"])


def demo_steps(customers: int, events: int, seed: int, now: datetime | None = None,
               window: tuple[datetime, float] | None = None) -> list[tuple[str, list[str]]]:
    """(title, billing arguments) of every demo step, in order.

    The simulated history runs from the start of the month :data:`CLOSED_MONTHS` months ago until
    ``now`` (or over ``window``, an earlier run's start and days). The billing engine bills and
    finalizes each whole month of it as of two hours after the month closed (the same time on a
    re-run, so nothing changes), the payers pay each month's invoices up to now, and the open month
    shows up in the invoice preview.
    """
    now = now or datetime.now(UTC)
    start = months_back(now)
    days = (now - start).total_seconds() / 86400
    if window is not None:
        start, days = window
    months = closed_months(start, start + timedelta(days=days))
    steps = [
        ("start the platform (warehouse, Kafka, stream worker, API)", ["up"]),
        (f"simulate {len(months)} closed months and the open one, with duplicates, late and malformed events", [
            "simulate", "--customers", str(customers), "--events", str(events), "--rate", "max",
            "--start", start.isoformat(), "--days", f"{days:.4f}", "--seed", str(seed),
            "--duplicate-rate", str(FAULTS["duplicate_rate"]), "--late-rate", str(FAULTS["late_rate"]),
            "--malformed-rate", str(FAULTS["malformed_rate"]),
        ]),
        ("wait until the stream worker has stored everything", ["lag", "--wait", "1200"]),
        ("reconcile rollups with the raw facts", ["reconcile"]),
    ]
    for month in months:
        steps += [
            (f"bill {month:%Y-%m} (the billing engine owns every invoice)", [
                "invoice", "run", "--period", f"{month:%Y-%m}", "--finalize",
                "--as-of", (_next_month(month) + timedelta(hours=2)).isoformat()]),
            (f"the payers pay the invoices of {month:%Y-%m} (or fail to)", [
                "simulate", "payers", "--period", f"{month:%Y-%m}", "--seed", str(seed)]),
        ]
    return [*steps,
            ("build and test the marts", ["dbt", "build"]),
            ("answer the finance and operations questions", ["report", "--limit", "3"]),
            ("preview the open invoice of a customer", ["invoice", "preview", "--customer", customer_id(seed, 1)]),
            ("start the dashboards", ["superset", "up"]),
            ("show the platform", ["status"])]


@app.command()
def demo(
    customers: int = typer.Option(200, help="Simulated customers."),
    events: int = typer.Option(300_000, help="Simulated usage events."),
    seed: int = typer.Option(7, help="Random seed of the simulation."),
) -> None:
    """Start the platform and run the pipeline end to end (safe to re-run)."""
    settings = get_settings()
    manifest_dir = default_manifest_dir(settings.state_dir, seed)
    window = earlier_window(manifest_dir, customers, events, seed)
    if window is not None:
        console.print(f"re-run: sending the same simulated history as before ({window[0]:%Y-%m-%d} + {window[1]:g} days); "
                      f"delete {manifest_dir} (or `make clean`) for a new one")
    steps = demo_steps(customers, events, seed, window=window)
    for number, (title, args) in enumerate(steps, start=1):
        console.rule(f"[bold]{number}/{len(steps)} {title}[/]  [dim]billing {' '.join(args)}[/]")
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "billing", *args])
        if result.returncode != 0:
            raise BillingError(f"demo step {number} ({title}) failed; fix the error above and re-run `make demo`.")
        console.print(f"[green]done[/] in {time.monotonic() - started:.1f}s")
    console.rule("[bold green]demo complete")
    console.print(
        f"dashboards  http://{settings.superset_host}:{settings.superset_port}  "
        f"(login {settings.superset_admin_user} / see BILLING_SUPERSET_ADMIN_PASSWORD)\n"
        f"API docs    http://{settings.api_host}:{settings.api_port}/docs\n"
        f"worker      http://127.0.0.1:{settings.worker_web_port}/metrics\n"
        f"SQL         billing sql \"SELECT meter, sum(value) FROM usage_rollups FINAL "
        f"WHERE window_seconds = 3600 GROUP BY meter\"\n"
        "stop        make down"
    )
