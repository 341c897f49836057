"""Waiting for a producer's deliveries from asyncio: every message acknowledged, every delivery callback
served on the event loop's thread (the thread that produced), refusals reported."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from billing.kafka.drain import drain
from billing.kafka.topics import admin_client
from billing.platform.service import Service

pytestmark = pytest.mark.integration


def _topic(kafka: Service, config: dict[str, str] | None = None) -> str:
    name = f"test.drain.{uuid.uuid4().hex[:12]}"
    admin = admin_client(kafka.endpoint)
    admin.create_topics([NewTopic(name, 3, 1, config=config or {})])[name].result()
    return name


async def _produce_and_drain(bootstrap: str, topic: str, values: list[bytes]) -> tuple[list, set[int], int]:
    outcomes: list = []
    threads: set[int] = set()

    def delivered(error, message) -> None:
        threads.add(threading.get_ident())
        outcomes.append(error.str() if error else message.offset())

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 0})
    for value in values:
        producer.produce(topic, value, on_delivery=delivered)
    await drain(producer, "test messages")
    return outcomes, threads, len(producer)


def test_drain_waits_for_every_acknowledgement_on_the_loop_thread(kafka: Service):
    topic = _topic(kafka)
    outcomes, threads, left = asyncio.run(_produce_and_drain(kafka.endpoint, topic, [b"x" * 100] * 5_000))
    assert left == 0
    assert len(outcomes) == 5_000 and all(isinstance(offset, int) for offset in outcomes)
    assert threads == {threading.get_ident()}


def test_drain_reports_refused_messages_and_returns(kafka: Service):
    topic = _topic(kafka, {"max.message.bytes": "64"})
    outcomes, _, left = asyncio.run(_produce_and_drain(kafka.endpoint, topic, [b"y" * 1_000] * 3))
    assert left == 0
    assert len(outcomes) == 3 and all(isinstance(reason, str) and "too large" in reason.lower() for reason in outcomes)
