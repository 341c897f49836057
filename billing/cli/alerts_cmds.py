"""`billing alerts rules ... | scan`: check rules files, manage the rules stored per customer; evaluate them all over the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from billing.alerts.rule_store import AlertRules, rule_files, scan_rules
from billing.alerts.scan import AlertScan, ScanSummary
from billing.cli.app import app, console, stage_progress, utc_moment
from billing.core.alerts.anomaly import HOUR
from billing.core.alerts.rules import (
    AnyRule,
    CreditBalanceRule,
    PaymentDueRule,
    SpendThresholdRule,
    UsageThresholdRule,
    load_rules,
)
from billing.core.alerts.stored import customer_rule
from billing.core.contracts import SpendUnit, ThresholdUnit
from billing.core.errors import ConfigError
from billing.core.invoicing.periods import parse_period
from billing.core.meters import active_meters
from billing.core.pricing.catalog import read_document
from billing.core.pricing.proration import Period, month_period
from billing.settings import configured_catalog, get_settings

alerts_app = typer.Typer(help="Alerts: usage and spend thresholds, anomalies, payment reminders, low credit, over the warehouse.",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


rules_app = typer.Typer(help="Alert rules: check rules files; create, list, show, update and delete the rules stored per "
                                 "customer (also through the API, /v1/alert-rules).", no_args_is_help=True)
alerts_app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def check_rules(
    files: list[Path] = typer.Argument(None, help="Rules files or folders (YAML or JSON); default: BILLING_ALERT_RULES_FILE "
                                                  "or the example rules."),
) -> None:
    """Validate alert rules files against the configured meters and plans, and list their rules."""
    paths = files or rule_files(get_settings())
    ruleset = load_rules(paths, meters=active_meters(), catalog=configured_catalog())
    _print_rules("alert rules", [(rule, ", ".join(rule.customers) if rule.customers else "every customer") for rule in ruleset])
    console.print(f"[green]ok[/]: {len(ruleset)} rule(s) in {len(paths)} path(s)")


@rules_app.command("list")
def list_rules(
    customers: list[str] = typer.Option(None, "--customer", "-c", help="Only this customer's rules (repeatable)."),
    after: str = typer.Option("", "--after", help="Rules with ids after this one (the previous page's last id)."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Page size."),
) -> None:
    """List the stored rules (per customer; the API's rules), ordered by id."""
    found = _rules().store.list(customers=customers or None, after=after, limit=limit + 1)
    page = found[:limit]
    _print_rules("stored alert rules", [(stored.rule, stored.customer_id) for stored in page])
    more = f"; next page: --after {page[-1].id}" if len(found) > limit else ""
    console.print(f"[green]ok[/]: {len(page)} stored rule(s){more}")


@rules_app.command("get")
def get_rule(rule_id: str = typer.Argument(..., help="The rule id.")) -> None:
    """Show a stored rule as JSON."""
    console.print_json(data=_rules().get(rule_id).view())


@rules_app.command("create")
def create_rule(
    file: Path = typer.Argument(..., help="YAML or JSON file of one rule: its fields (as in a rules file) and customer_id "
                                          "instead of customers; id optional (default: a generated one)."),
) -> None:
    """Store a new rule of one customer (`billing alerts scan` evaluates it); prints it as stored."""
    rules = _rules()
    customer_id, rule = customer_rule(read_document(file), str(file), meters=active_meters(), catalog=configured_catalog())
    console.print_json(data=rules.create(customer_id, rule, by="cli", now=datetime.now(UTC)).view())


@rules_app.command("update")
def update_rule(
    rule_id: str = typer.Argument(..., help="The rule id."),
    file: Path = typer.Argument(..., help="YAML or JSON file of the rule's new fields (all of them, as for create; the "
                                          "customer_id may not change)."),
) -> None:
    """Replace a stored rule's fields; prints it as stored."""
    rules = _rules()
    row = rules.owned(rule_id)
    customer_id, rule = customer_rule(read_document(file), str(file), meters=active_meters(), catalog=configured_catalog(),
                                      rule_id=rule_id)
    console.print_json(data=rules.update(row, customer_id, rule, by="cli", now=datetime.now(UTC)).view())


@rules_app.command("delete")
def delete_rule(rule_id: str = typer.Argument(..., help="The rule id.")) -> None:
    """Delete a stored rule (the alerts it fired stay)."""
    rules = _rules()
    rules.delete(rules.owned(rule_id), by="cli", now=datetime.now(UTC))
    console.print(f"[green]ok[/]: deleted alert rule {rule_id}")


def _rules() -> AlertRules:
    settings, meters, catalog = get_settings(), active_meters(), configured_catalog()
    return AlertRules(settings, meters=meters, catalog=catalog,
                      files=load_rules(rule_files(settings), meters=meters, catalog=catalog))


def _print_rules(title: str, rows: list[tuple[AnyRule, str]]) -> None:
    table = Table(title=title)
    table.add_column("id", no_wrap=True)
    for header in ("name", "kind", "meter", "fires when", "customers", "webhook"):
        table.add_column(header)
    for rule, customers in rows:
        table.add_row(rule.id, rule.label, rule.kind, getattr(rule, "meter", "-"), _condition(rule), customers, rule.webhook or "-")
    console.print(table)


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
    rules_files: list[Path] = typer.Option(None, "--rules", "-r", help="Rules file or folder (repeatable); default: "
                                                                       "BILLING_ALERT_RULES_FILE or the example rules."),
    since: str | None = typer.Option(None, "--since", help="Window start (ISO 8601, UTC; default: the start of the month of --until)."),
    until: str | None = typer.Option(None, "--until", help="Window end (ISO 8601, UTC; default: the end of the last complete hour)."),
    period: str | None = typer.Option(None, "--period", "-p", help="The month YYYY-MM as the window (instead of --since/--until)."),
) -> None:
    """Evaluate the alert rules (the rules files' and the stored ones) over the warehouse; publish and store the alerts
    not stored yet (idempotent)."""
    settings, meters, catalog = get_settings(), active_meters(), configured_catalog()
    ruleset = scan_rules(settings, rules_files or rule_files(settings), meters=meters, catalog=catalog)
    window = _window(since, until, period, datetime.now(UTC))
    with stage_progress() as progress:
        summary = AlertScan(settings, ruleset, catalog=catalog, meters=meters).run(window, progress=progress)
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
