"""The usage job written with Quix Streams, as its documentation would write it: the peer that
``bench/bench_peer.py`` runs beside the project's Faust worker on the same topic.

It runs in its own virtualenv (Quix Streams pins older confluent-kafka and pydantic) with the
repository on ``PYTHONPATH`` for the project's contract and meters only. The job: read the usage
topic, validate every event with the same contract, drop duplicate ids (state keyed by customer,
the same retention), tumbling minute and hour windows per customer (the message key) with the same
grace, closed per partition, each holding one state per meter x grouped dimensions in the meter's
own aggregation, and the closed windows written as ``usage_rollups`` rows to the warehouse.
Exactly-once processing is on.

Windows are not re-keyed with ``group_by`` (the documented way to window by another key): its
repartition topic interleaves the source partitions as the consumer happens to read them, so on a
replayed history most windows were closed before their events arrived (a 20,000-event trial closed
2,010 of 31,923 windows and skipped ~18,800 events as late). Keeping the customer as the key keeps
each partition in event-time order, as the Faust worker sees it.

Usage: ``python peer_quix.py CONFIG_JSON`` where the file holds broker, topic, group, state folder,
ClickHouse URL and database, and the path of a stats file this process rewrites twice a second
(records consumed so far).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import clickhouse_connect
from quixstreams import Application, State
from quixstreams.models import Deserializer
from quixstreams.sinks import BatchingSink, SinkBatch

from billing.core.contracts import ContractViolation, UsageEvent, parse_usage, usage_context
from billing.core.meters import Accumulator, Aggregation, active_meters
from billing.warehouse.facts import COLUMNS, group_key

GRACE_MS = 60_000
WINDOWS_S = (60, 3600)
DEDUP_RETENTION_S = 32 * 86_400
METERS = active_meters()


class UsageDeserializer(Deserializer):
    """Wire bytes -> a validated :class:`UsageEvent`, or None for a record the contract refuses. The
    accepted event times follow the clock, renewed every second (as the worker renews them per batch)."""

    def __init__(self):
        super().__init__()
        self.context, self.renew_at = {}, 0.0

    def __call__(self, value: bytes, ctx) -> UsageEvent | None:
        if time.monotonic() >= self.renew_at:
            self.context, self.renew_at = usage_context({"meters": METERS}), time.monotonic() + 1.0
        try:
            return parse_usage(value, context=self.context)
        except ContractViolation:
            return None


def event_time_ms(value, headers, timestamp: int, timestamp_type) -> int:
    """Windows run on event time; a refused record keeps the broker's timestamp."""
    return int(value.time.timestamp() * 1000) if value is not None else timestamp


def first_seen(event: UsageEvent, state: State) -> bool:
    """True the first time an event id is seen within the retention (state is per customer)."""
    now = time.time()
    seen = state.get(event.id)
    if seen is not None and now - seen < DEDUP_RETENTION_S:
        return False
    state.set(event.id, now)
    return True


def window_input(event: UsageEvent) -> dict:
    """What the windows need of an event: its series (meter x grouped dimensions) and value."""
    meter = METERS[event.type]
    raw = event.data.field(meter.value_field)
    if meter.aggregation is Aggregation.UNIQUE_COUNT:
        value = str(raw.normalize()) if isinstance(raw, Decimal) else str(raw)
    else:
        value = str(raw)
    values = event.data.group_values(meter.group_by)
    gkey = group_key(meter.group_by, values)
    return {"k": f"{event.type}\x1f{gkey}", "c": event.subject, "m": event.type, "g": gkey,
            "d": dict(zip(meter.group_by, values, strict=True)), "v": value,
            "t": int(event.time.timestamp() * 1_000_000), "id": event.id}


def start_window(item: dict) -> dict:
    """The aggregate of a customer's window holding its first event: one state per series."""
    return fold({}, item)


def fold(aggregate: dict, item: dict) -> dict:
    """Fold one more event into its series' state (LATEST keeps the value of the latest event time)."""
    aggregation = METERS[item["m"]].aggregation
    mark = [item["t"], item["id"]]
    series = aggregate.get(item["k"])
    if series is None:
        acc = Accumulator(aggregation)
        acc.add(item["v"])
        aggregate[item["k"]] = {"c": item["c"], "m": item["m"], "g": item["g"], "d": item["d"],
                                "acc": acc.to_state(), "l": mark}
        return aggregate
    acc = Accumulator.from_state(aggregation, series["acc"])
    if aggregation is Aggregation.LATEST and mark < series["l"]:
        earlier = Accumulator(aggregation)
        earlier.add(item["v"])
        earlier.merge(acc)
        acc = earlier
    else:
        acc.add(item["v"])
        series["l"] = mark
    series["acc"] = acc.to_state()
    return aggregate


class RollupSink(BatchingSink):
    """Closed windows -> ``usage_rollups`` rows (version 1: a closed window never changes here)."""

    def __init__(self, config: dict, seconds: int):
        super().__init__()
        self.config, self.seconds = config, seconds
        self.client = None

    def setup(self) -> None:
        config = self.config
        self.client = clickhouse_connect.get_client(dsn=config["clickhouse_url"], username=config["user"],
                                                    password=config["password"], database=config["database"])

    def write(self, batch: SinkBatch) -> None:
        now = datetime.now(UTC)
        rows = []
        for item in batch:
            window = item.value
            start = datetime.fromtimestamp(window["start"] / 1000, UTC)
            for series in window["value"].values():
                acc = Accumulator.from_state(METERS[series["m"]].aggregation, series["acc"])
                rows.append([series["c"], series["m"], self.seconds, start, series["g"], series["d"],
                             acc.aggregation.value, acc.value(), acc.events, 1, 1, now])
        if rows:
            self.client.insert("usage_rollups", rows, column_names=COLUMNS["usage_rollups"])


def write_stats(path: Path, counter: list[int]) -> None:
    """Replace the stats file twice a second (records consumed so far)."""
    draft = path.with_suffix(".tmp")
    while True:
        draft.write_text(json.dumps({"consumed": counter[0], "at": time.time()}))
        draft.replace(path)
        time.sleep(0.5)


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    consumed = [0]
    usage_topic = config["topic"]

    def count(topic: str, partition: int, offset: int) -> None:
        if topic == usage_topic:
            consumed[0] += 1

    app = Application(
        broker_address=config["broker"], consumer_group=config["group"], auto_offset_reset="earliest",
        processing_guarantee="exactly-once", state_dir=config["state_dir"], loglevel="WARNING",
        on_message_processed=count)
    topic = app.topic(usage_topic, value_deserializer=UsageDeserializer(), timestamp_extractor=event_time_ms)
    sdf = app.dataframe(topic)
    sdf = sdf.filter(lambda event: event is not None)
    sdf = sdf.filter(first_seen, stateful=True)
    sdf = sdf.apply(window_input)
    for seconds in WINDOWS_S:
        (sdf.tumbling_window(duration_ms=seconds * 1000, grace_ms=GRACE_MS, name=f"usage_{seconds}s")
         .reduce(reducer=fold, initializer=start_window)
         .final(closing_strategy="partition")
         .sink(RollupSink(config, seconds)))
    threading.Thread(target=write_stats, args=(Path(config["stats"]), consumed), daemon=True).start()
    app.run()


if __name__ == "__main__":
    main(sys.argv[1])
