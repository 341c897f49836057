from collections import defaultdict
from types import SimpleNamespace

from aiokafka.structs import ConsumerRecord
from faust.sensors.monitor import Monitor
from faust.types import TP

from streams.transport import BatchConsumer, BatchTopics

USAGE = "billing.usage"


def _consumer() -> BatchConsumer:
    """A BatchConsumer's bookkeeping without a broker: only the attributes the tested methods use."""
    topics = BatchTopics(size=10, within_s=1.0)
    topics.register(USAGE, None)
    consumer = BatchConsumer.__new__(BatchConsumer)
    consumer.app = SimpleNamespace(monitor=Monitor(), batch_topics=topics)
    consumer._acked_through = {}
    consumer._acked = defaultdict(list)
    consumer._read_offset = {}
    return consumer


def _records(partition: int, *offsets: int) -> list[ConsumerRecord]:
    return [ConsumerRecord(USAGE, partition, offset, 0, 0, b"k", b"v", None, 1, 1, ()) for offset in offsets]


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
    consumer._read_offset[tp] = None
    assert [r.offset for r in consumer._unread(tp, _records(1, 5, 6, 7))] == [5, 6, 7]
    assert [r.offset for r in consumer._unread(tp, _records(1, 6, 7, 8, 9))] == [7, 8, 9]
    assert consumer._unread(tp, _records(1, 3, 4)) == []
    assert consumer._read_offset[tp] == 9
