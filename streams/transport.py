"""A Faust transport whose consumer hands the records of chosen topics to a handler in batches.

Faust delivers every record on its own: the fetcher awaits two new asyncio tasks per record, the
conductor decodes it into an event, a channel queue hands it to the stream and the stream tracks and
acknowledges it. Profiled, that path alone held a worker to a few thousand records per second. The
consumer here keeps everything else of Faust's aiokafka consumer (group membership, rebalancing,
table recovery, flow control, offset commits from acknowledgements) and changes only the drain loop:
records of a *batch topic* are collected up to a size or an age and passed as one list to the
topic's handler, which acknowledges them itself (:meth:`faust.types.ConsumerT.ack`) once they are
safe; records of other topics take Faust's usual path to their agents.

Registered under the ``billing://`` broker scheme (entry point ``faust.transports`` in
``pyproject.toml``); ``kafka://`` keeps Faust's own consumer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.transport.drivers import aiokafka
from faust.types import TP, Message

BatchHandler = Callable[[list[Message]], Awaitable[None]]
FETCH_MAX_WAIT_MS = 100
"""Longest time the broker holds a fetch with no new data. Faust sets 1,500 ms; the consumer keeps
one fetch per broker in flight, so records arriving on a partition just drained waited for the
long poll of the others (up to 1.5 s of extra delay per batch)."""


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
    """Faust's consumer thread with a short broker long poll (:data:`FETCH_MAX_WAIT_MS`)."""

    def _create_worker_consumer(self, transport: aiokafka.Transport):
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BatchConsumer(aiokafka.Consumer):
    """Faust's aiokafka consumer with batch delivery for the app's :class:`BatchTopics`."""

    def _new_consumer_thread(self) -> BatchConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher) -> None:
        """Fetch records; hand a batch over when it is full or its oldest record is ``within_s`` old
        (by the record's Kafka timestamp, so records that waited in the fetch buffer while the
        previous batch was processed are not held back again)."""
        batches: BatchTopics = self.app.batch_topics
        pending: dict[str, list[Message]] = {}
        due = 0.0
        while not (self._stopped.is_set() or fetcher._stopped.is_set()):
            wait = max(0.0, min(1.0, due - time.time())) if pending else 1.0
            async for tp, message in self.getmany(timeout=wait):
                if not self._first_read(tp, message.offset):
                    continue
                if tp.topic not in batches.handlers:
                    await self.callback(message)
                    continue
                if not pending:
                    due = time.time() + batches.within_s
                due = min(due, message.timestamp + batches.within_s)
                pending.setdefault(tp.topic, []).append(message)
            ready = time.time() >= due or sum(map(len, pending.values())) >= batches.size
            if pending and ready:
                for topic, messages in pending.items():
                    self._processing(messages)
                    await batches.handlers[topic](messages)
                pending = {}

    def _processing(self, messages: list[Message]) -> None:
        """Tell Faust's livelock detector that the partitions of ``messages`` are being processed (it
        watches the stream of every assigned partition and, as batch topics have none, logged "Stream
        has not started processing" for each of them every few seconds)."""
        monitor = self.app.monitor
        if monitor is not None:
            now = time.monotonic()
            for message in messages:
                monitor.stream_inbound_time[message.tp] = now

    def _first_read(self, tp: TP, offset: int) -> bool:
        """False for a record read before (the fetcher may hand out a record again after a seek)."""
        last = self._read_offset[tp]
        if last is not None and offset < last:
            return False
        self._read_offset[tp] = offset
        return True


class Transport(aiokafka.Transport):
    """Faust's aiokafka transport with :class:`BatchConsumer`."""

    Consumer = BatchConsumer
