"""Recent simulated traffic loaded into the warehouse the way the stream worker stores it.

The simulator writes 75 days of history and, with the same seed (so the same customers), a denser
last hour as the live stream; live usage ids get a prefix, since the same seed repeats ids. Each
record is parsed with the contracts and mapped with :mod:`billing.facts`. Duplicates are
dropped, malformed records become dead letters and events behind the watermark (the latest event
time seen) by more than a grace period count as late corrections, as the worker does. The worker's other outputs
are derived from the same events: minute and hour usage rollups (:class:`billing.meters.Accumulator`)
and one ``pipeline_metrics`` snapshot per minute of the last hour.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from billing import facts
from billing.clickhouse import client
from billing.contracts import ContractViolation, DeadLetter, UsageEvent, parse_topic
from billing.meters import Accumulator, MeterSet, active_meters
from billing.migrations import migrate
from billing.settings import Settings
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, read_records

UTC = timezone.utc
ROLLUP_COLUMNS = ("customer_id", "meter", "window_seconds", "window_start", "group_key", "dimensions", "aggregation",
                  "value", "event_count", "version", "closed", "updated_at")
METRIC_COLUMNS = ("time", "worker", "metric", "value")
WORKER = "e2e-worker"
CUSTOMERS, SEED = 80, 11
LIVE_PREFIX = "live-"
LATE_AFTER = timedelta(minutes=5)


@dataclass
class Loaded:
    """What was loaded: unique usage events, arrival times of duplicates and late events, dead letters."""

    usage: list[UsageEvent]
    duplicates: list[datetime]
    late: list[datetime]
    dead_letters: list[DeadLetter]
    rows: Counter


def simulate(workdir: Path, now: datetime, days: int = 75) -> tuple[Path, Path]:
    """Run the simulator into files: ``days`` of history before the last hour, and the last hour live."""
    history, live = workdir / "history.tsv", workdir / "live.tsv"
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    faults = {"duplicate_rate": 0.02, "late_rate": 0.01, "malformed_rate": 0.005}
    Simulator(SimulationConfig(customers=CUSTOMERS, rate=None, events=20_000, start=start, days=days, seed=SEED, **faults),
              active_meters(), FileSink(history), workdir / "history-manifest").run()
    Simulator(SimulationConfig(customers=CUSTOMERS, rate=None, events=1_500, start=now - timedelta(hours=1),
                               days=1 / 24, seed=SEED, **faults),
              active_meters(), FileSink(live), workdir / "live-manifest").run()
    return history, live


def rollup_rows(events: list[UsageEvent], meters: MeterSet, window_seconds: int, written_at: datetime) -> list[list]:
    """Rollups of ``window_seconds`` tumbling windows (one closed version each)."""
    windows: dict[tuple, list[UsageEvent]] = defaultdict(list)
    for event in events:
        meter = meters[event.type]
        start = datetime.fromtimestamp(event.time.timestamp() // window_seconds * window_seconds, UTC)
        windows[(event.subject, event.type, start, facts.group_key(event.data.dimensions, meter.group_by))].append(event)
    rows = []
    for (customer, meter_name, start, key), window in sorted(windows.items()):
        meter = meters[meter_name]
        acc = Accumulator(meter.aggregation)
        for event in sorted(window, key=lambda e: (e.time, e.id)):
            acc.add(event.measured_value(meters))
        dimensions = {name: window[0].data.dimensions.get(name, "") for name in meter.group_by}
        rows.append([customer, meter_name, window_seconds, start, key, dimensions, meter.aggregation.value,
                     acc.value(), len(window), 1, 1, written_at])
    return rows


def metric_rows(loaded: Loaded, now: datetime) -> list[list]:
    """Per-minute worker snapshots of the last hour: cumulative counters, throughput and lag (a
    stand-in that keeps up: no lag)."""
    rows = []
    end = now.replace(second=0, microsecond=0)
    for minute in range(60, -1, -1):
        at = end - timedelta(minutes=minute)
        events = sum(1 for e in loaded.usage if e.time <= at)
        in_minute = sum(1 for e in loaded.usage if at - timedelta(minutes=1) < e.time <= at)
        values = {
            "events_in": events,
            "duplicates": sum(1 for t in loaded.duplicates if t <= at),
            "dead_letters": sum(1 for d in loaded.dead_letters if d.time <= at),
            "late_corrections": sum(1 for t in loaded.late if t <= at),
            "throughput": in_minute / 60.0,
            "consumer_lag": 0.0,
        }
        rows.extend([at, WORKER, name, float(value)] for name, value in values.items())
    return rows


def load(settings: Settings, files: tuple[Path, Path], now: datetime) -> Loaded:
    """Create the raw schema and load the simulated records, rollups and worker metrics."""
    migrate(settings)
    meters = active_meters()
    usage: dict[str, UsageEvent] = {}
    loaded = Loaded([], [], [], [], Counter())
    watermark = datetime.min.replace(tzinfo=UTC)
    rows: facts.Rows = {}
    history, live = files
    records = [(path, offset, topic, key, value) for path in (history, live)
               for offset, (topic, key, value) in enumerate(read_records(path))
               if path == history or topic == "usage"]
    for path, offset, topic, key, value in records:
        try:
            model = parse_topic(topic, value, now=now, future_tolerance=300)
        except ContractViolation as exc:
            letter = DeadLetter.wrap(value, str(exc), topic, key=key, partition=0, offset=offset,
                                     time=now - timedelta(minutes=offset % 60))
            loaded.dead_letters.append(letter)
            facts.merge(rows, facts.rows_for(letter))
            continue
        if isinstance(model, UsageEvent):
            if path == live:
                model = model.model_copy(update={"id": LIVE_PREFIX + model.id})
            if model.id in usage:
                loaded.duplicates.append(model.time)
                continue
            usage[model.id] = model
            watermark = max(watermark, model.time)
            if model.time < watermark - LATE_AFTER:
                loaded.late.append(watermark)
        facts.merge(rows, facts.rows_for(model, 0, offset))
    loaded.usage = list(usage.values())
    rows["usage_rollups"] = [*rollup_rows(loaded.usage, meters, 3600, now),
                             *rollup_rows([e for e in loaded.usage if e.time > now - timedelta(hours=2)],
                                          meters, 60, now)]
    rows["pipeline_metrics"] = metric_rows(loaded, now)
    columns = {**facts.COLUMNS, "usage_rollups": ROLLUP_COLUMNS, "pipeline_metrics": METRIC_COLUMNS}
    ch = client(settings, database=settings.clickhouse_database)
    for table, table_rows in rows.items():
        ch.insert(table, table_rows, column_names=columns[table])
        loaded.rows[table] = len(table_rows)
    return loaded
