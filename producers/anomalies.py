"""Usage anomalies the simulator injects, with their ground truth for the anomaly detector.

An injected anomaly scales every quantity of one customer x meter (a cell) in one UTC hour: a
spike by 4-10x, a drop to a tenth or to zero (the events still arrive, with quantity 0: usage that
stopped being billable). The events stay real usage, so the manifest's hourly totals include them.
Only meters summed from ``data.quantity`` are touched, only customers who stay subscribed, only
cells with at least :data:`MIN_EVENTS` events in an average hour (with fewer, the hourly sums of the
heavy-tailed quantities jump several-fold on their own: no baseline to be anomalous against), and
only hours at least :data:`WARMUP` after the start, so the detector has the history it needs. Cells
are drawn by traffic weight (a busy customer's meter more often than a quieter one), hours
uniformly; everything comes from a ``random.Random`` of its own, so the other records of a seed are
the same with or without anomalies.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from billing.core.errors import ConfigError
from billing.core.meters import Aggregation

WARMUP = timedelta(weeks=3)
"""Injected hours come this long after the start: the detector's default minimum history (3 past weeks)."""
SPIKE_FACTORS = (4, 6, 8, 10)
DROP_FACTORS = (0.1, 0.0)
MIN_EVENTS = 100
"""Events of a customer x meter in an average hour for it to be eligible."""
_HOUR_US = 3_600_000_000


class AnomalyKind(StrEnum):
    """What an injected anomaly does to the hour's usage."""

    SPIKE = "spike"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class InjectedAnomaly:
    """One injected anomaly: the cell's quantities in the hour starting at ``hour_us`` are times ``factor``."""

    customer_index: int
    meter_index: int
    hour_us: int
    kind: AnomalyKind
    factor: float


def plan_anomalies(count: int, seed: int, start_us: int, end_us: int, cells: list[tuple[int, int, float]]) -> list[InjectedAnomaly]:
    """``count`` anomalies at distinct cell-hours, half spikes and half drops (alternating), in time order.

    ``cells`` are the eligible ``(customer index, meter index, traffic weight)``.
    """
    first = start_us + WARMUP // timedelta(microseconds=1)
    first += -first % _HOUR_US
    hours = (end_us - first) // _HOUR_US
    if count > 0 and (hours <= 0 or not cells):
        raise ConfigError(f"--anomalies needs more than {WARMUP.days} days of history (--days) and a customer x meter "
                          f"summed from data.quantity with {MIN_EVENTS} events in an average hour (more --events)")
    if count > hours * len(cells):
        raise ConfigError(f"--anomalies {count} is more than the {hours * len(cells)} customer x meter x hours that can hold one")
    rng = random.Random(f"anomalies:{seed}")
    weights = [weight for *_, weight in cells]
    taken: dict[tuple[int, int, int], InjectedAnomaly] = {}
    while len(taken) < count:
        customer, meter, _ = rng.choices(cells, weights=weights)[0]
        hour = first + rng.randrange(hours) * _HOUR_US
        if (customer, meter, hour) in taken:
            continue
        kind = AnomalyKind.SPIKE if len(taken) % 2 == 0 else AnomalyKind.DROP
        factor = rng.choice(SPIKE_FACTORS if kind is AnomalyKind.SPIKE else DROP_FACTORS)
        taken[(customer, meter, hour)] = InjectedAnomaly(customer, meter, hour, kind, float(factor))
    return sorted(taken.values(), key=lambda a: (a.hour_us, a.customer_index, a.meter_index))


def eligible(aggregations: list[Aggregation], quantity_meters: list[bool], weights: list[float],
             meter_slots: list[bytes], subscribed: list[bool], events_per_hour: float) -> list[tuple[int, int, float]]:
    """The cells anomalies may hit: meters summed from the quantity, customers who stay subscribed,
    :data:`MIN_EVENTS` events in an average hour; each weighted by its expected events per hour.

    ``weights`` are the customers' traffic weights, ``meter_slots`` their tables of meter indexes (a
    meter's share of a customer's events is its share of the table's slots).
    """
    total = sum(weights)
    cells = []
    for ci, (weight, slots, stays) in enumerate(zip(weights, meter_slots, subscribed, strict=True)):
        for mi, (aggregation, from_quantity) in enumerate(zip(aggregations, quantity_meters, strict=True)):
            expected = events_per_hour * weight / total * slots.count(mi) / len(slots)
            if stays and aggregation is Aggregation.SUM and from_quantity and expected >= MIN_EVENTS:
                cells.append((ci, mi, expected))
    return cells
