"""`billing alerts scan`: the alert rules evaluated over the hourly usage rollups in the warehouse.

For a window ``[since, until)`` of whole hours:

- **usage anomalies**: every hour of the window against the same hour of the rule's past weeks
  (:func:`~billing.core.alerts.anomaly.detect`), from the hours read back to ``since`` minus those
  weeks; an hour without a rollup is zero usage;
- **payment reminders**: the customers' finalized, unpaid invoices at the end of the window
  (:func:`~billing.core.alerts.events.payment_alerts`): due in N days, overdue by N days;
- **usage thresholds**: the cumulative usage of each calendar month (the billing period) the window
  touches, from the month's start to the end of the window, hour by hour (a meter's period quantity
  as the invoice run computes it: :func:`~billing.core.invoicing.usage.quantity`); each threshold
  fires at the hour the usage reaches it. Percent thresholds are of the units included by the plan
  the customer is on at the end of the evaluated part of the month (found as the invoice run finds
  it: subscription spans, then the catalog plan in the customer's currency).

The hourly rollups are read with one query per meter (all customers, all rules on it). Alerts have
deterministic ids (:func:`~billing.core.alerts.events.alert_id`): the ids already stored in the
``alerts`` table are skipped, the new alerts are published on the alerts topic (key = customer id)
and then inserted into the table. A crash after the publish and before the insert leaves alerts on
the topic that the table does not have: the next scan publishes them again (same ids; consumers keep
the first message per id) and stores them. Inserting first instead could lose an alert forever.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from billing.core.alerts.anomaly import HOUR, WEEK, detect
from billing.core.alerts.events import anomaly_alert, payment_alerts, threshold_alerts
from billing.core.alerts.rules import RuleSet, UsageAnomalyRule, UsageThresholdRule
from billing.core.contracts import AlertEvent, InvoiceStatus, ThresholdUnit
from billing.core.errors import ConfigError
from billing.core.invoicing.timeline import plan_spans
from billing.core.invoicing.usage import HourStats, quantity
from billing.core.meters import MeterSet
from billing.core.pricing import PlanCatalog
from billing.core.pricing.proration import Period, month_period
from billing.invoicing.store import MS, Store, epoch_ms
from billing.kafka.publish import publish
from billing.settings import Settings
from billing.warehouse import facts
from billing.warehouse.client import client

Progress = Callable[[str, int, int], None]
Hours = dict[str, list[tuple[datetime, Decimal, Decimal]]]
"""Customer id -> ``(hour, sum, peak)`` of a meter's hourly rollups (over its dimension groups), by hour."""


def _quiet(_stage: str, _done: int, _total: int) -> None:
    """Progress callback that reports nothing."""


@dataclass
class ScanSummary:
    """What a scan found: alerts per rule id, new (published and stored) or already known."""

    window: Period
    new: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)


def months(window: Period) -> Iterator[Period]:
    """The calendar months ``window`` touches, each cut at the window's end."""
    month = month_period(window.start)
    while month.start < window.end:
        yield Period(month.start, min(month.end, window.end))
        month = month_period(month.end)


