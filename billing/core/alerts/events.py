"""Fired alerts as :class:`~billing.core.contracts.AlertEvent` messages, with deterministic ids.

An alert's id is a digest of what makes it unique: the rule, the customer, the period and the
threshold (for an anomaly, the hour is the period). Evaluating the same usage again, after a replay
or a restart, yields the same ids, so a consumer that keeps the first message per id sees every
alert exactly once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal

from billing.core.alerts.anomaly import HOUR, Anomaly
from billing.core.alerts.rules import UsageAnomalyRule, UsageThresholdRule
from billing.core.alerts.thresholds import crossed, limits
from billing.core.contracts import AlertData, AlertEvent, AlertType
from billing.core.pricing.proration import Period

SOURCE = "billing/alerts"
"""CloudEvents ``source`` of every alert."""
_PLACES = Decimal("1e-9")
_SCORE_PLACES = Decimal("0.01")


def alert_id(rule_id: str, customer_id: str, period_start: datetime, threshold: Decimal | None = None) -> str:
    """``alert-`` and 32 hex digits derived from the rule, customer, period and threshold (80 == 80.0)."""
    key = [rule_id, customer_id, period_start.isoformat(), None if threshold is None else _canonical(threshold)]
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


def _canonical(number: Decimal) -> str:
    return format(number.normalize(), "f")
