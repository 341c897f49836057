"""Billing periods and proration.

Proration is **by the second**: a subscription active for part of a period pays
``active seconds / period seconds`` of each prorated flat fee and of the minimum commitment.
Seconds (not days) make a mid-day plan change or cancellation fair to both sides and need no
time-zone convention; the invoice shows the fraction with six decimals. Usage charges are never
prorated: the customer pays for the usage that was metered while on the plan.
"""

from __future__ import annotations

from calendar import isleap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.core.errors import ConfigError

NO_OFFSET = timedelta(0)


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open time range ``[start, end)`` in aware UTC datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for moment in (self.start, self.end):
            if moment.tzinfo is not UTC and (moment.tzinfo is None or moment.utcoffset() != NO_OFFSET):
                raise ConfigError(f"period bounds must be timezone-aware UTC datetimes, got {moment!r}")
        if self.end <= self.start:
            raise ConfigError(f"period end {self.end.isoformat()} is not after its start {self.start.isoformat()}")

    @property
    def seconds(self) -> int:
        """Length of the period in whole seconds."""
        return int((self.end - self.start).total_seconds())

    def fraction(self, part: Period) -> Decimal:
        """Share of this period covered by ``part`` (clipped to the period), by the second."""
        start, end = max(self.start, part.start), min(self.end, part.end)
        if end <= start:
            return Decimal(0)
        return Decimal(int((end - start).total_seconds())) / Decimal(self.seconds)


def month_period(moment: datetime) -> Period:
    """The calendar month (UTC) containing ``moment``."""
    moment = moment.astimezone(UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return Period(start, end)


def year_period(moment: datetime) -> Period:
    """The calendar year (UTC) containing ``moment``."""
    moment = moment.astimezone(UTC)
    start = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return Period(start, start.replace(year=start.year + 1))


def plan_period(interval: str, moment: datetime) -> Period:
    """The billing period of ``interval`` (``month`` or ``year``) containing ``moment``."""
    return year_period(moment) if interval == "year" else month_period(moment)


BILLING_TIMES = ("calendar", "anniversary")
"""When a subscription's billing cycles start: on the calendar (months from the 1st, years from
1 January; the default) or on the anniversary of the subscription's start."""


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(anchor: datetime, months: int) -> datetime:
    """Midnight UTC of ``anchor``'s day, ``months`` months later; a day the month lacks becomes its last
    day (31 January + 1 month = 28 February, or the 29th in a leap year; + 2 months = 31 March)."""
    anchor = anchor.astimezone(UTC)
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    days = 29 if month == 1 and isleap(year) else _DAYS[month]
    return datetime(year, month + 1, min(anchor.day, days), tzinfo=UTC)


def cycle(interval: str, anchor: datetime, moment: datetime, billing_time: str = "calendar") -> Period:
    """The billing cycle of ``interval`` (``month`` or ``year``) containing ``moment`` for a subscription
    started at ``anchor``: the calendar month or year with ``calendar`` billing; with ``anniversary``,
    the month or year from ``anchor``'s day at 00:00 UTC (:func:`add_months` for short months)."""
    if billing_time == "calendar":
        return plan_period(interval, moment)
    step = 12 if interval == "year" else 1
    moment = moment.astimezone(UTC)
    count = ((moment.year - anchor.year) * 12 + moment.month - anchor.month) // step
    start = add_months(anchor, count * step)
    while start > moment:
        count -= 1
        start = add_months(anchor, count * step)
    end = add_months(anchor, (count + 1) * step)
    while end <= moment:
        count += 1
        start, end = end, add_months(anchor, (count + 1) * step)
    return Period(start, end)
