import asyncio
import logging
import time
from collections import defaultdict
from types import SimpleNamespace

import pytest
from aiokafka.structs import ConsumerRecord
from faust.sensors.monitor import Monitor
from faust.stores.rocksdb import Store
from faust.types import TP
from mode.utils.queues import FlowControlEvent, ThrowableQueue
from rocksdict import Options, Rdict

from streams.transport import BatchConsumer, BatchTopics, restore

USAGE = "billing.usage"
SUBSCRIPTIONS = "billing.subscriptions"
OFFSET_KEY = Store.offset_key


def _consumer() -> BatchConsumer:
    """A BatchConsumer's bookkeeping without a broker: only the attributes the tested methods use."""
    topics = BatchTopics(size=10, within_s=1.0)
    topics.register(USAGE, None)
    consumer = BatchConsumer.__new__(BatchConsumer)
    consumer.app = SimpleNamespace(monitor=Monitor(), batch_topics=topics)
    consumer._acked_through = {}
    consumer._acked = defaultdict(list)
    consumer._read_offset = defaultdict(lambda: None)
    consumer.log = logging.getLogger("billing.test")
    consumer._stopped = asyncio.Event()
    consumer._crashed = asyncio.Event()
    return consumer


def _records(partition: int, *offsets: int, timestamp_ms: int = 0, topic: str = USAGE) -> list[ConsumerRecord]:
    return [ConsumerRecord(topic, partition, offset, timestamp_ms, 0, b"k", b"v", None, 1, 1, ()) for offset in offsets]


def test_a_batch_marks_its_partitions_as_processing_for_the_livelock_detector():
    """Faust's livelock detector logs "Stream has not started processing" for a partition whose
    stream never saw an event; batch topics have no stream, so the consumer reports for them."""
    consumer = _consumer()
    consumer._processing([TP(USAGE, 0), TP(USAGE, 3)])
    assert set(consumer.app.monitor.stream_inbound_time) == {TP(USAGE, 0), TP(USAGE, 3)}


def test_acknowledged_offsets_are_committed_per_partition_and_never_move_back():
    consumer = _consumer()
    tp = TP(USAGE, 2)
    assert consumer._new_offset(tp) is None
    consumer.acknowledge(tp, 120)
    assert tp in consumer._acked  # Faust commits only partitions listed there
    consumer.acknowledge(tp, 100)  # an older batch, or a partition held back at an offset gap
    assert consumer._new_offset(tp) == 120
    consumer.acknowledge(tp, 150)
    assert consumer._new_offset(tp) == 150


def test_records_read_before_a_seek_are_not_handed_out_again():
    consumer = _consumer()
    tp = TP(USAGE, 1)
    assert [r.offset for r in consumer._unread(tp, _records(1, 5, 6, 7))] == [5, 6, 7]
    assert [r.offset for r in consumer._unread(tp, _records(1, 6, 7, 8, 9))] == [7, 8, 9]
    assert consumer._unread(tp, _records(1, 3, 4)) == []
    assert consumer._read_offset[tp] == 9


def test_batches_are_cut_by_size_and_a_batch_fetched_before_a_rebalance_is_dropped():
    consumer = _consumer()
    handed: list[dict] = []

    async def handler(batch):
        handed.append(batch)

    consumer.app.batch_topics.handlers[USAGE] = handler
    consumer.app.consumer_generation_id = 1
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    now_ms = int(time.time() * 1000)

    def fresh(partition: int, *offsets: int) -> list[ConsumerRecord]:
        return _records(partition, *offsets, timestamp_ms=now_ms)

    fetches = [
        {TP(USAGE, 0): fresh(0, 1, 2, 3)},  # not due yet: 3 of 10 records, 1 s to wait
        "rebalance",
        {TP(USAGE, 1): fresh(1, *range(10, 20))},  # full: handed over alone
        {TP(USAGE, 2): fresh(2, *range(5, 10)), TP(USAGE, 3): fresh(3, *range(0, 5))},  # full: both
    ]

    async def fetch(timeout):
        step = fetches.pop(0) if fetches else None
        if step == "rebalance":
            consumer.app.consumer_generation_id += 1
            step = {}
        if step is None:
            consumer._stopped.set()
            return {}
        return {tp: consumer._unread(tp, records) for tp, records in step.items()}

    consumer._fetch = fetch
    asyncio.run(consumer._drain_messages(fetcher))
    assert [{tp.partition: [r.offset for r in records] for tp, records in batch.items()} for batch in handed] == [
        {1: list(range(10, 20))},
        {2: list(range(5, 10)), 3: list(range(0, 5))},
    ]


