"""Billing periods and proration.

Proration is **by the second**: a subscription active for part of a period pays
``active seconds / period seconds`` of each prorated flat fee and of the minimum commitment.
Seconds (not days) make a mid-day plan change or cancellation fair to both sides and need no
time-zone convention; the invoice shows the fraction with six decimals. Usage charges are never
prorated: the customer pays for the usage that was metered while on the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open time range ``[start, end)`` in aware UTC datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for moment in (self.start, self.end):
            if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
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


def anniversary(anchor: datetime) -> datetime:
    """The start of the yearly cycles of a subscription that started at ``anchor``: that day at 00:00
    UTC, the 29th-31st moved back to the 28th so every year has the day."""
    anchor = anchor.astimezone(UTC)
    return anchor.replace(day=min(anchor.day, 28), hour=0, minute=0, second=0, microsecond=0)


def cycle(interval: str, anchor: datetime, moment: datetime) -> Period:
    """The billing cycle of ``interval`` containing ``moment`` for a subscription started at ``anchor``:
    calendar months for ``month``, anniversary years (:func:`anniversary`) for ``year``."""
    if interval == "month":
        return month_period(moment)
    start = anniversary(anchor)
    start = start.replace(year=start.year + (moment.year - start.year))
    if start > moment:
        start = start.replace(year=start.year - 1)
    return Period(start, start.replace(year=start.year + 1))
