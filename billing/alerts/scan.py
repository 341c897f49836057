"""`billing alerts scan`: the alert rules evaluated over the hourly usage rollups in the warehouse.

For a window ``[since, until)`` of whole hours:

- **usage anomalies**: every hour of the window against the same hour of the rule's past weeks
  (:func:`~billing.core.alerts.anomaly.detect`), from the hours read back to ``since`` minus those
  weeks; an hour without a rollup is zero usage;
- **payment reminders**: the customers' finalized, unpaid invoices at the end of the window
  (:func:`~billing.core.alerts.events.payment_alerts`): due in N days, overdue by N days;
- **credit balances**: each customer's prepaid credits per currency at the end of the window, as the
  invoice run draws them (:func:`~billing.core.invoicing.grants.credit_balance`), against the
  amounts of the month the window ends in;
- **spend thresholds**: each subscribed customer's spend so far in the month the window ends in,
  priced by the invoicing engine's preview (:meth:`~billing.invoicing.run.Invoicing.preview`, the one
  source of money: its lines' amounts, the minimum-commitment true-up excluded), against amounts or
  percents of the plan's minimum commitment;
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
from billing.core.alerts.errors import UnknownCustomer
from billing.core.alerts.events import anomaly_alert, credit_alerts, payment_alerts, spend_alerts, threshold_alerts
from billing.core.alerts.rules import (
    CreditBalanceRule,
    PaymentDueRule,
    RuleSet,
    SpendThresholdRule,
    UsageAnomalyRule,
    UsageThresholdRule,
)
from billing.core.contracts import AlertEvent, InvoiceStatus, ThresholdUnit
from billing.core.errors import ConfigError
from billing.core.invoicing.grants import credit_balance
from billing.core.invoicing.timeline import plan_spans
from billing.core.invoicing.usage import HourStats, quantity
from billing.core.meters import MeterSet
from billing.core.pricing import PlanCatalog
from billing.core.pricing.engine import TRUE_UP
from billing.core.pricing.plans import Plan
from billing.core.pricing.proration import Period, month_period
from billing.invoicing.run import Invoicing
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
        self._check_customers()
        by_meter: dict[str, list[UsageThresholdRule | UsageAnomalyRule]] = defaultdict(list)
        for rule in self.rules.of_meters():
            by_meter[rule.meter].append(rule)
        included = self._included(window) if any(
            isinstance(rule, UsageThresholdRule) and rule.unit is ThresholdUnit.PERCENT for rule in self.rules) else {}
        alerts: dict[str, AlertEvent] = {}
        reminders, credits = self.rules.of_kind(PaymentDueRule), self.rules.of_kind(CreditBalanceRule)
        if reminders:
            progress("reading open invoices", 0, len(by_meter))
            for invoice in self.store.invoices(status=InvoiceStatus.FINALIZED):
                for rule in reminders:
                    alerts.update((alert.id, alert) for alert in payment_alerts(rule, invoice, window.end))
        if credits:
            progress("reading credit balances", 0, len(by_meter))
            alerts.update((alert.id, alert) for alert in self._credits(credits, window))
        if spends := self.rules.of_kind(SpendThresholdRule):
            progress("pricing the period so far", 0, len(by_meter))
            alerts.update((alert.id, alert) for alert in self._spend(spends, window))
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

    def _check_customers(self) -> None:
        """Every customer a rule names exists, or :class:`UnknownCustomer` before anything is published."""
        named = sorted(self.rules.customers())
        unknown = [c for c in named if c not in self.store.customers(named)] if named else []
        if unknown:
            raise UnknownCustomer(f"the rules name customer(s) the warehouse does not know: {', '.join(unknown)}; "
                                  "fix the customers lists (nothing was published or stored)")

    def _spend(self, rules: list[SpendThresholdRule], window: Period) -> Iterator[AlertEvent]:
        month = month_period(window.end - HOUR)
        plans = self._plans(Period(month.start, window.end))
        invoicing = Invoicing(self.settings, catalog=self.catalog, meters=self.meters)
        for (customer_id, start), plan in sorted(plans.items(), key=lambda item: item[0]):
            if start != month.start or not any(rule.watches(customer_id) for rule in rules):
                continue
            preview = invoicing.preview(customer_id, now=window.end, period=month)
            spend = sum((line.amount for line in preview.priced.lines if line.charge_id != TRUE_UP), Decimal(0))
            for rule in rules:
                yield from spend_alerts(rule, customer_id, month, spend, preview.invoice.currency,
                                        minimum=plan.minimum_commitment, time=window.end)

    def _credits(self, rules: list[CreditBalanceRule], window: Period) -> Iterator[AlertEvent]:
        held = {customer: holding for customer, holding in self.store.held().items() if holding.credits}
        applied = self.store.applied(sorted(held))
        month = month_period(window.end - HOUR)
        for customer_id, holding in sorted(held.items()):
            for currency in sorted({credit.currency for credit in holding.credits}):
                balance = credit_balance(holding, applied.get(customer_id, []), currency)
                for rule in rules:
                    yield from credit_alerts(rule, customer_id, currency, balance, month, time=window.end)

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
        return {(customer_id, start, meter): plan.included_units(meter)
                for (customer_id, start), plan in self._plans(window).items() for meter in plan.meters}

    def _plans(self, window: Period) -> dict[tuple[str, datetime], Plan]:
        """``(customer, month start) -> the plan`` the customer is on at the end of each month of ``window``
        it is billable in (found as the invoice run finds it: subscription spans, then the catalog plan in
        the customer's currency)."""
        changes = self.store.subscription_changes(before=window.end)
        customers = self.store.customers(list(changes))
        found = {}
        for month in months(window):
            for customer_id, customer_changes in changes.items():
                spans = plan_spans(customer_changes, month)
                if not spans or customer_id not in customers:
                    continue
                try:
                    found[(customer_id, month.start)] = self.catalog.plan_for(spans[-1].plan_id, customers[customer_id].currency,
                                                                              spans[-1].interval)
                except ConfigError as exc:
                    raise ConfigError(f"customer {customer_id}: {exc}; nothing was published or stored") from None
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
