"""Consumer lag of the stream workers' group, read from Kafka itself.

The workers commit a source offset only after the records before it are in the warehouse, so a
lag of zero on every consumed topic means everything produced so far is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from billing.core.errors import PlatformError, ServiceUnavailable
from billing.kafka.config import client_config
from billing.settings import Settings

CONSUMED_TOPICS = ("usage", "customers", "subscriptions", "invoices", "payments")


def group_lag(settings: Settings, timeout: float = 10.0) -> dict[str, int]:
    """Topic -> records not yet committed by the worker group (all partitions summed)."""
    consumer = Consumer(client_config(settings.kafka_bootstrap, {
        "group.id": settings.worker_app_id,
        "enable.auto.commit": False,
        "socket.timeout.ms": int(timeout * 1000),
    }))
    try:
        topics = [settings.topics()[name] for name in CONSUMED_TOPICS]
        metadata = consumer.list_topics(timeout=timeout)
        partitions = [TopicPartition(topic, p) for topic in topics if topic in metadata.topics
                      for p in metadata.topics[topic].partitions]
        committed = consumer.committed(partitions, timeout=timeout)
        lag = {topic: 0 for topic in topics}
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            position = tp.offset if tp.offset >= 0 else low
            lag[tp.topic] += max(0, high - position)
        return lag
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"cannot read consumer lag from Kafka at {settings.kafka_bootstrap} ({exc.args[0].str()}); "
            "is `billing up` running?"
        ) from exc
    finally:
        consumer.close()


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