def test_records_fetched_while_a_rebalance_completes_reach_the_agents_after_faust_clears_their_queues(tmp_path):
    """Faust resumes the source partitions of a new assignment and seeks them while it completes the
    rebalance; its flow control was resumed earlier (recovery), so records fetched then could be
    queued for the agents, and the final ``flow_control.resume()`` cleared the queues: the records
    were read but never processed nor committed (issue 20: offset 149 of 151 stuck for 17
    rebalances)."""
    consumer = _consumer()
    flow = FlowControlEvent(initially_suspended=False)
    queue = ThrowableQueue(flow_control=flow, clear_on_resume=True)  # an agent's channel queue

    async def callback(message):  # the conductor: the records of source topics to an agent
        await flow.acquire()
        queue.put_nowait(message.offset)

    consumer.callback = callback
    consumer._to_message = lambda tp, record: record
    consumer.flow_active = True
    consumer.app.rebalancing = True
    consumer.app.consumer_generation_id = 5
    changelog = TP("app-payments-changelog", 1)
    recovery = _Recovery(tmp_path, {changelog: 10})
    consumer.app.tables = SimpleNamespace(changelog_topics={changelog.topic}, recovery=recovery)

    async def rebalance_ends_after_records_were_fetched():
        await consumer._deliver(changelog, _records(1, 7, topic=changelog.topic))
        assert recovery.restored(changelog) == 7  # table recovery reads its changelogs during the rebalance
        delivering = asyncio.ensure_future(consumer._deliver(TP(SUBSCRIPTIONS, 1),
                                                             _records(1, 149, 150, topic=SUBSCRIPTIONS)))
        await asyncio.sleep(0.2)  # Faust seeks the resumed partitions to their committed offsets
        flow.resume()  # ... and clears the agents' queues
        consumer.app.rebalancing = False  # app.on_rebalance_end()
        await delivering

    asyncio.run(rebalance_ends_after_records_were_fetched())
    assert [queue.get_nowait() for _ in range(queue.qsize())] == [149, 150]


def test_changelog_records_reach_the_table_recovery_only_for_the_partitions_it_reads(tmp_path):
    """Faust's recovery applies a record of a changelog partition it no longer recovers to the table
    of the record before it, whose store then notes the other changelog's offset as its own (a churn
    run crashed: persisted offset higher than the changelog's end)."""
    consumer = _consumer()
    recovering, gone = TP("app-dedup-changelog", 0), TP("app-windows-changelog", 1)
    recovery = _Recovery(tmp_path, {recovering: 10})
    consumer.flow_active = True
    consumer.app.consumer_generation_id = 5
    consumer.app.tables = SimpleNamespace(changelog_topics={recovering.topic, gone.topic}, recovery=recovery)

    async def deliver():
        await consumer._deliver(gone, _records(1, 40, topic=gone.topic))
        await consumer._deliver(recovering, _records(0, 7, topic=recovering.topic))

    asyncio.run(deliver())
    assert recovery.restored(recovering) == 7
    assert recovery.restored(gone) is None and gone not in recovery.active_offsets


def test_a_recovered_changelog_is_applied_in_one_write_with_its_offset_and_ends_the_recovery_at_its_end(tmp_path):
    """Records up to the changelog's last offset are written to the table's database (deletes too),
    those already restored are skipped, the database notes the offset it reached, and the recovery
    ends with the record that completes it; outside a recovery nothing is applied."""
    tp = TP("app-dedup-changelog", 2)
    recovery = _Recovery(tmp_path, {tp: 6}, restored={tp: 2})
    db = recovery.tp_to_table[tp].data._db_for_partition(2)
    db[b"gone"] = b"x"
    records = [ConsumerRecord(tp.topic, 2, offset, 0, 0, key, value, None, 1, 1, ())
               for offset, key, value in [(1, b"old", b"1"), (2, b"old", b"2"), (3, b"a", b"3"), (4, b"gone", None)]]
    restore(recovery, tp, records)
    assert (db.get(b"old"), db[b"a"], db.get(b"gone")) == (None, b"3", None)
    assert recovery.restored(tp) == 4 and recovery.in_recovery
    restore(recovery, tp, [ConsumerRecord(tp.topic, 2, offset, 0, 0, b"b", b"%d" % offset, None, 1, 1, ())
                           for offset in (5, 6)])
    assert db[b"b"] == b"6" and recovery.restored(tp) == 6
    assert not recovery.in_recovery and recovery.signal_recovery_end.is_set() and recovery.flushed
    restore(recovery, tp, [ConsumerRecord(tp.topic, 2, 7, 0, 0, b"b", b"late", None, 1, 1, ())])
    assert db[b"b"] == b"6" and recovery.restored(tp) == 6


