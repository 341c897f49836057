"""The local broker for real: round trips with both client libraries, restarts, stale pid files."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from billing.kafka.topics import admin_client
from billing.platform.service import Service

pytestmark = pytest.mark.integration


@pytest.fixture()
def topic(kafka: Service) -> Iterator[str]:
    """A fresh 3-partition topic, deleted afterwards."""
    name = f"test.broker.{uuid.uuid4().hex[:12]}"
    admin = admin_client(kafka.endpoint)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result()
    yield name
    admin.delete_topics([name])[name].result()


def _produce(bootstrap: str, topic: str, records: list[tuple[str, str]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors: list[str] = []
    for key, value in records:
        producer.produce(topic, value=value.encode(), key=key.encode(),
                         on_delivery=lambda err, _msg: err and errors.append(str(err)))
    assert producer.flush(30) == 0
    assert errors == []


def _consume(bootstrap: str, topic: str, count: int) -> list[tuple[str, str]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    received: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                received.append((msg.key().decode(), msg.value().decode()))
    finally:
        consumer.close()
    return received


def _records(n: int) -> list[tuple[str, str]]:
    return [(f"cust-{i % 5}", json.dumps({"seq": i})) for i in range(n)]


def _per_key(records: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in records:
        grouped.setdefault(key, []).append(value)
    return grouped


def test_confluent_round_trip_keeps_per_key_order(kafka: Service, topic: str) -> None:
    sent = _records(200)
    _produce(kafka.endpoint, topic, sent)
    received = _consume(kafka.endpoint, topic, len(sent))
    assert _per_key(received) == _per_key(sent)


def test_aiokafka_round_trip(kafka: Service, topic: str) -> None:
    sent = _records(50)

    async def round_trip() -> list[tuple[str, str]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.endpoint, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for key, value in sent:
                await producer.send(topic, value.encode(), key=key.encode())
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.endpoint, group_id=f"test-{uuid.uuid4().hex}",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        received: list[tuple[str, str]] = []
        try:
            deadline = time.monotonic() + 60
            while len(received) < len(sent) and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    received += [(m.key.decode(), m.value.decode()) for m in batch]
        finally:
            await consumer.stop()
        return received

    assert _per_key(asyncio.run(round_trip())) == _per_key(sent)


def test_restart_keeps_data(kafka: Service, topic: str) -> None:
    sent = _records(100)
    _produce(kafka.endpoint, topic, sent)
    assert kafka.stop() is True
    assert kafka.status().running is False
    assert kafka.start() is True
    assert sorted(_consume(kafka.endpoint, topic, len(sent))) == sorted(sent)


def test_stale_pid_file_is_ignored(kafka: Service) -> None:
    proc = kafka.managed()
    assert kafka.stop() is True
    proc.pid_file.write_text(json.dumps({"pid": os.getpid(), "since_boot": 0.0}))
    assert proc.process() is None
    assert kafka.start() is True
    status = kafka.status()
    assert status.healthy and status.pid not in (None, os.getpid())
