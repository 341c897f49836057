"""Usage anomalies: an hour compared with the same hour of the week in the past weeks.

Pure functions over ``(hour, value)`` sequences of one customer and one meter (the hourly rollups).
An hour without a value is zero usage from the customer's first hour on; before it there is no
history. The baseline is the median of the same hour 1..N weeks back, its spread the median
absolute deviation (MAD), both robust to the odd past anomaly; the spread is never taken below the
series' own noise (:func:`noise`). On the rule's log scale the score is taken on
``ln(value + min_delta)``. The thresholds, the scale and the cold-start rule are the fields of
:class:`~billing.core.alerts.rules.UsageAnomalyRule`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from billing.core.alerts.rules import Scale, UsageAnomalyRule
from billing.core.contracts import AnomalyDirection

HOUR = timedelta(hours=1)
WEEK = timedelta(weeks=1)
MAD_TO_SIGMA = Decimal("1.4826")
"""Scales the MAD to the standard deviation of normally distributed values."""
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomalous hour; ``score`` is None when the baseline never varied (MAD 0)."""

    hour: datetime
    value: Decimal
    baseline: Decimal
    mad: Decimal
    score: Decimal | None
    direction: AnomalyDirection
    history: int


def hourly(points: Iterable[tuple[datetime, Decimal]]) -> dict[datetime, Decimal]:
    """Values summed per UTC hour (the start of the hour each point falls in)."""
    series: dict[datetime, Decimal] = {}
    for moment, value in points:
        if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
            raise ValueError(f"hours must be timezone-aware UTC datetimes, got {moment!r}")
        hour = _floor(moment)
        series[hour] = series.get(hour, ZERO) + Decimal(value)
    return series


def median(values: Sequence[Decimal]) -> Decimal:
    """The median (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def judge(hour: datetime, value: Decimal, history: Sequence[Decimal], rule: UsageAnomalyRule,
          series_noise: Decimal = ZERO) -> Anomaly | None:
    """The anomaly ``value`` at ``hour`` is against its ``history`` (the same hour in past weeks), if any.

    ``series_noise`` is the series' typical distance of an hour to its baseline (:func:`noise`, on the rule's
    scale): the spread is never taken below it, as the MAD of three or four values often is far below the real noise.
    """
    if len(history) < rule.min_history:
        return None
    center = median(history)
    mad = median([abs(past - center) for past in history])
    deviation = value - center
    if deviation == 0 or not rule.reports(spike=deviation > 0):
        return None
    if rule.scale is Scale.LOG:
        logs = [_log(past, rule) for past in history]
        log_center = median(logs)
        spread = MAD_TO_SIGMA * max(median([abs(past - log_center) for past in logs]), series_noise)
        score = (_log(value, rule) - log_center) / spread if spread else None
    else:
        spread = MAD_TO_SIGMA * max(mad, series_noise * center)
        score = deviation / spread if spread else None
    material = abs(deviation) >= max(rule.min_delta, center * rule.min_change_percent / 100)
    far = score is None or abs(score) >= rule.score
    first_zero = value == 0 and min(history) >= rule.min_delta
    if not (material and far) and not first_zero:
        return None
    direction = AnomalyDirection.SPIKE if deviation > 0 else AnomalyDirection.DROP
    return Anomaly(hour, value, center, mad, score, direction, len(history))


def detect(points: Iterable[tuple[datetime, Decimal]], rule: UsageAnomalyRule, *,
           start: datetime | None = None, end: datetime | None = None) -> list[Anomaly]:
    """The anomalous hours in ``[start, end)`` (default: the series' first to last hour), in order.

    ``end`` past the last point evaluates the hours after it as zero usage: pass the end of the last
    complete hour so that a customer who stopped sending usage is seen. The series' noise is pooled
    over every hour with enough history up to ``end``, not only the evaluated ones.
    """
    series = hourly(points)
    if not series:
        return []
    first = min(series)
    stop = _floor(end) if end is not None else max(series) + HOUR
    histories = {hour: _history(series, hour, first, rule.weeks) for hour in _hours(first, stop)}
    level = noise(((series.get(hour, ZERO), history) for hour, history in histories.items()
                   if len(history) >= rule.min_history), rule)
    if rule.max_noise is not None and level > rule.max_noise:
        return []
    begin = max(first, _floor(start)) if start is not None else first
    found = (judge(hour, series.get(hour, ZERO), histories[hour], rule, level) for hour in _hours(begin, stop))
    return [anomaly for anomaly in found if anomaly is not None]


def noise(observations: Iterable[tuple[Decimal, Sequence[Decimal]]], rule: UsageAnomalyRule | None = None) -> Decimal:
    """The median relative distance of an hour's value to its baseline, over ``(value, history)`` pairs.

    Pooled over every hour of a customer x meter, it is how far a normal hour strays from its
    baseline (the few odd hours do not move a median): the scale the score of one hour is judged on,
    far steadier than the MAD of that hour's three or four past values. On the log scale of ``rule``
    it is the median distance of the logs instead (a relative distance too). 0 without data.
    """
    distances = []
    for value, history in observations:
        if rule is not None and rule.scale is Scale.LOG:
            distances.append(abs(_log(value, rule) - median([_log(past, rule) for past in history])))
            continue
        center = median(history)
        if center > 0:
            distances.append(abs(value - center) / center)
    return median(distances) if distances else ZERO


def _log(value: Decimal, rule: UsageAnomalyRule) -> Decimal:
    """``ln(value + min_delta)``; usage is never negative, a value below 0 counts as 0."""
    return _ln(max(value, ZERO) + rule.min_delta)


@lru_cache(maxsize=1 << 16)
def _ln(number: Decimal) -> Decimal:
    """Natural logarithm, cached: each hour's value is in the history of the next weeks' hours."""
    return number.ln()


def _history(series: dict[datetime, Decimal], hour: datetime, first: datetime, weeks: int) -> list[Decimal]:
    return [series.get(past, ZERO) for back in range(1, weeks + 1) if (past := hour - back * WEEK) >= first]


def _hours(start: datetime, stop: datetime) -> Iterable[datetime]:
    hour = start
    while hour < stop:
        yield hour
        hour += HOUR


def _floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
