"""Publish invoice versions to the invoices topic (acks=all, idempotent, key = customer id)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Producer

from billing.core.contracts import Invoice, to_bytes
from billing.core.errors import PlatformError, ServiceUnavailable
from billing.kafka.config import producer_config
from billing.settings import Settings

_log = logging.getLogger("billing.invoicing.kafka")
_log.addHandler(logging.NullHandler())
_log.propagate = False


def publish(settings: Settings, invoices: Iterable[Invoice], timeout_s: float = 30.0) -> int:
    """Send every invoice and wait until the broker acknowledged all of them; returns the count.

    Raises :class:`ServiceUnavailable` when the broker or the topic is missing and
    :class:`PlatformError` when any message was not acknowledged.
    """
    topic = settings.topics()["invoices"]
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
    if topic not in metadata.topics:
        raise ServiceUnavailable(f"topic {topic} does not exist on {settings.kafka_bootstrap}; create it with `billing topics create`")
    sent = 0
    for invoice in invoices:
        while True:
            try:
                producer.produce(topic, to_bytes(invoice), invoice.customer_id.encode())
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
    remaining = producer.flush(timeout_s)
    if remaining or failures:
        raise PlatformError(f"{remaining + len(failures)} of {sent} invoice messages were not acknowledged by "
                            f"{settings.kafka_bootstrap}{': ' + failures[0] if failures else ''}; nothing was recorded, re-run")
    return sent