class _Recovery(SimpleNamespace):
    """The parts of Faust's table recovery that :func:`restore` uses, over real RocksDB databases:
    active changelog partitions -> their last offset, restored up to ``restored`` (-1: nothing)."""

    def __init__(self, folder, last: dict[TP, int], restored: dict[TP, int] | None = None):
        dbs: dict[TP, Rdict] = {}

        def table(tp: TP):
            db = dbs[tp] = Rdict(str(folder / f"{tp.topic}-{tp.partition}"), options=Options(raw_mode=True))
            return SimpleNamespace(data=SimpleNamespace(offset_key=OFFSET_KEY, _db_for_partition=lambda _: db))

        super().__init__(active_tps=set(last), standby_tps=set(), active_highwaters=dict(last), in_recovery=True,
                         active_offsets={tp: (restored or {}).get(tp, -1) for tp in last},
                         tp_to_table={tp: table(tp) for tp in last}, signal_recovery_end=asyncio.Event(),
                         flushed=False)
        self.dbs = dbs

    def restored(self, tp: TP) -> int | None:
        """The offset the database of ``tp`` notes as restored (None: none)."""
        raw = self.dbs[tp].get(OFFSET_KEY) if tp in self.dbs else None
        return None if raw is None else int(raw)

    def need_recovery(self) -> bool:
        return any(self.active_offsets[tp] < last for tp, last in self.active_highwaters.items())

    def flush_buffers(self) -> None:
        self.flushed = True

    def _set_recovery_ended(self) -> None:
        self.in_recovery = False


def test_a_stop_that_cancels_the_drain_loop_ends_it_and_any_other_cancellation_propagates():
    """Faust's fetcher takes a cancelled drain loop for a crash while the app is rebalancing: a
    worker stopped (SIGTERM) during a rebalance exited with "We experienced a crash"."""
    consumer = _consumer()
    fetcher = SimpleNamespace(_stopped=asyncio.Event())

    async def cancelled(timeout):
        raise asyncio.CancelledError

    consumer._fetch = cancelled
    consumer.app.should_stop = True
    asyncio.run(consumer._drain_messages(fetcher))
    consumer.app.should_stop = False
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(consumer._drain_messages(fetcher))


def test_seeking_back_to_the_committed_offsets_sends_never_committed_source_partitions_to_their_beginning():
    """aiokafka leaves a partition without a committed offset where it is: records fetched and
    dropped there (flow stopped, a batch fetched before a rebalance) were never read again."""
    consumer = _consumer()
    changelog, subscriptions = TP("app-windows-changelog", 2), TP(SUBSCRIPTIONS, 2)
    usage, committed_usage = TP(USAGE, 2), TP(USAGE, 3)
    consumer.app.tables = SimpleNamespace(changelog_topics={changelog.topic})
    consumer.app.topics = SimpleNamespace(acks_enabled_for=lambda topic: topic in {USAGE, SUBSCRIPTIONS})
    sought: list[TP] = []

    async def seek_to_committed():
        return {changelog: None, subscriptions: None, usage: None, committed_usage: 40}

    async def seek_to_beginning(*partitions):
        sought.extend(partitions)

    consumer._thread = SimpleNamespace(seek_to_committed=seek_to_committed, seek_to_beginning=seek_to_beginning)
    asyncio.run(consumer.seek_to_committed())
    assert sorted(sought) == [subscriptions, usage]


def test_the_consumer_thread_seeks_to_the_committed_offsets_fetched_in_one_request():
    from aiokafka.structs import OffsetAndMetadata

    from streams.transport import BatchConsumerThread

    committed_tp, never, reset = TP(USAGE, 0), TP(USAGE, 1), TP(SUBSCRIPTIONS, 0)
    requests, sought = [], {}

    async def fetch_committed_offsets(partitions):
        requests.append(sorted(partitions))
        return {committed_tp: OffsetAndMetadata(120, ""), reset: OffsetAndMetadata(-1, "")}

    kafka = SimpleNamespace(assignment=lambda: {committed_tp, never, reset},
                            _coordinator=SimpleNamespace(fetch_committed_offsets=fetch_committed_offsets),
                            seek=lambda tp, offset: sought.__setitem__(tp, offset))
    thread = BatchConsumerThread.__new__(BatchConsumerThread)
    thread._ensure_consumer = lambda: kafka
    assert asyncio.run(thread._seek_to_committed()) == {committed_tp: 120, never: None, reset: None}
    assert requests == [sorted([committed_tp, never, reset])] and sought == {committed_tp: 120}
