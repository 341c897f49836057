"""The Faust app of `billing worker`: agents, RocksDB tables, timers and the web endpoint.

Two agents consume batches (by size and by time) and acknowledge a batch only after its rows are
stored in the warehouse, so Faust never commits an offset past data that is not in the warehouse
(at-least-once; the state is fenced so replays change nothing). One batch is processed while the
previous one is being written; writes happen one at a time, in order:

- ``usage``: validation -> dead letters, dedup, minute/hour windows, closing, corrections. The hot
  path: a batch agent of :mod:`streams.transport` (records handed over as lists, not one by one);
- ``records``: customers, subscriptions, invoices and payments -> raw facts, payment lifecycles
  (a Faust agent over ``stream.noack_take``).

Tables (``rocksdb://`` store through rocksdict, changelog-backed, partitioned like the topics):
``dedup`` (idempotency keys), ``windows`` (window states), ``watermarks`` and ``payments``.
Reads and writes go straight to the RocksDB database of the partition that owns the key (a batch
spans partitions; Faust's own table API picks the partition from the "current event").

Faust runs with ``processing_guarantee="at_least_once"``: its exactly-once mode has open reports
of duplicates and crashes around rebalances, and is not needed because every state change and
every warehouse row is idempotent (offset/sequence fencing, versioned ReplacingMergeTree rows).
Table changelogs are produced in bulk through librdkafka (see :class:`PartitionTable`).

Faust's own windowed tables are not used: they have no grace period or watermark and close
windows only when a later event arrives. Windows here are plain keys, closed by a per-partition
event-time watermark minus the grace period, and by the wall clock when a partition goes idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path

import faust
from aiokafka.structs import ConsumerRecord
from confluent_kafka import KafkaError, KafkaException, Producer
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from rocksdict import WriteBatch

from billing.core.contracts import to_bytes
from billing.core.errors import ServiceUnavailable
from billing.core.meters import active_meters
from billing.gc_tuning import COLLECT_EVERY_S, collect_garbage, trim_heap
from billing.kafka.config import producer_config
from billing.kafka.drain import drain
from billing.kafka.lag import GroupOffsets
from billing.settings import Settings
from billing.warehouse.client import client as make_client
from streams.faust_internals import partition_db
from streams.health import ProgressWatch
from streams.metrics import WorkerMetrics
from streams.pipeline import Output, Record, RecordProcessor, UsageProcessor, WindowConfig
from streams.sink import SinkStopped, WarehouseSink
from streams.transport import BatchApp

log = logging.getLogger("billing.worker")
DAY_S = 86_400
IDLE_CHECK_S = 5.0
METADATA_WAIT_S = 30.0
HEARTBEATS_PER_SESSION = 20
"""Heartbeats a worker sends within its session timeout (a few lost ones do not cost it its partitions)."""
Batch = dict[TP, list[Record]]
Acknowledge = Callable[[dict[TP, int]], Awaitable[None]]
"""Receives, per topic partition, the offset before which every record of a batch is stored."""
ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 << 20,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 << 20,
    "max_open_files": 256,
}
"""Per partition database; keeps the resident memory of a worker small."""


class PartitionTable:
    """A Faust table as a :class:`~streams.pipeline.StateStore`.

    Writes collect in memory (reads see them) until :meth:`produce` writes them to the local RocksDB
    database of their partition in one write batch each and hands their changelog messages to
    librdkafka together (Faust's own path awaits one message per event-loop iteration, which capped
    a worker at about a thousand table writes per second). The worker produces and flushes the
    tables before it stores and acknowledges a batch, so a committed source offset never precedes the
    changelog of the state it produced. Delivered offsets are recorded as the store's persisted
    offsets, so recovery reads only the changelog this store has not seen.
    """

    def __init__(self, table: faust.Table, producer: Producer):
        self.table = table
        self.producer = producer
        self.pending: dict[tuple[int, bytes], bytes | None] = {}
        self.persisted: dict[int, int] = {}
        self.refused: list[str] = []

    def _db(self, partition: int):
        return partition_db(self.table, partition)

    def read(self, partition: int, key: bytes) -> bytes | None:
        place = (partition, key)
        if place in self.pending:
            return self.pending[place]
        return self._db(partition).get(key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.pending[(partition, key)] = value

    def delete(self, partition: int, key: bytes) -> None:
        self.pending[(partition, key)] = None

    def partition_items(self, partition: int):
        """Items of ``partition``: its database overlaid with the writes not produced yet (Faust's own
        offset key aside)."""
        pending = {key: value for (p, key), value in self.pending.items() if p == partition}
        meta = self.table.data.offset_key
        for key, value in self._db(partition).items():
            if key != meta and key not in pending:
                yield key, value
        yield from ((key, value) for key, value in pending.items() if value is not None)

    def scan(self, partition: int, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` stored items of ``partition`` from key ``start`` on (writes not produced yet
        and Faust's own offset key aside)."""
        meta = self.table.data.offset_key
        return list(islice(((k, v) for k, v in self._db(partition).items(from_key=start) if k != meta), limit))

    def produce(self) -> int:
        """Write the changes since the last call to RocksDB and hand their changelog messages to the
        producer; returns their number."""
        pending, self.pending = self.pending, {}
        batches: dict[int, WriteBatch] = {}
        name = self.table.changelog_topic.get_topic_name()
        for (partition, key), value in pending.items():
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = WriteBatch(raw_mode=True)
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            self._send(name, value, key, partition)
        for partition, batch in batches.items():
            self._db(partition).write(batch)
        return len(pending)

    def _send(self, topic: str, value: bytes | None, key: bytes, partition: int) -> None:
        """Produce one changelog message. A changelog topic Faust has just created may not be in
        librdkafka's metadata yet ("unknown partition"): refresh it and try again."""
        deadline = time.monotonic() + METADATA_WAIT_S
        while True:
            try:
                self.producer.produce(topic, value, key, partition=partition, on_delivery=self._delivered)
                return
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._UNKNOWN_PARTITION or time.monotonic() > deadline:
                    raise
                self.producer.list_topics(topic, timeout=5.0)
                time.sleep(0.1)

    def _delivered(self, error, message) -> None:
        if error is None:
            partition = message.partition()
            self.persisted[partition] = max(self.persisted.get(partition, -1), message.offset())
        else:
            self.refused.append(error.str())

    def record_persisted(self) -> None:
        """Remember the delivered changelog offsets in the local store (after a flush)."""
        persisted, self.persisted = self.persisted, {}
        name = self.table.changelog_topic.get_topic_name()
        for partition, offset in persisted.items():
            self.table.data.set_persisted_offset(TP(name, partition), offset)


