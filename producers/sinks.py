"""Where simulated records go: a Kafka producer, or a file (tests, dry runs, the HTTP API).

The file format is one record per line: ``<logical topic>\\t<key>\\t<value>\\n``. Values are
compact JSON without raw tabs or newlines (malformed records are truncated JSON, still one line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer

from billing.core.errors import PlatformError, ServiceUnavailable
from billing.kafka.config import producer_config

_log = logging.getLogger("billing.simulate.kafka")
_log.addHandler(logging.NullHandler())
_log.propagate = False


class FileSink:
    """Writes records to a file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb", buffering=1 << 20)

    def send_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Write ``(key, value)`` records of the logical ``topic``."""
        prefix = topic.encode() + b"\t"
        self._file.write(b"".join(prefix + key + b"\t" + value + b"\n" for key, value in records))

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def read_records(path: Path) -> Iterator[tuple[str, bytes, bytes]]:
    """The ``(topic, key, value)`` records of a file written by :class:`FileSink`."""
    with Path(path).open("rb") as handle:
        for line in handle:
            topic, key, value = line.rstrip(b"\n").split(b"\t", 2)
            yield topic.decode(), key, value


class KafkaSink:
    """Idempotent, batching, compressed producer; keys are customer ids."""

    def __init__(self, bootstrap: str, topics: dict[str, str], connect_timeout_s: float = 5.0,
                 compression: str = "lz4"):
        self.topics = topics
        self.bootstrap = bootstrap
        self.failed = 0
        self.first_error: str | None = None
        self._producer = Producer(producer_config(bootstrap, {
            "linger.ms": 100,
            "batch.size": 1_000_000,
            "batch.num.messages": 100_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "compression.type": compression,
            "socket.connection.setup.timeout.ms": int(connect_timeout_s * 1000),
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
        }), logger=_log)
        self._check(connect_timeout_s)

    def _check(self, timeout: float) -> None:
        try:
            metadata = self._producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise ServiceUnavailable(
                f"Kafka broker at {self.bootstrap} is not reachable ({exc.args[0].str()}); "
                "start it with `billing up kafka` or set BILLING_KAFKA_BOOTSTRAP"
            ) from None
        missing = sorted(name for name in self.topics.values() if name not in metadata.topics)
        if missing:
            raise PlatformError(f"topic(s) {', '.join(missing)} do not exist on {self.bootstrap}; run `billing up kafka`")

    def _on_delivery(self, error: KafkaError | None, _message) -> None:
        if error is not None:
            self.failed += 1
            self.first_error = self.first_error or error.str()

    def send_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Produce ``(key, value)`` records to the logical ``topic``, waiting when the queue is full."""
        produce = self._producer.produce
        name = self.topics[topic]
        for key, value in records:
            while True:
                try:
                    produce(name, value, key)
                    break
                except BufferError:
                    self._producer.poll(0.05)
        self._producer.poll(0)

    def close(self, timeout_s: float = 60.0) -> None:
        """Wait for every record to be acknowledged; raise if any was lost."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise PlatformError(f"{remaining} records were not acknowledged by {self.bootstrap} within {timeout_s:g}s")
        if self.failed:
            raise PlatformError(f"{self.failed} records could not be delivered: {self.first_error}")
