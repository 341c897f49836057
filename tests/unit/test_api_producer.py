import asyncio

from confluent_kafka import KafkaError

from api.producer import _Pending


class Delivered:
    def __init__(self, value: bytes):
        self._value = value

    def value(self) -> bytes:
        return self._value


def test_delivery_reports_in_any_order_fill_the_errors_of_the_right_records():
    loop = asyncio.new_event_loop()
    try:
        finished = []
        pending = _Pending(loop, [b"a", b"b", b"b", b"c"], finished.append)
        error = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
        pending.delivered(None, Delivered(b"c"))
        pending.delivered(error, Delivered(b"b"))
        pending.delivered(None, Delivered(b"a"))
        assert not finished
        pending.delivered(error, Delivered(b"b"))
        assert finished == [pending]
        assert [e is not None for e in pending.errors] == [False, True, True, False]
    finally:
        loop.close()
