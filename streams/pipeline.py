"""The processing core of the worker, independent of Faust so it can be unit tested.

:class:`UsageProcessor` validates usage records, deduplicates them, folds them into minute and
hour windows, tracks per-partition watermarks and closes windows after their grace period.
:class:`RecordProcessor` validates the business topics and tracks payment lifecycles. Both turn a
batch of :class:`Record` into an :class:`Output`: warehouse rows (raw facts, dead letters, full
window values, payment states), dead letters to publish, windows to recompute and counters.

State lives in :class:`StateStore` objects (Faust tables in the worker, dicts in tests). Every
state change is a full value per key, fenced by the source offset (windows, dedup) or by the
event sequence (payments), so re-processing any suffix of a partition after a crash reproduces
the same state and the same rows.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import orjson

from billing.core.contracts import (
    ContractViolation,
    DeadLetter,
    PaymentTransaction,
    UsageEvent,
    parse_topic,
    parse_usage,
    usage_context,
)
from billing.core.meters import MeterSet
from billing.warehouse.facts import COLUMNS, Rows, dead_letter_rows, merge, rows_for, usage_row
from streams.dedup import DedupEntry, Seen, classify, entry_for
from streams.payments import PaymentState
from streams.windows import WindowState, is_closed, measured, window_bounds, window_key

DAY_S = 86_400
PURGE_SLICE = 20_000
"""Keys the purge reads per slice (a worker holds its lock for one slice: a few tens of ms)."""
log = logging.getLogger("billing.worker")

USAGE_DIMENSIONS = COLUMNS["usage_events"].index("dimensions")
USAGE_GROUP_KEY = COLUMNS["usage_events"].index("group_key")
ROLLUP_COLUMNS = COLUMNS["usage_rollups"]
"""Columns of ``usage_rollups``, in the order of :func:`rollup_row`."""


class StateStore(Protocol):
    """Key/value state partitioned like the source topics."""

    def read(self, partition: int, key: bytes) -> bytes | None: ...

    def put(self, partition: int, key: bytes, value: bytes) -> None: ...

    def delete(self, partition: int, key: bytes) -> None: ...

    def partition_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every item of ``partition`` (a store that does not know partitions yields all; the caller
        filters)."""
        ...

    def scan(self, partition: int, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` items of ``partition`` with keys >= ``start``, in key order."""
        ...


class DictStore(dict):
    """In-memory :class:`StateStore` (tests, benchmarks of the pure logic)."""

    def read(self, partition: int, key: bytes) -> bytes | None:
        return self.get(key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        self.pop(key, None)

    def partition_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every partition's items (this store does not know partitions; the caller filters)."""
        return iter(list(self.items()))

    def scan(self, partition: int, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Every partition's items (this store does not know partitions; the caller filters)."""
        return sorted((key, value) for key, value in self.items() if key >= start)[:limit]


class Record(NamedTuple):
    """One consumed message: logical topic, Kafka topic, position, key, value, timestamp (ms)."""

    topic: str
    kafka_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass
class Output:
    """What a batch produced."""

    rows: Rows = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    recompute: set[tuple[str, str, int, int, str]] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)
    windows: dict[bytes, WindowState] = field(default_factory=dict)
    rewind: dict[int, int] = field(default_factory=dict)  # partition -> offset to seek the consumer to
    hold: dict[int, int] = field(default_factory=dict)  # partition -> first offset not applied (not to ack)

    def dead(self, record: Record, reason: str) -> None:
        """Dead-letter ``record``. Its time is the record's own timestamp, so a replay rewrites the
        same ``dead_letters`` row."""
        letter = DeadLetter.wrap(record.value, reason, record.kafka_topic, key=record.key, partition=record.partition,
                                 offset=record.offset, time=datetime.fromtimestamp(record.timestamp_ms / 1000, UTC))
        self.dead_letters.append(letter)
        merge(self.rows, dead_letter_rows(letter))
        self.counts["dead_letters"] += 1

    def finish(self, now: datetime) -> None:
        """Add the rows of every window changed in this batch (once, before writing)."""
        if self.windows:
            self.rows.setdefault("usage_rollups", []).extend(rollup_row(s, now) for s in self.windows.values())


def rollup_row(state: WindowState, now: datetime) -> list:
    """The ``usage_rollups`` row: the full current value of the window with its version."""
    return [state.customer, state.meter, state.seconds, datetime.fromtimestamp(state.start, UTC), state.group_key,
            state.dimensions, state.acc.aggregation.value, state.value(), state.acc.events, state.version,
            int(state.closed), now]


@dataclass(frozen=True)
class WindowConfig:
    """Window lengths, grace period and retention of the usage processor."""

    sizes: tuple[int, ...] = (60, 3600)
    grace_s: float = 60.0
    window_retention_s: float = 3 * DAY_S
    dedup_retention_s: float = 32 * DAY_S


class UsageProcessor:
    """Validation, dedup, windowing and closing of usage events."""

    def __init__(self, meters: MeterSet, config: WindowConfig, dedup: StateStore, windows: StateStore,
                 watermarks: StateStore, clock=time.time):
        self.meters = meters
        self.config = config
        self.dedup = dedup
        self.windows = windows
        self.watermarks = watermarks
        self.clock = clock
        self._watermark: dict[int, int] = {}
        self._next_offset: dict[int, int | None] = {}  # after the last record read, per partition
        self._rewinding: dict[int, int] = {}  # partition -> skipped offset the consumer was rewound to
        self._open: dict[int, list[tuple[int, bytes]]] = {}
        self._live: dict[bytes, WindowState] = {}  # open windows, kept decoded

    # ------------------------------------------------------------------ partitions and watermarks

    def watermark(self, partition: int) -> int:
        """Largest event time (epoch us) seen on ``partition``."""
        mark = self._watermark.get(partition)
        if mark is None:
            raw = self.watermarks.read(partition, b"%d" % partition)
            mark, self._next_offset[partition] = orjson.loads(raw) if raw else (0, None)
            self._index_open_windows(partition)
            self._watermark[partition] = mark
        return mark

    def _index_open_windows(self, partition: int) -> None:
        """Load the open windows of ``partition`` from its own part of the store (a scan of the whole
        store per partition cost a third of a worker's time while partitions came in one by one)."""
        heap = self._open[partition] = []
        for key, raw in self.windows.partition_items(partition):
            state = WindowState.decode(raw)
            if not state.closed and state.partition == partition:
                heap.append((state.end, key))
                self._live[key] = state
        heapq.heapify(heap)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop in-memory state of partitions this worker no longer owns (after a rebalance)."""
        gone = set(partitions)
        for partition in gone:
            self._watermark.pop(partition, None)
            self._next_offset.pop(partition, None)
            self._rewinding.pop(partition, None)
            self._open.pop(partition, None)
        self._live = {key: state for key, state in self._live.items() if state.partition not in gone}

    @property
    def rewinding(self) -> dict[int, int]:
        """Partition -> skipped offset the consumer was rewound to and has not re-read yet."""
        return dict(self._rewinding)

    @property
    def partitions(self) -> list[int]:
        """Partitions whose state is loaded."""
        return list(self._watermark)

    # ------------------------------------------------------------------------------- processing

    def process(self, records: Iterable[Record], out: Output) -> None:
        """Apply a batch of usage records (in offset order per partition) to the state; the caller
        adds the window rows with :meth:`Output.finish`."""
        now_s = self.clock()
        now = datetime.fromtimestamp(now_s, UTC)
        context = usage_context({"meters": self.meters, "now": now})
        touched: set[int] = set()
        for record in records:
            self.watermark(record.partition)
            touched.add(record.partition)
            if not self._in_sequence(record, out):
                continue
            try:
                event = parse_usage(record.value, context=context)
                if record.key is not None and record.key != event.subject.encode():
                    raise ContractViolation("the Kafka key must be the customer id (subject)")
            except ContractViolation as exc:
                out.dead(record, exc.reason)
                continue
            out.counts["events_in"] += 1
            self._apply(event, record, now_s, out)
        for partition in touched:
            self._save_watermark(partition)
            self.close_due(partition, self.watermark(partition), out)
        self._save(out, touched)

    def close_idle(self, partitions: Iterable[int], out: Output) -> None:
        """Close windows of idle ``partitions`` by the wall clock (their event time stopped moving)."""
        now_s = self.clock()
        partitions = set(partitions)
        for partition in partitions:
            self.close_due(partition, max(self.watermark(partition), int(now_s * 1_000_000)), out)
        self._save(out, partitions)

    def _apply(self, event: UsageEvent, record: Record, now_s: float, out: Output) -> None:
        partition, offset = record.partition, record.offset
        key = event.id.encode()
        raw = self.dedup.read(partition, key)
        seen = classify(DedupEntry.decode(raw) if raw else None, partition, offset, now_s)
        if seen is Seen.DUPLICATE:
            out.counts["duplicates"] += 1
            return
        config = self.config
        if seen is Seen.NEW:
            raw = entry_for(partition, offset, now_s, config.dedup_retention_s).encode()
        else:
            out.counts["replayed"] += 1
        # written again on a replay too: the local store may hold an entry whose changelog message
        # was lost in a crash, and another worker taking over the partition recovers only the changelog
        self.dedup.put(partition, key, raw)
        meter = self.meters[event.type]
        row = usage_row(event, partition, offset, meter)
        out.rows.setdefault("usage_events", []).append(row)
        value = measured(meter, event.data.field(meter.value_field))
        grouped, gkey = row[USAGE_DIMENSIONS], row[USAGE_GROUP_KEY]
        event_us = int(event.time.timestamp() * 1_000_000)
        mark = self._watermark[partition]
        grace = config.grace_s
        late = correction = fenced = False
        windows, live = out.windows, self._live
        for seconds in config.sizes:
            start, end = window_bounds(event_us, seconds)
            wkey = window_key(event.subject, event.type, seconds, start, gkey)
            state = windows.get(wkey) or live.get(wkey)
            if state is None:
                stored = self.windows.read(partition, wkey)
                if stored is not None:
                    state = WindowState.decode(stored)
                elif (end + config.window_retention_s) * 1_000_000 < mark:
                    out.recompute.add((event.subject, event.type, seconds, start, gkey))
                    correction = True
                    continue
                else:
                    state = WindowState.new(meter, event.subject, seconds, start, gkey, grouped, partition)
                    heapq.heappush(self._open.setdefault(partition, []), (end, wkey))
                    live[wkey] = state
            if state.closed or is_closed(end, mark, grace):
                correction = True
                self._close(wkey, state)
            elif end * 1_000_000 <= mark:
                late = True
            if not state.apply(value, offset, event_us, event.id):
                fenced = True
            windows[wkey] = state
        if fenced:
            out.counts["fenced"] += 1
        if correction:
            out.counts["late_corrections"] += 1
        elif late:
            out.counts["late_in_grace"] += 1
        if event_us > mark:
            self._watermark[partition] = event_us

    def _save_watermark(self, partition: int) -> None:
        value = orjson.dumps([self._watermark[partition], self._next_offset[partition]])
        self.watermarks.put(partition, b"%d" % partition, value)

    def _in_sequence(self, record: Record, out: Output) -> bool:
        """False for a record that must not be applied yet because an earlier offset of its partition
        was skipped by the consumer. The project's producers are not transactional, so its topics
        have no offset gaps; a gap means the consumer lost records (seen with faust-streaming around
        rebalances). Offset fencing needs every partition in order, so the records after the gap are
        held back (not applied, not acknowledged) and the partition is rewound to the gap."""
        partition, offset = record.partition, record.offset
        waiting = self._rewinding.get(partition)
        if waiting is not None:
            if offset > waiting:
                out.hold[partition] = min(out.hold.get(partition, offset), offset)
                return False
            if offset == waiting:
                del self._rewinding[partition]
        expected = self._next_offset.get(partition)
        if expected is not None and offset > expected:
            out.counts["offset_gaps"] += 1
            log.error("partition %d: the consumer skipped offsets %d..%d; rewinding", partition, expected, offset - 1)
            self._rewinding[partition] = expected
            out.rewind[partition] = expected
            out.hold[partition] = offset
            return False
        if expected is None or offset >= expected:
            self._next_offset[partition] = offset + 1
        return True

    def close_due(self, partition: int, watermark_us: int, out: Output) -> int:
        """Close the open windows of ``partition`` past their grace at ``watermark_us``."""
        heap = self._open.get(partition)
        closed = 0
        grace = self.config.grace_s
        while heap and is_closed(heap[0][0], watermark_us, grace):
            _, wkey = heapq.heappop(heap)
            state = out.windows.get(wkey) or self._live.get(wkey)
            if state is None:
                stored = self.windows.read(partition, wkey)
                state = WindowState.decode(stored) if stored else None
            if state is None or state.closed:
                continue
            self._close(wkey, state)
            out.windows[wkey] = state
            closed += 1
        out.counts["windows_closed"] += closed
        return closed

    def _close(self, wkey: bytes, state: WindowState) -> None:
        state.closed = True
        self._live.pop(wkey, None)

    def _save(self, out: Output, partitions: set[int]) -> None:
        """Store the windows of ``partitions`` changed in this batch (an output may span several
        calls, one per partition; each stores only its own)."""
        for wkey, state in out.windows.items():
            if state.partition in partitions:
                self.windows.put(state.partition, wkey, state.encode())

    def open_windows(self, partition: int) -> int:
        """Number of index entries of open windows of ``partition`` (may include closed ones)."""
        return len(self._open.get(partition, ()))

    # ------------------------------------------------------------------------------- retention

    def purge(self, now_s: float | None = None, limit: int = PURGE_SLICE) -> Iterator[Counter]:
        """Delete expired idempotency keys and closed windows past their retention, for the loaded
        partitions, reading at most ``limit`` keys at a time; yields the counts of every slice.

        The caller may let batches run between slices (the worker holds its lock per slice only):
        each slice reads the store afresh from where the last one stopped, so it decides on current
        values, and a partition revoked in between is left alone."""
        now_s = self.clock() if now_s is None else now_s
        for store, kind in ((self.dedup, "dedup_keys_purged"), (self.windows, "windows_purged")):
            for partition in list(self._watermark):
                start: bytes | None = b""
                while start is not None and partition in self._watermark:
                    items = store.scan(partition, start, limit)
                    gone = [key for key, raw in items if self._expired(store, partition, raw, now_s)]
                    for key in gone:
                        store.delete(partition, key)
                    yield Counter({kind: len(gone)}) if gone else Counter()
                    start = items[-1][0] + b"\x00" if len(items) == limit else None

    def _expired(self, store: StateStore, partition: int, raw: bytes, now_s: float) -> bool:
        """Whether a dedup entry or window of ``partition`` may be deleted."""
        if store is self.dedup:
            entry = DedupEntry.decode(raw)
            return entry.partition == partition and entry.expired(now_s)
        state = WindowState.decode(raw)
        return (state.partition == partition and state.closed
                and (state.end + self.config.window_retention_s) * 1_000_000 < self._watermark[partition])


class RecordProcessor:
    """Validation of the business topics (customers, subscriptions, invoices, payments) and the
    payment lifecycle tracker."""

    def __init__(self, payments: StateStore, clock=time.time):
        self.payments = payments
        self.clock = clock

    def process(self, records: Iterable[Record], out: Output) -> None:
        """Validate ``records`` and derive warehouse rows and payment states."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        changed: dict[bytes, PaymentState] = {}
        partitions: dict[bytes, int] = {}
        for record in records:
            try:
                model = parse_topic(record.topic, record.value)
            except ContractViolation as exc:
                out.dead(record, exc.reason)
                continue
            out.counts[f"{record.topic}_in"] += 1
            merge(out.rows, rows_for(model, record.partition, record.offset))
            if isinstance(model, PaymentTransaction):
                key = model.id.encode()
                state = changed.get(key)
                if state is None:
                    stored = self.payments.read(record.partition, key)
                    state = PaymentState.decode(stored) if stored else PaymentState.start(model)
                applied, anomaly = state.apply(model)
                if anomaly:
                    out.counts["payment_anomalies"] += 1
                if applied:
                    out.counts["payment_transitions"] += 1
                changed[key] = state
                partitions[key] = record.partition
        for key, state in changed.items():
            self.payments.put(partitions[key], key, state.encode())
        if changed:
            out.rows.setdefault("payment_transactions", []).extend(s.row(now) for s in changed.values())
