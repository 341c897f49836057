"""A Faust transport whose consumer hands the records of chosen topics to a handler in batches.

Faust delivers every record on its own: the fetcher awaits two new asyncio tasks per record, the
conductor decodes it into an event, a channel queue hands it to the stream and the stream tracks and
acknowledges it. Profiled, that path alone held a worker to a few thousand records per second. The
consumer here keeps everything else of Faust's aiokafka consumer (group membership, rebalancing,
table recovery, flow control, offset commits from acknowledgements) and changes only the drain loop:
records of a *batch topic* are collected up to a size or an age and passed, per partition as
aiokafka fetched them, to the topic's handler, which acknowledges them itself
(:meth:`BatchConsumer.acknowledge`) once they are safe; records of other topics take Faust's usual
path to their agents, except the table changelogs a recovery reads, which are written to the tables'
RocksDB databases a fetched list at a time (:func:`restore`).

Registered under the ``billing://`` broker scheme (entry point ``faust.transports`` in
``pyproject.toml``); ``kafka://`` keeps Faust's own consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from aiokafka.structs import ConsumerRecord
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka
from faust.types import TP
from rocksdict import WriteBatch

from streams.faust_internals import end_recovery, partition_db, set_fetch_max_wait

BatchHandler = Callable[[dict[TP, list[ConsumerRecord]]], Awaitable[None]]
"""Receives a batch of one topic: the records of each partition, in offset order."""
FETCH_MAX_WAIT_MS = 100
"""Longest time the broker holds a fetch with no new data. Faust sets 1,500 ms; the consumer keeps
one fetch per broker in flight, so records arriving on a partition just drained waited for the
long poll of the others (up to 1.5 s of extra delay per batch)."""
STOP_TIMEOUT_S = 3.0
"""Longest wait for the Kafka consumer to leave its group when the worker stops."""
REBALANCE_POLL_S = 0.05
"""How often a delivery held back during a rebalance checks whether it has ended."""


class BatchTopics:
    """Batch topics of an app: the handler of each and when a batch is due."""

    def __init__(self, size: int, within_s: float):
        self.size = size
        self.within_s = within_s
        self.handlers: dict[str, BatchHandler] = {}

    def register(self, topic: str, handler: BatchHandler) -> None:
        """Send the records of ``topic`` to ``handler`` in batches."""
        self.handlers[topic] = handler


class BatchApp(faust.App):
    """A Faust app with :class:`BatchTopics` (used by :class:`BatchConsumer`)."""

    def __init__(self, *args: Any, batch_size: int, batch_within_s: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batch_topics = BatchTopics(batch_size, batch_within_s)

    def batch_agent(self, topic: faust.TopicT) -> Callable[[BatchHandler], BatchHandler]:
        """Decorator: subscribe to ``topic`` and send its records to the decorated coroutine in batches."""
        def register(handler: BatchHandler) -> BatchHandler:
            self.topics.add(topic)
            for name in topic.topics:
                self.batch_topics.register(name, handler)
            return handler
        return register


class BatchConsumerThread(aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a short broker long poll (:data:`FETCH_MAX_WAIT_MS`) and a
    bounded stop (:data:`STOP_TIMEOUT_S`)."""

    def _create_worker_consumer(self, transport: aiokafka.Transport):
        consumer = super()._create_worker_consumer(transport)
        set_fetch_max_wait(consumer, FETCH_MAX_WAIT_MS)
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int | None]:
        """Seek every assigned partition to its committed offset; return them (None: never
        committed). One offset request for all partitions: aiokafka's own sends one per partition,
        in turn, which took 3-5 s per rebalance on a loaded machine before a worker consumed again."""
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> dict[TP, int | None]:
        consumer = self._ensure_consumer()
        partitions = consumer.assignment()
        stored = await consumer._coordinator.fetch_committed_offsets(list(partitions))
        committed = {}
        for tp in partitions:
            offset = stored[tp].offset if tp in stored and stored[tp].offset >= 0 else None
            committed[tp] = offset
            if offset:
                consumer.seek(tp, offset)
        return committed

    async def on_thread_stop(self) -> None:
        """Stop the Kafka consumer (leave the group) within :data:`STOP_TIMEOUT_S`. The offsets are
        committed before; aiokafka's stop waits for a group join in progress, which the broker
        answers only when the rebalance completes: a worker stopped during a rebalance waited for
        it (up to the session timeout of a dead member) and was killed after 20 s by `billing down`."""
        try:
            await asyncio.wait_for(super().on_thread_stop(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.log.warning("the Kafka consumer did not leave its group within %.0f s (a rebalance is in "
                             "progress); exiting without it: the group drops this worker after its session timeout",
                             STOP_TIMEOUT_S)


class BatchConsumer(aiokafka.Consumer):
    """Faust's aiokafka consumer with batch delivery for the app's :class:`BatchTopics`.

    Batch records are handed over as aiokafka fetched them (lists per partition, no Faust message
    per record) and acknowledged per partition with :meth:`acknowledge`: an offset up to which every
    record is safe. Faust's per-record path (a message object, a scheduling iterator, a locked
    acknowledgement and an index entry per record, sorted at every commit) held two workers to about
    16,000 events/s on a 2-core machine; without it they reached 21,000.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acked_through: dict[TP, int] = {}

    def _new_consumer_thread(self) -> BatchConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def acknowledge(self, tp: TP, offset: int) -> None:
        """Every record of batch partition ``tp`` before ``offset`` is processed: commit up to it."""
        if offset > self._acked_through.get(tp, -1):
            self._acked_through[tp] = offset
            self._acked.setdefault(tp, [])  # Faust commits the partitions listed there

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic in self.app.batch_topics.handlers:
            return self._acked_through.get(tp)
        return super()._new_offset(tp)

    async def seek_to_committed(self) -> Mapping[TP, int | None]:
        """Seek the assigned partitions to their committed offsets, and the source partitions never
        committed to their beginning (the group reads from the earliest offset). Faust seeks back
        this way after it dropped fetched records (flow stopped, a batch fetched before a
        rebalance); aiokafka leaves a partition without a committed offset where it is, so records
        fetched and dropped there were never read again, and later offsets were committed past them."""
        committed = await super().seek_to_committed()
        fresh = [tp for tp, offset in committed.items() if offset is None and self._is_source(tp)]
        if fresh:
            await self._thread.seek_to_beginning(*fresh)
        return committed

    def _is_source(self, tp: TP) -> bool:
        """A partition of a topic the app's agents or batch handlers consume (not a changelog)."""
        return tp.topic in self.app.batch_topics.handlers or (
            self.app.topics.acks_enabled_for(tp.topic) and not self._is_changelog_tp(tp))

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Also drop the changelog records queued for table recovery: Faust's recovery loop applies a
        record of a changelog partition it no longer recovers to the table of the record before it
        (with that table's store noting the other changelog's offset as its own: a churn run crashed
        on "persisted offset ... is higher than the highwater"). Every rebalance seeks the changelogs
        back to their stores' offsets, so nothing dropped is lost."""
        for tp in revoked:
            self._acked_through.pop(tp, None)
        self.app.tables.changelog_queue.clear()
        await super().on_partitions_revoked(revoked)

    async def _drain_messages(self, fetcher) -> None:
        """Fetch records; hand a batch over when it is full or its oldest record is ``within_s`` old
        (by the record's Kafka timestamp, so records that waited in the fetch buffer while the
        previous batch was processed are not held back again). A batch fetched before a rebalance is
        dropped: Faust seeks every partition it still owns back to its committed offset.

        The app's stop cancels the loop, which ends it (as in Faust's own loop): Faust's fetcher
        takes a cancellation while the app is rebalancing for a crash, and a worker stopped during
        a rebalance exited with "We experienced a crash"."""
        try:
            await self._drain(fetcher)
        except asyncio.CancelledError:
            if not self.app.should_stop:
                raise

    async def _drain(self, fetcher) -> None:
        batches: BatchTopics = self.app.batch_topics
        pending: dict[TP, list[ConsumerRecord]] = {}
        size = 0
        due = 0.0
        generation = None
        while not (self._stopped.is_set() or fetcher._stopped.is_set()):
            wait = max(0.0, min(1.0, due - time.time())) if pending else 1.0
            fetched = await self._fetch(wait)
            if pending and self.app.consumer_generation_id != generation:
                self.log.info("dropped %d records fetched before a rebalance (read again from the committed offsets)", size)
                pending, size = {}, 0
            for tp, records in fetched.items():
                if tp.topic not in batches.handlers:
                    await self._deliver(tp, records)
                    continue
                if not pending:
                    due, generation = time.time() + batches.within_s, self.app.consumer_generation_id
                due = min(due, min(record.timestamp for record in records) / 1000 + batches.within_s)
                pending.setdefault(tp, []).extend(records)
                size += len(records)
            if pending and (time.time() >= due or size >= batches.size):
                await self._hand_over(pending)
                pending, size = {}, 0

    async def _fetch(self, timeout: float) -> dict[TP, list[ConsumerRecord]]:
        """Records fetched within ``timeout`` for the active partitions, each not read before (the
        fetcher may hand out a record again after a seek)."""
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return {}
        if not self.flow_active:
            try:
                await self.perform_seek()
            except Exception as exc:  # as Faust's own fetch loop: the next fetch tries again
                self.log.warning("cannot seek back to the committed offsets: %r", exc)
            return {}
        fetched = {}
        for tp, batch in records.items():
            if active is None or tp in active or tp in self._buffered_partitions:
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                batch = self._unread(tp, batch)
                if batch:
                    fetched[tp] = batch
            else:  # paused while the fetch was under way: read these again when it resumes
                with contextlib.suppress(IllegalStateError):  # revoked: the next assignment resets it
                    await self.seek(tp, batch[0].offset)
        return fetched

    def _unread(self, tp: TP, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        last = self._read_offset[tp]
        if last is not None and records[0].offset < last:
            records = [record for record in records if record.offset >= last]
        if records:
            self._read_offset[tp] = records[-1].offset
        return records

    async def _deliver(self, tp: TP, records: list[ConsumerRecord]) -> None:
        """Faust's usual path: one message at a time to the topic's agents (stops on a rebalance).

        Records of a source topic fetched before the rebalance in progress is complete wait for its
        end. Faust resumes the source partitions and seeks them to their committed offsets before
        it ends a rebalance, and only then clears the agents' queues (``FlowControlEvent.resume``):
        records queued in between were dropped after they had been read, and stayed unprocessed
        and uncommitted until a later rebalance or restart read them again."""
        generation = self.app.consumer_generation_id
        if self._is_changelog_tp(tp):
            recovery = self.app.tables.recovery
            if tp in recovery.active_tps:
                if self.flow_active:
                    restore(recovery, tp, records)
                return
            if tp not in recovery.standby_tps:  # not the current assignment's: see on_partitions_revoked
                return
        else:
            await self._rebalance_completed()
        for record in records:
            if self.app.consumer_generation_id != generation or not self.flow_active:
                return
            await self.callback(self._to_message(tp, record))

    async def _rebalance_completed(self) -> None:
        """Return once the app is not rebalancing (or the consumer stops)."""
        while self.app.rebalancing and not self.should_stop:
            await asyncio.sleep(REBALANCE_POLL_S)

    async def _hand_over(self, pending: dict[TP, list[ConsumerRecord]]) -> None:
        by_topic: dict[str, dict[TP, list[ConsumerRecord]]] = {}
        for tp, records in pending.items():
            by_topic.setdefault(tp.topic, {})[tp] = records
        self._processing(pending)
        for topic, batch in by_topic.items():
            await self.app.batch_topics.handlers[topic](batch)

    def _processing(self, tps: Iterable[TP]) -> None:
        """Tell Faust's livelock detector that partitions ``tps`` are being processed (it watches the
        stream of every assigned partition and, as batch topics have none, logged "Stream has not
        started processing" for each of them every few seconds)."""
        monitor = self.app.monitor
        if monitor is not None:
            now = time.monotonic()
            for tp in tps:
                monitor.stream_inbound_time[tp] = now


def restore(recovery: Recovery, tp: TP, records: list[ConsumerRecord]) -> None:
    """Apply fetched records of changelog partition ``tp``, which the recovery of the current
    assignment restores, to their table's RocksDB database: those past the offset restored so far,
    in one write batch with the offset they bring the database to (so a crash keeps both or neither).
    End the recovery once every restored changelog partition has reached its high watermark.

    Faust's recovery takes the records one at a time: a message object, a queue hand-over and an
    event-loop iteration per record, and a look at every partition's progress after each, about
    1,000-3,300 records/s on a loaded core. Records fetched outside a recovery are left alone: the worker
    writes its own changelog afterwards, and the next recovery reads on from the stored offset."""
    if not recovery.in_recovery:
        return
    seen = recovery.active_offsets[tp]
    fresh = [record for record in records if seen is None or record.offset > seen]
    if fresh:
        table = recovery.tp_to_table[tp]
        batch = WriteBatch(raw_mode=True)
        for record in fresh:
            if record.value is None:
                batch.delete(record.key)
            else:
                batch.put(record.key, record.value)
        batch.put(table.data.offset_key, str(fresh[-1].offset).encode())
        partition_db(table, tp.partition).write(batch)
        recovery.active_offsets[tp] = fresh[-1].offset
    if not recovery.need_recovery():
        end_recovery(recovery)


class Transport(aiokafka.Transport):
    """Faust's aiokafka transport with :class:`BatchConsumer`."""

    Consumer = BatchConsumer