class AlertScan:
    """Evaluates ``rules`` over the warehouse and topic named by ``settings``."""

    def __init__(self, settings: Settings, rules: RuleSet, *, catalog: PlanCatalog, meters: MeterSet):
        self.settings = settings
        self.rules = rules
        self.catalog = catalog
        self.meters = meters
        self.store = Store(client(settings), settings.clickhouse_database)

    def run(self, window: Period, *, progress: Progress = _quiet) -> ScanSummary:
        """Evaluate every rule over ``window``, publish and store the alerts not stored yet."""
        alerts = self.evaluate(window, progress)
        known = self.known([alert.id for alert in alerts])
        summary = ScanSummary(window)
        new = []
        for alert in alerts:
            (summary.known if alert.id in known else summary.new)[alert.data.rule] += 1
            if alert.id not in known:
                new.append(alert)
        if new:
            progress("publishing alerts", 0, len(new))
            publish(self.settings, "alerts", ((alert.subject, alert) for alert in new), "alert")
            progress("storing alerts", len(new), len(new))
            self.store.write_rows(facts.alert_rows(alert) for alert in new)
        return summary

    def evaluate(self, window: Period, progress: Progress = _quiet) -> list[AlertEvent]:
        """Every alert the rules fire over ``window`` (already stored ones included), unique by id."""
        by_meter: dict[str, list[UsageThresholdRule | UsageAnomalyRule]] = defaultdict(list)
        for rule in self.rules.of_meters():
            by_meter[rule.meter].append(rule)
        included = self._included(window) if any(
            isinstance(rule, UsageThresholdRule) and rule.unit is ThresholdUnit.PERCENT for rule in self.rules) else {}
        alerts: dict[str, AlertEvent] = {}
        if self.rules.reminders():
            progress("reading open invoices", 0, len(by_meter))
            for invoice in self.store.invoices(status=InvoiceStatus.FINALIZED):
                for rule in self.rules.reminders():
                    alerts.update((alert.id, alert) for alert in payment_alerts(rule, invoice, window.end))
        for done, (meter, rules) in enumerate(sorted(by_meter.items())):
            progress(f"reading {meter}", done, len(by_meter))
            hours = self._hours(meter, rules, window)
            for rule in rules:
                found = (self._anomalies(rule, hours, window) if isinstance(rule, UsageAnomalyRule)
                         else self._thresholds(rule, hours, window, included))
                alerts.update((alert.id, alert) for alert in found)
        progress("evaluated", len(by_meter), len(by_meter))
        return sorted(alerts.values(), key=lambda alert: (alert.data.period_start, alert.subject, alert.id))

    def known(self, ids: list[str]) -> set[str]:
        """The alert ids among ``ids`` already stored."""
        if not ids:
            return set()
        rows = self.store.ch.query(f"SELECT alert_id FROM {self.store.db}.alerts FINAL WHERE alert_id IN {{ids:Array(String)}}",
                                   parameters={"ids": ids}).result_rows
        return {row[0] for row in rows}

    # ------------------------------------------------------------------------------ evaluation

    def _anomalies(self, rule: UsageAnomalyRule, hours: Hours, window: Period) -> Iterator[AlertEvent]:
        for customer_id, series in hours.items():
            if rule.watches(customer_id):
                points = [(hour, total) for hour, total, _ in series]
                for anomaly in detect(points, rule, start=window.start, end=window.end):
                    yield anomaly_alert(rule, customer_id, anomaly, time=anomaly.hour + HOUR)

    def _thresholds(self, rule: UsageThresholdRule, hours: Hours, window: Period,
                    included: dict[tuple[str, datetime, str], Decimal]) -> Iterator[AlertEvent]:
        aggregation = self.meters[rule.meter].aggregation
        for month in months(window):
            billing_period = month_period(month.start)
            for customer_id, series in hours.items():
                units = included.get((customer_id, month.start, rule.meter), Decimal(0))
                stats = HourStats(Decimal(0), Decimal(0), Decimal(0))
                for hour, total, peak in series:
                    if not month.start <= hour < month.end:
                        continue
                    previous = quantity(aggregation, stats)
                    stats = HourStats(stats.total + total, max(stats.peak, peak), total)
                    yield from threshold_alerts(rule, customer_id, billing_period, previous, quantity(aggregation, stats),
                                                included=units, time=hour + HOUR)

    def _included(self, window: Period) -> dict[tuple[str, datetime, str], Decimal]:
        """``(customer, month start, meter) -> units`` the customer's plan includes, per month of ``window``."""
        changes = self.store.subscription_changes(before=window.end)
        customers = self.store.customers(list(changes))
        found = {}
        for month in months(window):
            for customer_id, customer_changes in changes.items():
                spans = plan_spans(customer_changes, month)
                if not spans or customer_id not in customers:
                    continue
                try:
                    plan = self.catalog.plan_for(spans[-1].plan_id, customers[customer_id].currency, spans[-1].interval)
                except ConfigError as exc:
                    raise ConfigError(f"customer {customer_id}: {exc}; nothing was published or stored") from None
                for meter in plan.meters:
                    found[(customer_id, month.start, meter)] = plan.included_units(meter)
        return found

    def _hours(self, meter: str, rules: list[UsageThresholdRule | UsageAnomalyRule], window: Period) -> Hours:
        """The hourly rollups of ``meter`` the ``rules`` need: back to the first month's start for
        thresholds and to the rules' past weeks for anomalies, in one query."""
        low = min(month_period(window.start).start if isinstance(rule, UsageThresholdRule) else window.start - rule.weeks * WEEK
                  for rule in rules)
        watched = None if any(rule.customers is None for rule in rules) else sorted({c for r in rules for c in r.customers or ()})
        where = "" if watched is None else "AND customer_id IN {customers:Array(String)}"
        rows = self.store.ch.query(
            f"""
            SELECT customer_id, window_start, toString(sum(value)), toString(max(value))
            FROM {self.store.db}.usage_rollups FINAL
            WHERE meter = {{meter:String}} AND window_seconds = 3600
              AND window_start >= {MS.format('low')} AND window_start < {MS.format('high')} {where}
            GROUP BY customer_id, window_start
            ORDER BY customer_id, window_start
            """,
            parameters={"meter": meter, "low": epoch_ms(low), "high": epoch_ms(window.end), "customers": watched},
        ).result_rows
        hours: Hours = defaultdict(list)
        for customer_id, start, total, peak in rows:
            hours[customer_id].append((start, Decimal(total), Decimal(peak)))
        return hours
