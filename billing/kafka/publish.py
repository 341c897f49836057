"""Publish contracts to one of the project's topics and wait for the broker to acknowledge them all.

One durable producer per call (``acks=all``, idempotent, from :func:`~billing.kafka.config.producer_config`),
for the batch writers: the invoice run and the alert scan. Messages are keyed by customer id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Producer

from billing.core.contracts import Contract, to_bytes
from billing.core.errors import PlatformError, ServiceUnavailable
from billing.kafka.config import producer_config
from billing.settings import Settings

_log = logging.getLogger("billing.kafka.publish")
_log.addHandler(logging.NullHandler())
_log.propagate = False


def publish(settings: Settings, topic: str, messages: Iterable[tuple[str, Contract]], what: str,
            timeout_s: float = 30.0) -> int:
    """Send every ``(key, message)`` to the logical ``topic`` and wait until the broker acknowledged all.

    Returns the count. ``what`` names the messages in errors. Raises :class:`ServiceUnavailable`
    when the broker or the topic is missing and :class:`PlatformError` when any message was not
    acknowledged.
    """
    name = settings.topics()[topic]
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message) -> None:
        if error is not None:
            failures.append(error.str())

    producer = Producer(producer_config(settings.kafka_bootstrap, {
        "linger.ms": 20, "socket.connection.setup.timeout.ms": 5000,
        "on_delivery": delivered, "delivery.report.only.error": True,
    }), logger=_log)
    try:
        metadata = producer.list_topics(timeout=5)
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap} is not reachable ({exc.args[0].str()}); "
                                 "start it with `billing up kafka` or set BILLING_KAFKA_BOOTSTRAP") from None
    if name not in metadata.topics:
        raise ServiceUnavailable(f"topic {name} does not exist on {settings.kafka_bootstrap}; create it with `billing topics create`")
    sent = 0
    for key, message in messages:
        while True:
            try:
                producer.produce(name, to_bytes(message), key.encode())
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
    remaining = producer.flush(timeout_s)
    if remaining or failures:
        raise PlatformError(f"{remaining + len(failures)} of {sent} {what} messages were not acknowledged by "
                            f"{settings.kafka_bootstrap}{': ' + failures[0] if failures else ''}; nothing was recorded, re-run")
    return sent
