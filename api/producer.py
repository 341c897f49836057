"""The API's Kafka producer: acks=all, idempotent, and awaitable delivery reports.

``send`` queues a list of records and returns, per record, ``None`` when the broker confirmed it
(written to all in-sync replicas) or the error text. A background thread serves librdkafka's
delivery callbacks and hands the results to the asyncio loop, so the event loop never blocks on
the broker. Keys use the murmur2 partitioner, like the Java client, aiokafka and Faust, so every
producer puts one customer's events on the same partition.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, KafkaException, Producer

from billing.kafka import config as kafka_config
from billing.settings import Settings

log = logging.getLogger("api.kafka")
_quiet = logging.getLogger("api.kafka.client")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

Record = tuple[bytes, bytes]
"""(key, value)"""


def producer_config(settings: Settings) -> dict:
    """librdkafka settings of the API producer."""
    return kafka_config.producer_config(settings.kafka_bootstrap, {
        "partitioner": "murmur2_random",
        "linger.ms": settings.api_linger_ms,
        "message.timeout.ms": int(settings.api_delivery_timeout_s * 1000),
        "queue.buffering.max.messages": 500_000,
        "socket.timeout.ms": 5000,
        "logger": _quiet,
    })


class _Pending:
    """Delivery results of one ``send`` call; handed to ``completed`` once every record is reported.

    Every record shares one delivery callback (a closure per record cost more than the rest of the
    bookkeeping); a failed record is found by its value, which is unique within a request."""

    __slots__ = ("future", "errors", "remaining", "completed", "lock", "timer", "values")

    def __init__(self, loop: asyncio.AbstractEventLoop, values: Sequence[bytes], completed: Callable[[_Pending], None]):
        self.future: asyncio.Future = loop.create_future()
        self.errors: list[str | None] = [None] * len(values)
        self.remaining = len(values)
        self.completed = completed
        self.lock = threading.Lock()
        self.timer: asyncio.TimerHandle | None = None
        self.values = values

    def report(self, index: int, error: str | None) -> None:
        """Record the outcome of the record at ``index`` (from either thread)."""
        with self.lock:
            self._report(index, error)

    def _report(self, index: int, error: str | None) -> None:
        if error is not None:
            self.errors[index] = error
        self.remaining -= 1
        if self.remaining == 0:
            self.completed(self)

    def delivered(self, err: KafkaError | None, msg) -> None:
        """librdkafka's delivery report of one record."""
        with self.lock:
            if err is None:
                self._report(0, None)
            else:
                value = msg.value()
                index = next(i for i, v in enumerate(self.values) if v == value and self.errors[i] is None)
                self._report(index, err.str())

    def finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.future.done():
            self.future.set_result(self.errors)

    def expire(self, timeout: float) -> None:
        """Give up waiting: every record counts as failed (resending is safe, ids dedupe)."""
        if not self.future.done():
            self.future.set_result([err or f"no delivery report within {timeout:.0f}s" for err in self.errors])


def _finish_all(pendings: list[_Pending]) -> None:
    for pending in pendings:
        pending.finish()


class EventProducer:
    """One confluent-kafka producer per API worker plus its delivery-report thread.

    The thread serves librdkafka's delivery reports and, after each poll, wakes the event loop
    once with every request completed in it (not once per request).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer = Producer(producer_config(settings))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: list[_Pending] = []
        self._done_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve_callbacks, name="api-kafka-poll", daemon=True)
        self._thread.start()

    def _completed(self, pending: _Pending) -> None:
        with self._done_lock:
            self._done.append(pending)

    def _serve_callbacks(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)
            self._hand_over()

    def _hand_over(self) -> None:
        """Resolve the requests completed since the last call on the event loop."""
        with self._done_lock:
            done, self._done = self._done, []
        if not done:
            return
        try:
            self._loop.call_soon_threadsafe(_finish_all, done)
        except RuntimeError:  # the loop is gone (shutdown flush)
            pass

    async def send(self, topic: str, records: Sequence[Record]) -> list[str | None]:
        """Produce ``records`` and wait for their delivery reports; per record None or an error."""
        if not records:
            return []
        self._loop = asyncio.get_running_loop()
        pending = _Pending(self._loop, [value for _, value in records], self._completed)
        produce, delivered = self._producer.produce, pending.delivered
        for index, (key, value) in enumerate(records):
            while True:
                try:
                    produce(topic, value, key, on_delivery=delivered)
                    break
                except BufferError:  # local queue full: let the poll thread drain it
                    await asyncio.sleep(0.005)
                except KafkaException as exc:
                    pending.report(index, exc.args[0].str())
                    break
        timeout = self.settings.api_delivery_timeout_s + 2.0
        pending.timer = self._loop.call_later(timeout, pending.expire, timeout)
        return await pending.future

    def ping(self, timeout: float = 2.0) -> bool:
        """True when the cluster answers a metadata request for the usage topic."""
        try:
            metadata = self._producer.list_topics(self.settings.topic_usage, timeout=timeout)
        except KafkaException:
            return False
        topic = metadata.topics.get(self.settings.topic_usage)
        return topic is not None and topic.error is None

    def close(self, timeout: float = 10.0) -> int:
        """Flush outstanding messages and stop; returns how many were left undelivered."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        left = self._producer.flush(timeout)
        if left:
            log.warning("%d messages were not delivered before shutdown", left)
        return left

