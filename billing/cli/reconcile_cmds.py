"""`billing reconcile`: check the usage rollups against the raw facts, optionally repair them."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.core.errors import ConfigError
from billing.core.meters import active_meters
from billing.settings import get_settings
from billing.warehouse.client import client
from billing.warehouse.facts import COLUMNS
from billing.warehouse.reconcile import fix_rows, reconcile


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} must be an ISO 8601 date or time (got {text!r})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("reconcile")
def reconcile_command(
    since: str | None = typer.Option(None, "--since", help="Only windows starting at or after this UTC time."),
    until: str | None = typer.Option(None, "--until", help="Only windows starting before this UTC time."),
    customer: list[str] = typer.Option([], "--customer", help="Only this customer (repeatable)."),
    window: list[int] = typer.Option([], "--window", help="Window length in seconds (default: all configured)."),
    fix: bool = typer.Option(False, "--fix", help="Write corrected rollups (a higher version replaces the wrong row)."),
    show: int = typer.Option(20, "--show", help="How many differences to list."),
) -> None:
    """Recompute usage windows from the raw facts (usage_events FINAL) and report every rollup that
    differs; with --fix, repair them. Exits with status 1 when differences remain."""
    settings = get_settings()
    meters = active_meters()
    sizes = tuple(window) or tuple(settings.worker_windows_s)
    ch = client(settings)
    with console.status("recomputing windows from the raw facts…"):
        checked, diffs = reconcile(ch, settings, meters, sizes, _time(since, "--since"), _time(until, "--until"),
                                   customer)
    if diffs:
        table = Table("customer", "meter", "window", "start", "group", "kind", "expected", "rollup")
        for diff in diffs[:show]:
            customer_id, meter, seconds, start, gkey = diff.window
            table.add_row(customer_id, meter, f"{seconds}s", datetime.fromtimestamp(start, UTC).isoformat(),
                          gkey, diff.kind, str(diff.expected.value) if diff.expected else "-",
                          str(diff.actual.value) if diff.actual else "-")
        console.print(table)
    console.print(f"{checked:,} window(s) checked, {len(diffs):,} differ.")
    if diffs and fix:
        rows = fix_rows(diffs, meters)
        ch.insert(f"{settings.clickhouse_database}.usage_rollups", rows, column_names=list(COLUMNS["usage_rollups"]))
        console.print(f"fixed: wrote {len(rows):,} corrected rollup(s).")
    elif diffs:
        raise typer.Exit(1)
