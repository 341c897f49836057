from types import SimpleNamespace

from faust.sensors.monitor import Monitor
from faust.types import TP, Message

from streams.transport import BatchConsumer


def test_a_batch_marks_its_partitions_as_processing_for_the_livelock_detector():
    """Faust's livelock detector logs "Stream has not started processing" for a partition whose
    stream never saw an event; batch topics have no stream, so the consumer reports for them."""
    monitor = Monitor()
    consumer = SimpleNamespace(app=SimpleNamespace(monitor=monitor))
    messages = [Message("billing.usage", partition, offset, 0.0, 0, {}, b"k", b"v", None)
                for partition, offset in ((0, 10), (0, 11), (3, 7))]
    BatchConsumer._processing(consumer, messages)
    assert set(monitor.stream_inbound_time) == {TP("billing.usage", 0), TP("billing.usage", 3)}
