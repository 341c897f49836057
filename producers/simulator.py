"""The traffic simulator behind `billing simulate`: configuration, the run loop, the manifest.

Two time modes:

- history (``start`` or ``days`` given): event times cover ``[start, start + days)`` following
  the diurnal/weekly curve; records are sent as fast as ``rate`` allows. The number of usage
  events is ``events`` or ``rate x duration``. Output is byte-identical for the same seed.
- real time (neither given): event times are the wall clock at emission, for ``duration``
  seconds or until ``events`` were sent.

Business events (customers, subscriptions) are interleaved in event-time order. Invoices come from
the billing engine (`billing invoice run`), payments from the payers (`billing simulate payers`).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from billing.core.contracts import SubscriptionEvent, SubscriptionEventType, to_bytes
from billing.core.errors import ConfigError
from billing.core.meters import MeterSet
from producers.accounts import AccountEvent, account_events
from producers.anomalies import plan_anomalies
from producers.customers import build_customers
from producers.manifest import write_manifest
from producers.usage import HOUR_US, FaultRates, UsageGenerator, us_of

REALTIME_TICK_S = 0.05
MAX_BATCH = 20_000


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. ``rate`` None means as fast as possible."""

    customers: int = 100
    rate: float | None = 1000.0
    duration_s: float | None = None
    events: int | None = None
    start: datetime | None = None
    days: float | None = None
    seed: int = 42
    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    malformed_rate: float = 0.0
    lateness_s: float = 7200.0
    anomalies: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.customers < 1:
            problems.append(f"--customers must be at least 1 (got {self.customers})")
        if self.rate is not None and self.rate <= 0:
            problems.append(f"--rate must be positive or 'max' (got {self.rate:g})")
        if self.duration_s is not None and self.events is not None:
            problems.append("give either --duration or --events, not both")
        if self.duration_s is not None and self.duration_s <= 0:
            problems.append(f"--duration must be positive (got {self.duration_s:g})")
        if self.events is not None and self.events < 0:
            problems.append(f"--events must not be negative (got {self.events})")
        if self.days is not None and self.days <= 0:
            problems.append(f"--days must be positive (got {self.days:g})")
        if self.start is not None and self.start.tzinfo is None:
            problems.append("--start needs a time zone (e.g. 2024-06-01T00:00:00Z)")
        for name in ("duplicate_rate", "late_rate", "malformed_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                problems.append(f"--{name.replace('_', '-')} must be between 0 and 1 (got {value:g})")
        if self.duplicate_rate + self.malformed_rate > 1:
            problems.append("--duplicate-rate plus --malformed-rate cannot exceed 1")
        if self.lateness_s <= 0:
            problems.append(f"--lateness must be positive (got {self.lateness_s:g})")
        if self.anomalies < 0:
            problems.append(f"--anomalies must not be negative (got {self.anomalies})")
        if self.anomalies and not self.history:
            problems.append("--anomalies needs a simulated history (--start/--days)")
        if self.history and self.events is None and (self.duration_s is None or self.rate is None):
            problems.append("history mode (--start/--days) needs --events, or --duration with a numeric --rate")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def history(self) -> bool:
        """True when simulating a past (or given) time range instead of real time."""
        return self.start is not None or self.days is not None

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The simulated ``[start, end)``; in real time, from now for the expected run length."""
        if self.history:
            days = self.days if self.days is not None else 1.0
            start = self.start or (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
            return start.astimezone(UTC), start.astimezone(UTC) + timedelta(days=days)
        if self.duration_s is not None:
            length = self.duration_s
        elif self.events is not None and self.rate is not None:
            length = self.events / self.rate
        else:
            length = 0.0
        return now, now + timedelta(seconds=length)

    def usage_events(self) -> int | None:
        """Number of usage slots to generate (None: until the duration is over)."""
        if self.events is not None:
            return self.events
        if self.history:
            return int(self.rate * self.duration_s)
        return None


@dataclass
class SimulationResult:
    """What a run sent, plus where its manifest is."""

    records: dict[str, int]
    usage_events: int
    seconds: float
    manifest: Path | None

    @property
    def usage_rate(self) -> float:
        return self.usage_events / self.seconds if self.seconds else 0.0


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a history run allocates millions of acyclic records and
    truth buckets, and its collections cost ~10 % of the producing thread."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def hour_allocation(generator: UsageGenerator, start_us: int, end_us: int, total: int) -> list[tuple[int, int, int]]:
    """Split ``total`` events over the hours of ``[start, end)`` in proportion to the traffic curve:
    ``(window_start_us, window_us, count)`` with counts summing exactly to ``total``."""
    windows = []
    cursor = start_us
    while cursor < end_us:
        hour_end = min(cursor - cursor % HOUR_US + HOUR_US, end_us)
        weight = generator.hour_weight(cursor - cursor % HOUR_US) * (hour_end - cursor) / HOUR_US
        windows.append((cursor, hour_end - cursor, weight))
        cursor = hour_end
    grand = sum(w for _, _, w in windows) or 1.0
    allocation, running, given = [], 0.0, 0
    for window_start, length, weight in windows:
        running += weight
        upto = round(total * running / grand)
        allocation.append((window_start, length, upto - given))
        given = upto
    return allocation


def service_ends(customers: list, events: list[AccountEvent]) -> list[int | None]:
    """Per customer (in order), when its canceled subscription stops serving (epoch us), or None."""
    ends: dict[bytes, int] = {}
    for event in events:
        model = event.model
        if isinstance(model, SubscriptionEvent) and model.type is SubscriptionEventType.CANCELED and model.end_time:
            ends[event.key] = us_of(model.end_time)
    return [ends.get(customer.id.encode()) for customer in customers]


class Simulator:
    """Runs one simulation into a sink (anything with ``send_many(topic, records)``)."""

    def __init__(self, config: SimulationConfig, meters: MeterSet, sink, manifest_dir: Path | None = None,
                 progress: Callable[[int], None] | None = None, clock: Callable[[], float] = time.time):
        self.config = config
        self.meters = meters
        self.sink = sink
        self.manifest_dir = manifest_dir
        self.progress = progress or (lambda n: None)
        self.clock = clock
        self.counts: dict[str, Counter] = {}

    def run(self) -> SimulationResult:
        cfg = self.config
        began = self.clock()
        start, end = cfg.window(datetime.fromtimestamp(began, UTC).replace(microsecond=0))
        customers = build_customers(cfg.customers, cfg.seed, start)
        self.pending = account_events(customers, cfg.seed, start, end)
        generator = UsageGenerator(
            customers, self.meters, cfg.seed,
            FaultRates(cfg.duplicate_rate, cfg.late_rate, cfg.malformed_rate, cfg.lateness_s),
            service_ends=service_ends(customers, self.pending),
        )
        if cfg.anomalies:
            per_hour = cfg.usage_events() * HOUR_US / (us_of(end) - us_of(start))
            generator.inject(plan_anomalies(cfg.anomalies, cfg.seed, us_of(start), us_of(end), generator.anomaly_cells(per_hour)))
        self.next_account = 0
        timer_start = time.monotonic()
        if cfg.history:
            with _gc_paused():
                sent = self._run_history(generator, us_of(start), us_of(end))
        else:
            sent = self._run_realtime(generator, us_of(start))
        self._flush_accounts(None if cfg.history else us_of(datetime.fromtimestamp(self.clock(), UTC)))
        self.sink.close()
        seconds = time.monotonic() - timer_start
        usage_counts = Counter()
        hourly = generator.truth.hourly
        for (ci, _, _), (_, events) in hourly.items():
            usage_counts[customers[ci].id] += events
        for _, ci, *_ in generator.truth.duplicates:
            usage_counts[customers[ci].id] += 1
        for _, ci, _ in generator.truth.malformed:
            usage_counts[customers[ci].id] += 1
        self.counts["usage"] = usage_counts
        records = {topic: sum(c.values()) for topic, c in sorted(self.counts.items())}
        if self.manifest_dir is not None:
            write_manifest(self.manifest_dir, self._summary(start, end, records, generator, hourly, sent), customers,
                           generator, self.counts)
        return SimulationResult(records=records, usage_events=sent, seconds=seconds, manifest=self.manifest_dir)

    def _summary(self, start: datetime, end: datetime, records: dict, generator: UsageGenerator, hourly: dict,
                 sent: int) -> dict:
        truth = generator.truth
        config = asdict(self.config)
        config["start"] = start.isoformat()
        return {
            "config": config,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "meters": {m.name: m.model_dump(mode="json") for m in generator.meters},
            "records": records,
            "usage": {
                "slots": sent,
                "unique_valid": sum(events for _, events in hourly.values()),
                "duplicates": len(truth.duplicates),
                "late": len(truth.late),
                "malformed": len(truth.malformed),
                "anomalies": len(generator.anomalies),
            },
        }

    def _flush_accounts(self, until_us: int | None) -> None:
        """Send the business events with time before ``until_us`` (all remaining when None)."""
        pending, index = self.pending, self.next_account
        stop = index
        while stop < len(pending) and (until_us is None or pending[stop].time_us < until_us):
            stop += 1
        if stop == index:
            return
        by_topic: dict[str, list] = {}
        for event in pending[index:stop]:
            by_topic.setdefault(event.topic, []).append((event.key, to_bytes(event.model)))
            self.counts.setdefault(event.topic, Counter())[event.key.decode()] += 1
        for topic, records in by_topic.items():
            self.sink.send_many(topic, records)
        self.next_account = stop

    def _throttle(self, sent: int, started: float) -> None:
        if self.config.rate is not None:
            ahead = sent / self.config.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    def _run_history(self, generator: UsageGenerator, start_us: int, end_us: int) -> int:
        started = time.monotonic()
        sent = 0
        for window_start, length, count in hour_allocation(generator, start_us, end_us, self.config.usage_events()):
            self._flush_accounts(window_start)
            while count > 0:
                # split large hours so the progress bar and the rate limit stay smooth
                part = min(count, MAX_BATCH)
                share = length * part // count
                self.sink.send_many("usage", generator.batch(window_start, share or 1, part))
                window_start, length, count = window_start + share, length - share, count - part
                sent += part
                self.progress(part)
                self._throttle(sent, started)
        return sent

    def _run_realtime(self, generator: UsageGenerator, start_us: int) -> int:
        cfg = self.config
        started = time.monotonic()
        sent = 0
        last_us = start_us
        target = cfg.events
        while True:
            elapsed = time.monotonic() - started
            if cfg.duration_s is not None and elapsed >= cfg.duration_s:
                break
            if target is not None and sent >= target:
                break
            now_us = us_of(datetime.fromtimestamp(self.clock(), UTC))
            self._flush_accounts(now_us)
            due = MAX_BATCH if cfg.rate is None else int(cfg.rate * elapsed) - sent
            if target is not None:
                due = min(due, target - sent)
            if due <= 0:
                time.sleep(REALTIME_TICK_S)
                continue
            due = min(due, MAX_BATCH)
            self.sink.send_many("usage", generator.batch(last_us, max(now_us - last_us, 1), due))
            last_us = now_us
            sent += due
            self.progress(due)
        return sent
