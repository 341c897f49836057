"""The content of a customer usage report, computed from hourly rollups with the invoice run's rules.

A meter's total, each day's value and each dimension group's value are the meter's billed quantity
(:func:`~billing.core.invoicing.usage.quantity` of :func:`~billing.core.invoicing.usage.span_stats`)
over that stretch of time: a sum for SUM/COUNT meters, the peak hour for MAX/UNIQUE_COUNT, the last
hour for LATEST. So the report's totals are the numbers an invoice of the same period bills.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from billing.core.contracts import Invoice
from billing.core.invoicing.timeline import PlanSpan
from billing.core.invoicing.usage import quantity, span_stats
from billing.core.meters import MeterSet
from billing.core.pricing.proration import Period

TOP_GROUPS = 5
NO_DIMENSIONS = "(all)"
"""How a meter without grouped dimensions names its one group."""

HourRow = tuple[str, datetime, str, Decimal]
"""``(meter, window_start, group_key, value)`` of one hour window of a customer."""


@dataclass(frozen=True)
class MeterUsage:
    """One meter of the report."""

    meter: str
    unit: str
    aggregation: str
    total: Decimal
    daily: tuple[tuple[date, Decimal], ...]
    top: tuple[tuple[str, Decimal], ...]
    """The largest dimension groups, largest first."""


@dataclass(frozen=True)
class ReportAlert:
    """An alert of the customer fired in the period."""

    detected_at: datetime
    type: str
    rule: str
    meter: str
    value: Decimal


@dataclass(frozen=True)
class UsageReport:
    """Everything a customer usage report shows."""

    customer_id: str
    company_name: str
    period: Period
    generated_at: datetime
    meters: tuple[MeterUsage, ...]
    cost: Invoice | None
    """The period priced so far under the customer's plan (the invoice engine's preview), if billable."""
    cost_note: str
    """Up to when the cost is accrued, or why there is none."""
    invoices: tuple[Invoice, ...]
    alerts: tuple[ReportAlert, ...]


def _whole(period: Period) -> list[PlanSpan]:
    return [PlanSpan("", "", period.start, period.end)]


def _quantity(rows: list[tuple[str, datetime, Decimal]], meter: str, spans: list[PlanSpan], aggregation) -> list[Decimal]:
    return [quantity(aggregation, stats[meter]) if meter in stats else Decimal(0) for stats in span_stats(rows, spans)]


def days(period: Period) -> list[Period]:
    """The UTC days of ``period``."""
    found, start = [], period.start
    while start < period.end:
        found.append(Period(start, min(start + timedelta(days=1), period.end)))
        start += timedelta(days=1)
    return found


def meter_usage(meters: MeterSet, hours: Iterable[HourRow], period: Period, top: int = TOP_GROUPS) -> tuple[MeterUsage, ...]:
    """Per configured meter with usage in ``period``: total, daily series and top dimension groups."""
    by_meter: dict[str, list[HourRow]] = defaultdict(list)
    for row in hours:
        if row[0] in meters and period.start <= row[1] < period.end:
            by_meter[row[0]].append(row)
    day_spans = [PlanSpan("", "", d.start, d.end) for d in days(period)]
    found = []
    for name in sorted(by_meter):
        meter, rows = meters[name], by_meter[name]
        plain = [(m, start, value) for m, start, _group, value in rows]
        groups: dict[str, list] = defaultdict(list)
        for m, start, group, value in rows:
            groups[group or NO_DIMENSIONS].append((m, start, value))
        ranked = sorted(((group, _quantity(g, name, _whole(period), meter.aggregation)[0]) for group, g in groups.items()),
                        key=lambda item: (-item[1], item[0]))
        daily = _quantity(plain, name, day_spans, meter.aggregation)
        found.append(MeterUsage(name, meter.unit, meter.aggregation.value, _quantity(plain, name, _whole(period), meter.aggregation)[0],
                                tuple((span.start.date(), value) for span, value in zip(day_spans, daily, strict=True)),
                                tuple(ranked[:top])))
    return tuple(found)
