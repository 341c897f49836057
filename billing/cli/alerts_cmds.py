"""`billing alerts rules`: validate and list alert rules files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.core.alerts.rules import EXAMPLE_RULES, UsageAnomalyRule, UsageThresholdRule, load_rules
from billing.core.contracts import ThresholdUnit
from billing.core.meters import active_meters
from billing.settings import configured_catalog

alerts_app = typer.Typer(help="Alerts: usage thresholds and anomalies (rules only so far).", no_args_is_help=True)
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
        table.add_row(rule.id, rule.label, rule.kind, rule.meter, _condition(rule),
                      ", ".join(rule.customers) if rule.customers else "every customer", rule.webhook or "-")
    console.print(table)
    console.print(f"[green]ok[/]: {len(ruleset)} rule(s) in {len(paths)} path(s)")


def _condition(rule: UsageThresholdRule | UsageAnomalyRule) -> str:
    if isinstance(rule, UsageThresholdRule):
        values = ", ".join(f"{threshold:,}" for threshold in rule.thresholds)
        unit = "% of the plan's included units" if rule.unit is ThresholdUnit.PERCENT else active_meters()[rule.meter].unit
        return f"usage in the period reaches {values} {unit}"
    return (f"{rule.direction.value}: an hour's robust z-score against the same hour of the last {rule.weeks} weeks "
            f"reaches {rule.score} and it changed by {rule.min_change_percent} % or more (silent before "
            f"{rule.min_history} weeks of history)")
