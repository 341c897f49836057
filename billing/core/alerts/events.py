"""Fired alerts as :class:`~billing.core.contracts.AlertEvent` messages, with deterministic ids.

An alert's id is a digest of what makes it unique: the rule, the customer, the period and the
threshold (for an anomaly, the hour is the period; for a payment reminder, also the invoice and
whether it is before or after the due date). Evaluating the same usage again, after a replay
or a restart, yields the same ids, so a consumer that keeps the first message per id sees every
alert exactly once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal

from billing.core.alerts.anomaly import HOUR, Anomaly
from billing.core.alerts.rules import CreditBalanceRule, PaymentDueRule, SpendThresholdRule, UsageAnomalyRule, UsageThresholdRule
from billing.core.alerts.thresholds import crossed, limits
from billing.core.contracts import AlertData, AlertEvent, AlertType, DueUnit, Invoice, InvoiceStatus, SpendUnit
from billing.core.pricing.proration import Period

SOURCE = "billing/alerts"
"""CloudEvents ``source`` of every alert."""
_PLACES = Decimal("1e-9")
_SCORE_PLACES = Decimal("0.01")


def alert_id(rule_id: str, customer_id: str, period_start: datetime, threshold: Decimal | None = None,
             ref: str | None = None) -> str:
    """``alert-`` and 32 hex digits derived from the rule, customer, period and threshold (80 == 80.0), and
    ``ref`` (what else tells the alert apart) when given."""
    key = [rule_id, customer_id, period_start.isoformat(), None if threshold is None else _canonical(threshold)]
    if ref is not None:
        key.append(ref)
    return "alert-" + hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]


def threshold_alerts(rule: UsageThresholdRule, customer_id: str, period: Period, previous: Decimal, current: Decimal,
                     *, included: Decimal = Decimal(0), time: datetime) -> list[AlertEvent]:
    """The alerts of the thresholds that usage crosses going from ``previous`` to ``current`` in ``period``.

    ``included`` is the units of the meter the customer's plan includes (for percent thresholds);
    ``time`` is when the crossing was seen.
    """
    if not rule.watches(customer_id):
        return []
    return [
        AlertEvent(
            id=alert_id(rule.id, customer_id, period.start, threshold), source=SOURCE, type=AlertType.USAGE_THRESHOLD,
            subject=customer_id, time=time,
            data=AlertData(rule=rule.id, meter=rule.meter, period_start=period.start, period_end=period.end,
                           value=current, threshold=threshold, unit=rule.unit, limit=limit.quantize(_PLACES)),
        )
        for threshold, limit in crossed(limits(rule, included), previous, current)
    ]


def anomaly_alert(rule: UsageAnomalyRule, customer_id: str, anomaly: Anomaly, *, time: datetime) -> AlertEvent:
    """The alert of one anomalous hour."""
    score = None if anomaly.score is None else anomaly.score.quantize(_SCORE_PLACES)
    return AlertEvent(
        id=alert_id(rule.id, customer_id, anomaly.hour), source=SOURCE, type=AlertType.USAGE_ANOMALY,
        subject=customer_id, time=time,
        data=AlertData(rule=rule.id, meter=rule.meter, period_start=anomaly.hour, period_end=anomaly.hour + HOUR,
                       value=anomaly.value, baseline=anomaly.baseline.quantize(_PLACES), mad=anomaly.mad.quantize(_PLACES),
                       score=score, direction=anomaly.direction),
    )


def payment_alerts(rule: PaymentDueRule, invoice: Invoice, now: datetime) -> list[AlertEvent]:
    """The reminders ``rule`` has fired by ``now`` about ``invoice``, if it is open (finalized, unpaid) then.

    A reminder N days before the due date fires from that moment until the invoice is due; one N days
    overdue from that moment on. Each is stamped with the moment it became due, so a later scan
    yields the same alert.
    """
    if invoice.status is not InvoiceStatus.FINALIZED or invoice.due_at is None or not rule.watches(invoice.customer_id):
        return []
    due = invoice.due_at
    moments = [(due - timedelta(days=days), AlertType.PAYMENT_DUE, DueUnit.DAYS_BEFORE_DUE, days)
               for days in rule.days_before if due - timedelta(days=days) <= now < due]
    moments += [(due + timedelta(days=days), AlertType.PAYMENT_OVERDUE, DueUnit.DAYS_OVERDUE, days)
                for days in rule.days_overdue if due + timedelta(days=days) <= now]
    return [
        AlertEvent(
            id=alert_id(rule.id, invoice.customer_id, invoice.period_start, Decimal(days), f"{invoice.id}/{unit.value}"),
            source=SOURCE, type=kind, subject=invoice.customer_id, time=moment,
            data=AlertData(rule=rule.id, period_start=invoice.period_start, period_end=invoice.period_end,
                           value=invoice.total, threshold=Decimal(days), unit=unit, invoice_id=invoice.id,
                           currency=invoice.currency, due_at=due),
        )
        for moment, kind, unit, days in sorted(moments)
    ]


def credit_alerts(rule: CreditBalanceRule, customer_id: str, currency: str, balance: Decimal, month: Period, *,
                  time: datetime) -> list[AlertEvent]:
    """The alerts of the amounts ``balance`` (of ``customer_id``'s credits in ``currency``) is below in ``month``."""
    if not rule.watches(customer_id):
        return []
    return [
        AlertEvent(
            id=alert_id(rule.id, customer_id, month.start, amount, currency), source=SOURCE, type=AlertType.CREDIT_LOW,
            subject=customer_id, time=time,
            data=AlertData(rule=rule.id, period_start=month.start, period_end=month.end, value=balance, threshold=amount,
                           currency=currency),
        )
        for amount in rule.below if balance < amount
    ]


def spend_alerts(rule: SpendThresholdRule, customer_id: str, period: Period, spend: Decimal, currency: str, *,
                 minimum: Decimal | None, time: datetime) -> list[AlertEvent]:
    """The alerts of the thresholds ``spend`` (so far in ``period``, in ``currency``) has reached.

    ``minimum`` is the monthly minimum commitment of the customer's plan (percent thresholds are of
    it; without one they do not apply).
    """
    if not rule.watches(customer_id):
        return []
    if rule.unit is SpendUnit.AMOUNT:
        bounds = [(threshold, threshold) for threshold in rule.thresholds]
    else:
        bounds = [(threshold, threshold * minimum / 100) for threshold in rule.thresholds] if minimum else []
    return [
        AlertEvent(
            id=alert_id(rule.id, customer_id, period.start, threshold), source=SOURCE, type=AlertType.SPEND_THRESHOLD,
            subject=customer_id, time=time,
            data=AlertData(rule=rule.id, period_start=period.start, period_end=period.end, value=spend, threshold=threshold,
                           unit=rule.unit, limit=limit.quantize(_PLACES), currency=currency),
        )
        for threshold, limit in bounds if spend >= limit
    ]


def _canonical(number: Decimal) -> str:
    return format(number.normalize(), "f")
