"""Which thresholds a step of the period's cumulative usage crosses.

A threshold fires on the step that takes the usage from below it to at least it. Over any sequence
of non-decreasing cumulative values each threshold up to the last value fires on exactly one step
and none above it fires; a replayed step fires the same thresholds again, which the alert id
(:func:`~billing.core.alerts.events.alert_id`) turns into duplicates consumers drop.
"""

from __future__ import annotations

from decimal import Decimal

from billing.core.alerts.rules import UsageThresholdRule
from billing.core.contracts import ThresholdUnit

HUNDRED = Decimal(100)


def limits(rule: UsageThresholdRule, included: Decimal = Decimal(0)) -> list[tuple[Decimal, Decimal]]:
    """``(threshold, limit in units of the meter)`` of each threshold, ascending.

    ``included`` is the units of the meter the customer's plan includes: percent thresholds are a
    share of it, so with nothing included a percent rule has no limits (it does not apply).
    """
    if rule.unit is ThresholdUnit.UNITS:
        return [(threshold, threshold) for threshold in rule.thresholds]
    if included <= 0:
        return []
    return [(threshold, threshold * included / HUNDRED) for threshold in rule.thresholds]


def crossed(bounds: list[tuple[Decimal, Decimal]], previous: Decimal, current: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The ``(threshold, limit)`` pairs with ``previous < limit <= current``."""
    return [(threshold, limit) for threshold, limit in bounds if previous < limit <= current]
