"""`billing alerts rules | scan`: validate and list alert rules files; evaluate them over the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from billing.alerts.scan import AlertScan, ScanSummary
from billing.cli.app import app, console, stage_progress, utc_moment
from billing.core.alerts.anomaly import HOUR
from billing.core.alerts.rules import (
    EXAMPLE_RULES,
    AnyRule,
    CreditBalanceRule,
    PaymentDueRule,
    SpendThresholdRule,
    UsageThresholdRule,
    load_rules,
)
from billing.core.contracts import SpendUnit, ThresholdUnit
from billing.core.errors import ConfigError
from billing.core.invoicing.periods import parse_period
from billing.core.meters import active_meters
from billing.core.pricing.proration import Period, month_period
from billing.settings import configured_catalog, get_settings

alerts_app = typer.Typer(help="Alerts: usage and spend thresholds, anomalies, payment reminders, low credit, over the warehouse.",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command()
def rules(
    files: list[Path] = typer.Argument(None, help="Rules files or folders (YAML or JSON); default: the example rules."),
) -> None:
    """Validate alert rules against the configured meters and plans, and list them."""
    paths = files or [EXAMPLE_RULES]
    ruleset = load_rules(paths, meters=active_meters(), catalog=configured_catalog())
    table = Table(title="alert rules")
    table.add_column("id", no_wrap=True)
    for header in ("name", "kind", "meter", "fires when", "customers", "webhook"):
        table.add_column(header)
    for rule in ruleset:
        table.add_row(rule.id, rule.label, rule.kind, getattr(rule, "meter", "-"), _condition(rule),
                      ", ".join(rule.customers) if rule.customers else "every customer", rule.webhook or "-")
    console.print(table)
    console.print(f"[green]ok[/]: {len(ruleset)} rule(s) in {len(paths)} path(s)")


def _condition(rule: AnyRule) -> str:
    if isinstance(rule, CreditBalanceRule):
        return f"the prepaid credit balance is below {', '.join(f'{amount:,}' for amount in rule.below)} (credits' currency)"
    if isinstance(rule, SpendThresholdRule):
        unit = "% of the plan's minimum commitment" if rule.unit is SpendUnit.PERCENT_OF_MINIMUM else "(customer's currency)"
        return f"spend so far in the period reaches {', '.join(f'{t:,}' for t in rule.thresholds)} {unit}"
    if isinstance(rule, PaymentDueRule):
        before = ", ".join(str(days) for days in rule.days_before)
        after = ", ".join(str(days) for days in rule.days_overdue)
        return "; ".join(part for part in (before and f"an open invoice is due in {before} days",
                                           after and f"overdue by {after} days") if part)
    if isinstance(rule, UsageThresholdRule):
        values = ", ".join(f"{threshold:,}" for threshold in rule.thresholds)
        unit = "% of the plan's included units" if rule.unit is ThresholdUnit.PERCENT else active_meters()[rule.meter].unit
        return f"usage in the period reaches {values} {unit}"
    return (f"{rule.direction.value}: an hour's robust z-score against the same hour of the last {rule.weeks} weeks "
            f"reaches {rule.score} and it changed by {rule.min_change_percent} % or more (silent before "
            f"{rule.min_history} weeks of history)")


@alerts_app.command()
def scan(
    rules_files: list[Path] = typer.Option(None, "--rules", "-r", help="Rules file or folder (repeatable); default: the example rules."),
    since: str | None = typer.Option(None, "--since", help="Window start (ISO 8601, UTC; default: the start of the month of --until)."),
    until: str | None = typer.Option(None, "--until", help="Window end (ISO 8601, UTC; default: the end of the last complete hour)."),
    period: str | None = typer.Option(None, "--period", "-p", help="The month YYYY-MM as the window (instead of --since/--until)."),
) -> None:
    """Evaluate the alert rules over the hourly usage rollups; publish and store the alerts not stored yet (idempotent)."""
    meters, catalog = active_meters(), configured_catalog()
    ruleset = load_rules(rules_files or [EXAMPLE_RULES], meters=meters, catalog=catalog)
    window = _window(since, until, period, datetime.now(UTC))
    with stage_progress() as progress:
        summary = AlertScan(get_settings(), ruleset, catalog=catalog, meters=meters).run(window, progress=progress)
    _print_scan(summary, [rule.id for rule in ruleset])


def _window(since: str | None, until: str | None, period: str | None, now: datetime) -> Period:
    """The scan window in whole hours, never past the last complete hour."""
    last = now.replace(minute=0, second=0, microsecond=0)
    if period is not None:
        if since or until:
            raise ConfigError("give either --period or --since/--until, not both")
        month = parse_period(period)
        start, end = month.start, min(month.end, last)
    else:
        end = min(_hour(utc_moment(until, "--until")) if until else last, last)
        start = _hour(utc_moment(since, "--since")) if since else month_period(end - HOUR).start
    if start >= end:
        raise ConfigError(f"the window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC holds no complete hour; "
                          "alerts are evaluated on complete hours up to now")
    return Period(start, end)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _print_scan(summary: ScanSummary, rule_ids: list[str]) -> None:
    window = summary.window
    table = Table(title=f"alerts {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC")
    for header in ("rule", "new (published, stored)", "already known"):
        table.add_column(header, justify="left" if header == "rule" else "right")
    for rule_id in rule_ids:
        table.add_row(rule_id, f"{summary.new[rule_id]:,}", f"{summary.known[rule_id]:,}")
    console.print(table)
    console.print(f"[green]ok[/]: {summary.new.total():,} new alert(s), {summary.known.total():,} already known")
