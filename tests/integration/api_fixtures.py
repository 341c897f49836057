"""Shared fixtures and helpers of the API integration tests (no tests of its own): the real app on
the test broker, API keys, a topic tail that reads back what the API produced, and scratch
warehouse databases and topics per test module."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore, store_path
from billing.core.contracts import Contract
from billing.kafka.topics import admin_client, ensure_topics, topic_specs
from billing.settings import Settings
from billing.warehouse import facts
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate

ROLLUP_COLUMNS = facts.COLUMNS["usage_rollups"]


def usage_event(subject: str, **overrides) -> dict:
    """A valid usage event document with a fresh id."""
    event = {
        "specversion": "1.0",
        "id": f"evt-{uuid.uuid4().hex}",
        "source": "tests/api",
        "type": "api_calls",
        "subject": subject,
        "time": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "data": {"quantity": "2", "region": "eu", "endpoint": "/v1/search"},
    }
    event.update(overrides)
    return event


_ELECTING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART)


class TopicTail:
    """Reads everything appended to a topic after the tail was opened.

    :meth:`drain` reads up to the end offsets of the moment it is called, so every message whose
    delivery was confirmed before (the API answers only after confirmation) is included, and the
    absence of a message is proven without waiting for a timeout.
    """

    def __init__(self, settings: Settings, topic: str):
        self.topic = topic
        self.consumer = Consumer({
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"tests-api-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,  # short fetches, so watermark queries are not queued behind them
        })
        self.positions = self._end_offsets()
        self.consumer.assign([TopicPartition(topic, p, offset) for p, offset in self.positions.items()])

    def _end_offsets(self, timeout: float = 30.0) -> dict[int, int]:
        """End offset per partition; retries while a new topic's partitions still elect leaders."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
                return {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                        for p in partitions}
            except KafkaException as exc:
                if exc.args[0].code() not in _ELECTING or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def drain(self, timeout: float = 30.0) -> list:
        """Every message appended since the last drain (or the opening), in partition order."""
        targets = self._end_offsets()
        found = []
        deadline = time.monotonic() + timeout
        while any(self.positions[p] < end for p, end in targets.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic}: positions {self.positions} did not reach {targets}")
            message = self.consumer.poll(0.5)
            if message is None or message.error():
                continue
            found.append(message)
            self.positions[message.partition()] = message.offset() + 1
        return found

    def close(self) -> None:
        self.consumer.close()


@contextmanager
def scratch_settings(settings: Settings, tmp_path_factory) -> Iterator[Settings]:
    """``settings`` with a fresh state folder, a migrated scratch database and scratch topics (all
    removed afterwards), so a module's writes and reads touch nothing shared."""
    tag = uuid.uuid4().hex[:10]
    scoped = settings.model_copy(update={
        "state_dir": tmp_path_factory.mktemp("api-state"),
        "clickhouse_database": f"api_{tag}",
        **{f"topic_{logical}": f"tests-api-{tag}.{logical}" for logical in settings.topics()},
    })
    migrate(scoped)
    admin = admin_client(scoped.kafka_bootstrap)
    ensure_topics(admin, list(topic_specs(scoped).values()))
    try:
        yield scoped
    finally:
        _remove(settings, scoped, admin)


def _remove(settings: Settings, scoped: Settings, admin) -> None:
    for future in admin.delete_topics(list(scoped.topics().values()), operation_timeout=30).values():
        future.result()
    client(settings).command(f"DROP DATABASE IF EXISTS {scoped.clickhouse_database}")


def insert(settings: Settings, *models: Contract) -> None:
    """Write ``models`` into the warehouse tables of ``settings`` (as the stream worker would)."""
    rows: facts.Rows = {}
    for model in models:
        facts.merge(rows, facts.rows_for(model))
    ch = client(settings)
    for table, data in rows.items():
        ch.insert(f"{settings.clickhouse_database}.{table}", data, column_names=facts.COLUMNS[table])


def insert_rollups(settings: Settings, rows: list[tuple]) -> None:
    """Write ``usage_rollups`` windows: ``(customer, meter, seconds, start, dimensions, aggregation, value,
    events, version)`` each (``group_key`` is derived from the dimensions)."""
    data = [[customer, meter, seconds, start, facts.group_key(tuple(dims), tuple(dims.values())), dims, aggregation, Decimal(value),
             events, version, 1, start] for customer, meter, seconds, start, dims, aggregation, value, events, version in rows]
    client(settings).insert(f"{settings.clickhouse_database}.usage_rollups", data, column_names=ROLLUP_COLUMNS)


@pytest.fixture(scope="module")
def api_settings(settings: Settings, tmp_path_factory) -> Settings:
    """The test settings with a fresh state folder, so every module has its own key store."""
    return settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("api-state")})


@pytest.fixture(scope="module")
def api(kafka, warehouse, api_settings: Settings) -> Iterator[TestClient]:
    """The API app (real Kafka producer) behind a TestClient, for the module."""
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def keys(api_settings: Settings) -> KeyStore:
    """The key store the API reads."""
    return KeyStore(store_path(api_settings))


def bearer(token: str) -> dict[str, str]:
    """Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}
