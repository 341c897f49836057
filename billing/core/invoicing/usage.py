"""How hourly rollups become the billed quantity of a meter for one plan span.

The invoice run reads the hour windows of ``usage_rollups`` (``window_seconds = 3600``, read with
FINAL so the latest version of each window counts). An hour belongs to the span its window
*starts* in (a mid-hour plan change bills that hour on the earlier plan). Per meter aggregation:

- ``SUM`` and ``COUNT``: the sum of the hourly values (exact: sums of sums);
- ``UNIQUE_COUNT`` (``active_seats``) and ``MAX``: the peak hourly value (e.g. seats = the most
  distinct users active within one hour), since distinct counts of hours cannot be added;
- ``LATEST``: the value of the last hour with data in the span.

The warehouse computes the three statistics per span in SQL; :func:`span_stats` is the same
computation in Python (previews of one customer, tests), and :func:`quantity` picks by meter.

Charges priced per transaction read the single events of their meter instead (the stream's
deduplicated ``usage_events``), assigned to spans by the hour they happen in, as the rollups are:
:func:`span_transactions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.core.invoicing.timeline import PlanSpan
from billing.core.meters import Aggregation, MeterSet


@dataclass(frozen=True, slots=True)
class HourStats:
    """Sum, peak and last value (by window start) of a meter's hourly values within one span."""

    total: Decimal
    peak: Decimal
    latest: Decimal


def quantity(aggregation: Aggregation, stats: HourStats) -> Decimal:
    """The billed quantity of a meter with ``aggregation`` (see the module docstring)."""
    if aggregation in (Aggregation.SUM, Aggregation.COUNT):
        return stats.total
    if aggregation is Aggregation.LATEST:
        return stats.latest
    return stats.peak


def span_stats(hours: Iterable[tuple[str, datetime, Decimal]], spans: Sequence[PlanSpan]) -> list[dict[str, HourStats]]:
    """Per span, ``{meter: HourStats}`` of hourly ``(meter, window_start, value)`` rows."""
    acc: list[dict[str, list]] = [{} for _ in spans]
    for meter, start, value in hours:
        index = next((i for i, span in enumerate(spans) if span.start <= start < span.end), None)
        if index is None:
            continue
        slot = acc[index].get(meter)
        if slot is None:
            acc[index][meter] = [value, value, start, value]
        else:
            slot[0] += value
            slot[1] = max(slot[1], value)
            if start > slot[2]:
                slot[2], slot[3] = start, value
    return [{m: HourStats(s[0], s[1], s[3]) for m, s in per.items()} for per in acc]


def quantities(stats: dict[str, HourStats], meters: MeterSet) -> dict[str, Decimal]:
    """Billed quantity per meter of one span; meters not configured here are ignored."""
    return {m: quantity(meters[m].aggregation, s) for m, s in stats.items() if m in meters}


def span_transactions(events: Iterable[tuple[str, datetime, Decimal]],
                      spans: Sequence[PlanSpan]) -> list[dict[str, list[Decimal]]]:
    """Per span, ``{meter: [amount, ...]}`` of ``(meter, event_time, amount)`` events given in event
    order; an event belongs to the span its hour starts in (as its hour window does)."""
    found: list[dict[str, list[Decimal]]] = [{} for _ in spans]
    for meter, moment, amount in events:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        index = next((i for i, span in enumerate(spans) if span.start <= hour < span.end), None)
        if index is not None:
            found[index].setdefault(meter, []).append(amount)
    return found
