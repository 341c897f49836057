"""Shared fixtures and helpers of the API integration tests (no tests of its own): the real app on
the test broker, API keys, a topic tail that reads back what the API produced."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from confluent_kafka import Consumer, TopicPartition
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore, store_path
from billing.settings import Settings


def usage_event(subject: str, **overrides) -> dict:
    """A valid usage event document with a fresh id."""
    event = {
        "specversion": "1.0",
        "id": f"evt-{uuid.uuid4().hex}",
        "source": "tests/api",
        "type": "api_calls",
        "subject": subject,
        "time": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "data": {"quantity": "2", "region": "eu", "endpoint": "/v1/search"},
    }
    event.update(overrides)
    return event


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
        })
        self.positions = self._end_offsets()
        self.consumer.assign([TopicPartition(topic, p, offset) for p, offset in self.positions.items()])

    def _end_offsets(self) -> dict[int, int]:
        partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        return {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1] for p in partitions}

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
