"""Consumer lag of the stream workers' group, read from Kafka itself.

The workers commit a source offset only after the records before it are in the warehouse, so a
lag of zero on every consumed topic means everything produced so far is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from billing.core.errors import PlatformError, ServiceUnavailable
from billing.kafka.config import QUIET, client_config
from billing.settings import Settings

CONSUMED_TOPICS = ("usage", "customers", "subscriptions", "invoices", "payments")


class GroupOffsets:
    """Committed and end offsets of the worker group's partitions, read from the broker (one
    connection, kept open; the group itself is never joined)."""

    def __init__(self, settings: Settings, timeout: float = 10.0):
        self.settings = settings
        self.timeout = timeout
        self.consumer = Consumer(client_config(settings.kafka_bootstrap, {
            "group.id": settings.worker_app_id,
            "enable.auto.commit": False,
            "socket.timeout.ms": int(timeout * 1000),
            "logger": QUIET,
        }))

    def partitions(self) -> list[tuple[str, int]]:
        """Every partition of the consumed topics that exists."""
        topics = [self.settings.topics()[name] for name in CONSUMED_TOPICS]
        metadata = self._call(self.consumer.list_topics)
        return [(topic, p) for topic in topics if topic in metadata.topics for p in metadata.topics[topic].partitions]

    def offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        """(topic, partition) -> (committed offset, end offset). A partition the group never
        committed counts from its first offset (the workers read it from the beginning)."""
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        if not wanted:
            return {}
        committed = self._call(self.consumer.committed, wanted)
        result = {}
        for tp in committed:
            low, high = self._call(self.consumer.get_watermark_offsets, tp)
            result[(tp.topic, tp.partition)] = (tp.offset if tp.offset >= 0 else low, high)
        return result

    def _call(self, read, *args):
        try:
            return read(*args, timeout=self.timeout)
        except KafkaException as exc:
            raise ServiceUnavailable(
                f"cannot read consumer offsets from Kafka at {self.settings.kafka_bootstrap} ({exc.args[0].str()}); "
                "is `billing up` running?"
            ) from exc

    def close(self) -> None:
        self.consumer.close()


def group_lag(settings: Settings, timeout: float = 10.0) -> dict[str, int]:
    """Topic -> records not yet committed by the worker group (all partitions summed)."""
    offsets = GroupOffsets(settings, timeout)
    try:
        lag = {settings.topics()[name]: 0 for name in CONSUMED_TOPICS}
        for (topic, _), (committed, end) in offsets.offsets(offsets.partitions()).items():
            lag[topic] += max(0, end - committed)
        return lag
    finally:
        offsets.close()


def wait_caught_up(settings: Settings, timeout: float, on_poll: Callable[[int], None] | None = None) -> None:
    """Block until the worker group has no lag; PlatformError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        total = sum(group_lag(settings).values())
        if on_poll:
            on_poll(total)
        if total == 0:
            return
        if time.monotonic() > deadline:
            raise PlatformError(
                f"the stream workers still have {total:,} records to process after {timeout:.0f}s; "
                "check `billing status` and .state/logs/worker.log."
            )
        time.sleep(1.0)
