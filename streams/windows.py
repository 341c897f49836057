"""Tumbling usage windows: assignment, the state of one window, lateness and closing rules.

A window is one customer x meter x group-by dimensions x tumbling interval (minute, hour). Its
state is the meter's :class:`~billing.core.meters.Accumulator` plus replay fencing: ``applied_offset`` is
the source offset of the last event folded in. A customer's events all live on one partition (Kafka
key = customer id), so a window sees its events in offset order and "offset <= applied_offset"
means "already counted" after any crash or replay.

The rollup version written to the warehouse is derived from that offset (plus the closed flag), so
re-emitting the same state after a replay yields the same row and version, and every real change
yields a higher one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import orjson

from billing.core.meters import Accumulator, Aggregation, Meter

VERSION_STRIDE = 4
"""Versions are ``applied_offset * VERSION_STRIDE + closed``; reconciliation fixes use ``+2``."""


def window_bounds(event_us: int, seconds: int) -> tuple[int, int]:
    """(start, end) in epoch seconds of the epoch-aligned tumbling window containing ``event_us``."""
    epoch = event_us // 1_000_000
    start = epoch - epoch % seconds
    return start, start + seconds


def window_key(customer: str, meter: str, seconds: int, start: int, group_key: str) -> bytes:
    """Table key of one window (also its identity in ``usage_rollups``)."""
    return orjson.dumps([customer, meter, seconds, start, group_key])


def is_closed(window_end: int, watermark_us: int, grace_s: float) -> bool:
    """True when the window is past its grace period: ``end + grace <= watermark``."""
    return (window_end + grace_s) * 1_000_000 <= watermark_us


@dataclass
class WindowState:
    """The aggregation state of one window, with replay fencing and the closed flag."""

    customer: str
    meter: str
    seconds: int
    start: int
    group_key: str
    dimensions: dict[str, str]
    partition: int
    acc: Accumulator
    applied_offset: int = -1
    latest: tuple[int, str] | None = None  # (event time us, id) of the LATEST value
    closed: bool = False

    @classmethod
    def new(cls, meter: Meter, customer: str, seconds: int, start: int, group_key: str,
            dimensions: dict[str, str], partition: int) -> WindowState:
        """An empty window."""
        return cls(customer, meter.name, seconds, start, group_key, dimensions, partition,
                   Accumulator(meter.aggregation))

    @property
    def end(self) -> int:
        return self.start + self.seconds

    @property
    def version(self) -> int:
        """Monotonic per window: a later applied offset or closing gives a higher version."""
        return (self.applied_offset + 1) * VERSION_STRIDE + (1 if self.closed else 0)

    def apply(self, value, offset: int, event_us: int, event_id: str) -> bool:
        """Fold in one event read at ``offset``; False when it was already applied (replay)."""
        if offset <= self.applied_offset:
            return False
        acc = self.acc
        if acc.aggregation is Aggregation.LATEST and self.latest is not None and (event_us, event_id) < self.latest:
            earlier = Accumulator(acc.aggregation)
            earlier.add(value)
            earlier.merge(acc)
            self.acc = earlier
        else:
            acc.add(value)
            if acc.aggregation is Aggregation.LATEST:
                self.latest = (event_us, event_id)
        self.applied_offset = offset
        return True

    def value(self) -> Decimal:
        return self.acc.value()

    def encode(self) -> bytes:
        """Bytes stored in the windows table: a JSON array of the fields in declaration order (the
        accumulator as its state), about half the bytes and encoding time of the object it replaced."""
        return orjson.dumps([
            self.customer, self.meter, self.seconds, self.start, self.group_key, self.dimensions, self.partition,
            self.acc.aggregation.value, self.acc.to_state(), self.applied_offset, self.latest, self.closed,
        ])

    @classmethod
    def decode(cls, raw: bytes) -> WindowState:
        """Inverse of :meth:`encode`; also reads the JSON object of the earlier format (keys ``c m s t
        g d p a acc o l x``), still found in stores and changelogs written before."""
        d = orjson.loads(raw)
        if type(d) is dict:
            d = [d["c"], d["m"], d["s"], d["t"], d["g"], d["d"], d["p"], d["a"], d["acc"], d["o"], d["l"], d["x"]]
        customer, meter, seconds, start, group_key, dimensions, partition, aggregation, acc, offset, latest, closed = d
        return cls(customer, meter, seconds, start, group_key, dimensions, partition,
                   Accumulator.from_state(Aggregation(aggregation), acc), offset,
                   tuple(latest) if latest else None, closed)


def measured(meter: Meter, value) -> object:
    """The value an event contributes to its meter's accumulator (UNIQUE_COUNT needs strings)."""
    if meter.aggregation is Aggregation.UNIQUE_COUNT:
        return str(value.normalize()) if isinstance(value, Decimal) else str(value)
    return value