def changelog_config(settings: Settings) -> dict:
    """librdkafka settings of the table changelog producer. Messages never time out: during a broker
    outage the worker waits for its changelog (and stalls) instead of dropping state changes."""
    return producer_config(settings.kafka_bootstrap, {
        "message.timeout.ms": 0, "linger.ms": 5, "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 2_000_000, "logger": log,
    })


class ChangelogRefused(Exception):
    """Kafka refused table changelog messages: the batch must not be acknowledged."""


class StreamRuntime:
    """State, processors, sink and metrics of one worker process, wired into a Faust app."""

    def __init__(self, settings: Settings, name: str, web_port: int, data_dir: Path):
        self.settings = settings
        self.name = name
        self.topics = settings.topics()
        self.app = BatchApp(
            settings.worker_app_id,
            batch_size=settings.worker_batch_size,
            batch_within_s=settings.worker_batch_interval_s,
            broker=[f"billing://{host}" for host in settings.kafka_bootstrap.split(",")],
            store="rocksdb://",
            datadir=str(data_dir),
            web_enabled=True,
            web_host="127.0.0.1",
            web_bind="127.0.0.1",
            web_port=web_port,
            topic_partitions=settings.kafka_partitions,
            topic_replication_factor=settings.kafka_replication,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=1.0,
            broker_session_timeout=settings.worker_session_timeout_s,
            broker_heartbeat_interval=settings.worker_session_timeout_s / HEARTBEATS_PER_SESSION,
            table_standby_replicas=0,
            producer_acks=-1,
            producer_linger=0.02,
            producer_max_batch_size=1 << 20,
            producer_compression_type="lz4",
            broker_max_poll_records=settings.worker_batch_size,
            stream_buffer_maxsize=max(4096, settings.worker_batch_size * 2),
            key_serializer="raw",
            value_serializer="raw",
        )
        self.meters = active_meters()
        self.metrics = WorkerMetrics(name)
        self.lock = asyncio.Lock()
        self.writing: asyncio.Future | None = None
        self.last_seen: dict[int, float] = {}
        self.positions: dict[tuple[str, int], int] = {}
        self.stopping = False
        self.progress = ProgressWatch(settings.worker_stall_after_s)
        self.group_offsets: GroupOffsets | None = None
        self.sink = WarehouseSink(settings, self.meters, stopping=lambda: self.stopping,
                                  on_retry=lambda exc: self.metrics.add({"sink_retries": 1}))
        self.changelog = Producer(changelog_config(settings))
        self._declare()

    # --------------------------------------------------------------------------------- wiring

    def _table(self, name: str) -> PartitionTable:
        table = self.app.Table(name, partitions=self.settings.kafka_partitions, key_type=bytes, value_type=bytes,
                               options=dict(ROCKSDB_OPTIONS))
        return PartitionTable(table, self.changelog)

    def _declare(self) -> None:
        app, s = self.app, self.settings
        self.dedup, self.windows = self._table("dedup"), self._table("windows")
        self.watermarks, self.payments = self._table("watermarks"), self._table("payments")
        self.usage = UsageProcessor(
            self.meters,
            WindowConfig(tuple(s.worker_windows_s), s.worker_grace_s, s.worker_window_retention_days * DAY_S,
                         s.worker_dedup_retention_days * DAY_S),
            self.dedup, self.windows, self.watermarks,
        )
        self.records = RecordProcessor(self.payments)
        self.logical = {kafka: logical for logical, kafka in self.topics.items()}
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.dead_letter_topic = app.topic(self.topics["dead_letters"], **raw)
        usage_topic = app.topic(self.topics["usage"], **raw)
        record_topics = app.topic(*(self.topics[t] for t in ("customers", "subscriptions", "invoices", "payments")),
                                  **raw)

        @app.batch_agent(usage_topic)
        async def usage(fetched: dict[TP, list[ConsumerRecord]]) -> None:
            now = time.monotonic()
            batch: Batch = {}
            for tp, records in fetched.items():
                self.last_seen[tp.partition] = now
                batch[tp] = [Record("usage", r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in records]
            await self._handle(batch, self.usage.process, acknowledge)

        async def acknowledge(done: dict[TP, int]) -> None:
            for tp, offset in done.items():
                app.consumer.acknowledge(tp, offset)

        @app.agent(record_topics, name="records")
        async def records(stream):
            async for events in stream.noack_take(s.worker_batch_size, within=s.worker_batch_interval_s):
                batch: Batch = defaultdict(list)
                for event in events:
                    m = event.message
                    batch[m.tp].append(Record(self.logical[m.topic], m.topic, m.partition, m.offset, m.key, m.value,
                                              int(m.timestamp * 1000)))
                await self._handle(batch, self.records.process, partial(self._ack_events, stream, events))

        app.timer(IDLE_CHECK_S)(self._close_idle)
        app.timer(s.worker_purge_interval_s)(self._purge)
        app.timer(s.worker_metrics_interval_s)(self._report)
        app.timer(COLLECT_EVERY_S)(self._collect_garbage)

        @app.page("/metrics")
        async def metrics(view, request):
            return view.bytes(self.metrics.prometheus(), content_type="text/plain; version=0.0.4")

        @app.page("/stats")
        async def stats(view, request):
            return view.json(self.stats())

        @app.page("/health")
        async def health(view, request):
            return view.json({"status": "ok", "worker": self.name})

        @app.page("/healthz")
        async def healthz(view, request):
            stalled = self.stalled()
            return view.json({"status": "stalled" if stalled else "ok", "worker": self.name, "stalled": stalled},
                             status=503 if stalled else 200)

        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_before_shutdown.connect(self._on_shutdown)

    # ------------------------------------------------------------------------------ processing

    async def _handle(self, batch: Batch, process, acknowledge: Acknowledge) -> None:
        """Process one batch (the records of each partition in offset order) and start writing its
        rows; once they are stored, ``acknowledge`` gets the offsets that may be committed (all but
        records held back after an offset gap). The next batch is processed while this one is
        written."""
        async with self.lock:
            out = Output()
            for records in batch.values():
                process(records, out)
            await self._flush_tables()
            for partition, offset in out.rewind.items():
                await self.app.consumer.seek(TP(self.topics["usage"], partition), offset)
            done = {tp: min(records[-1].offset + 1, out.hold.get(tp.partition, records[-1].offset + 1))
                    for tp, records in batch.items()}
            await self._write(out, done, acknowledge)

    @staticmethod
    async def _ack_events(stream, events, done: dict[TP, int]) -> None:
        for event in events:
            message = event.message
            if message.offset < done[message.tp]:
                await stream.ack(event)

    async def _flush_tables(self) -> None:
        """Produce the changelog of every table write so far and wait until Kafka has it."""
        tables = (self.dedup, self.windows, self.watermarks, self.payments)
        if sum(table.produce() for table in tables):
            await drain(self.changelog, "changelog")
            refused = [reason for table in tables for reason in table.refused]
            if refused:
                raise ChangelogRefused(f"Kafka refused {len(refused)} table changelog message(s) ({refused[0]}); "
                                       "stopping without acknowledging the batch, which is processed again on restart")
            for table in tables:
                table.record_persisted()

    async def _write(self, out: Output, done: dict[TP, int] | None = None, acknowledge: Acknowledge | None = None) -> None:
        """Wait for the write in flight, then write ``out`` in the background (one write at a time,
        in batch order, so raw facts always land before what a later batch derives from them)."""
        await self._written()
        self.writing = asyncio.ensure_future(self._store(out, done or {}, acknowledge))

    async def _written(self) -> None:
        """Wait until the write in flight, if any, has finished (re-raising its error)."""
        writing, self.writing = self.writing, None
        if writing is not None:
            await writing

    async def _store(self, out: Output, done: dict[TP, int], acknowledge: Acknowledge | None) -> None:
        out.finish(datetime.now(UTC))
        started = time.monotonic()
        try:
            written = await asyncio.to_thread(self._write_rows, out)
        except SinkStopped:
            log.warning("stopping with a batch not stored; it will be processed again")
            raise
        self.metrics.sink_latency.observe(time.monotonic() - started)
        for letter in out.dead_letters:
            await self.dead_letter_topic.send(value=to_bytes(letter))
        out.counts["rows_written"] += written
        out.counts["rollups_written"] += len(out.rows.get("usage_rollups", ()))
        self.metrics.add(out.counts)
        for tp, offset in done.items():
            self.positions[(tp.topic, tp.partition)] = offset
        if acknowledge is not None:
            await acknowledge(done)

    def _write_rows(self, out: Output) -> int:
        """Give the memory of earlier batches back to the system, then store ``out`` (a thread's work)."""
        trim_heap()
        return self.sink.write(out)

    async def _close_idle(self) -> None:
        idle_after = self.settings.worker_idle_close_s
        now = time.monotonic()
        idle = [p for p in self.usage.partitions
                if p in self.last_seen and now - self.last_seen[p] >= idle_after and self.usage.open_windows(p)]
        if not idle:
            return
        async with self.lock:
            out = Output()
            self.usage.close_idle(idle, out)
            if out.windows:
                await self._flush_tables()
                await self._write(out)

    async def _purge(self) -> None:
        """Purge expired state one slice at a time, letting batches run in between (a purge of a
        million keys under the lock stalled the worker for seconds)."""
        total = Counter()
        slices = self.usage.purge()
        while True:
            async with self.lock:
                counts = next(slices, None)
                if counts is None:
                    break
                await self._flush_tables()
            total += counts
            await asyncio.sleep(0)
        self.metrics.add(total)
        if total:
            log.info("purged %s", dict(total))

    async def _collect_garbage(self) -> None:
        """The worker runs without Python's automatic collector (see :mod:`billing.gc_tuning`)."""
        collect_garbage()
        self.metrics.add(Counter(garbage_collections=1))

    def _on_revoked(self, sender, revoked, **kwargs) -> None:
        partitions = {tp.partition for tp in revoked}
        self.usage.forget(partitions)
        for partition in partitions:
            self.last_seen.pop(partition, None)
        for tp in revoked:
            self.positions.pop((tp.topic, tp.partition), None)

    async def _on_shutdown(self, sender, **kwargs) -> None:
        self.stopping = True
        with contextlib.suppress(SinkStopped):
            await self._written()
        if self.group_offsets is not None:
            self.group_offsets.close()

    # ------------------------------------------------------------------------------- reporting

    async def _report(self) -> None:
        self.metrics.update_rate()
        try:
            await self._observe_progress()
        except ServiceUnavailable as exc:
            log.warning("cannot read the group's offsets: %s", exc)
        self.metrics.set("consumer_lag", self.progress.lag())
        self.metrics.set("stalled_partitions", len(self.progress.stalled()))
        self.metrics.set("open_windows", sum(self.usage.open_windows(p) for p in self.usage.partitions))
        rows = self.metrics.rows()
        try:
            await asyncio.to_thread(self._write_metrics, rows)
        except Exception as exc:  # metrics are best effort; the data path retries on its own
            log.warning("cannot write pipeline_metrics: %s", exc)

    async def _observe_progress(self) -> None:
        """Read the committed and end offsets of the consumed partitions this worker owns from the
        broker (lag, stalled partitions)."""
        owned = [(topic, partition) for topic, partition in self._assignment() if topic in self.logical]
        self.progress.observe(await asyncio.to_thread(self._offsets, owned))

    def _offsets(self, owned: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        if self.group_offsets is None:
            self.group_offsets = GroupOffsets(self.settings)
        return self.group_offsets.offsets(owned)

    def _assignment(self) -> list[tuple[str, int]]:
        """Topic partitions assigned to this worker (none before it joined its group or while a
        rebalance is in progress)."""
        try:
            return sorted((tp.topic, tp.partition) for tp in self.app.consumer.assignment())
        except ConsumerNotStarted:
            return []

    def stalled(self) -> dict[str, dict]:
        """``topic/partition`` -> records waiting and seconds without progress, for the owned
        partitions stalled longer than ``worker_stall_after_s``."""
        return {f"{topic}/{partition}": {"waiting": stall.waiting, "for_s": round(stall.for_s, 1)}
                for (topic, partition), stall in sorted(self.progress.stalled().items())}

    def _write_metrics(self, rows: list[list]) -> None:
        make_client(self.settings).insert(f"{self.settings.clickhouse_database}.pipeline_metrics", rows,
                                          column_names=["time", "worker", "metric", "value"])

    def owned(self) -> list[int]:
        """Usage topic partitions assigned to this worker."""
        return [partition for topic, partition in self._assignment() if topic == self.topics["usage"]]

    def stats(self) -> dict:
        """Counters, gauges and identity of this worker (the `/stats` page), with the next offset to
        store per topic partition and the usage partitions rewound to an offset gap (diagnostics)."""
        return {"worker": self.name, "partitions": self.owned(), "stalled": self.stalled(), **self.metrics.snapshot(),
                "positions": {f"{topic}/{partition}": offset for (topic, partition), offset in sorted(self.positions.items())},
                "rewinding": {str(partition): offset for partition, offset in self.usage.rewinding.items()}}
