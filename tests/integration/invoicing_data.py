"""A simulated month loaded straight into a scratch warehouse, for the invoicing tests.

The simulator writes its records to a file and its ground-truth manifest; customers and
subscription events go into the raw tables through :mod:`billing.warehouse.facts`, and the hour windows of
``usage_rollups`` are written from the manifest's exact hourly totals (as the stream worker would
write them), so these tests do not depend on the worker.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from billing.core.contracts import Contract, Customer, SubscriptionEvent, parse_topic
from billing.core.meters import MeterSet, active_meters
from billing.settings import Settings
from billing.warehouse import facts
from producers.manifest import Manifest, UsageTotal
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, read_records

SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
ROLLUP_COLUMNS = facts.COLUMNS["usage_rollups"]


def simulate(folder: Path, *, customers: int = 30, seed: int = 11, events: int = 40_000) -> tuple[Path, Manifest]:
    """Simulate September 2026 into ``folder``: the record file and the manifest."""
    records = folder / "records.tsv"
    config = SimulationConfig(customers=customers, rate=None, events=events, start=SEPTEMBER, days=30, seed=seed)
    Simulator(config, active_meters(), FileSink(records), manifest_dir=folder / "manifest").run()
    return records, Manifest.load(folder / "manifest")


def business_records(path: Path) -> tuple[list[Customer], list[SubscriptionEvent]]:
    """The customers and subscription events of a record file."""
    customers, subscriptions = [], []
    for topic, _key, value in read_records(path):
        if topic == "customers":
            customers.append(parse_topic(topic, value))
        elif topic == "subscriptions":
            subscriptions.append(parse_topic(topic, value))
    return customers, subscriptions


def rollup_rows(totals: Iterable[UsageTotal], meters: MeterSet, version: int = 1) -> list[list]:
    """``usage_rollups`` hour rows (one group per customer x meter x hour) for manifest totals."""
    return [[t.customer_id, t.meter, 3600, t.window_start, "", {}, meters[t.meter].aggregation.value, t.value, t.events,
             version, 1, t.window_start] for t in totals]


def load(ch, database: str, records: Path, manifest: Manifest, customers: Iterable[Customer] | None = None) -> None:
    """Insert the simulated customers, subscription events and hourly rollups into ``database``."""
    found, subscriptions = business_records(records)
    rows: facts.Rows = {}
    for model in [*(found if customers is None else customers), *subscriptions]:
        facts.merge(rows, facts.rows_for(model))
    for table, data in rows.items():
        ch.insert(f"{database}.{table}", data, column_names=facts.COLUMNS[table])
    ch.insert(f"{database}.usage_rollups", rollup_rows(manifest.usage("hour"), active_meters()), column_names=ROLLUP_COLUMNS)


def add_usage(ch, database: str, customer_id: str, meter: str, window_start: datetime, value: Decimal, version: int) -> None:
    """Write a newer version of one hour window (what the worker does when a late event arrives)."""
    meters = active_meters()
    row = rollup_rows([UsageTotal(customer_id, meter, window_start, value, 1)], meters, version)
    ch.insert(f"{database}.usage_rollups", row, column_names=ROLLUP_COLUMNS)


def on_anniversary(start: datetime, months: int) -> datetime:
    """``start``'s day at 00:00 UTC ``months`` months later, the month's last day when it has no such day
    (31 January + 1 = 28 February, + 2 = 31 March): where an anniversary subscription's cycles begin."""
    year, month = divmod(start.year * 12 + start.month - 1 + months, 12)
    return datetime(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]), tzinfo=UTC)


def count(ch, database: str, table: str, where: str = "1") -> int:
    """Rows of ``table`` (all versions, no FINAL) matching ``where``."""
    return ch.query(f"SELECT count() FROM {database}.{table} WHERE {where}").result_rows[0][0]


def topic_messages(settings: Settings, logical: str) -> list[tuple[bytes, Contract]]:
    """Every ``(key, message)`` on the logical topic ``logical`` of ``settings``, from its beginning to its end now."""
    topic = settings.topics()[logical]
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages, done = [], {p for p, end in ends.items() if end == 0}
        while len(done) < len(partitions):
            message = consumer.poll(10)
            assert message is not None, "the topic ended before its high watermark"
            assert message.error() is None, message.error()
            messages.append((message.key(), parse_topic(logical, message.value())))
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        return messages
    finally:
        consumer.close()
