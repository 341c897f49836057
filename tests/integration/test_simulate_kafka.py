"""`billing simulate` against the real local broker: what the manifest says is what the topics hold."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, TopicPartition

from billing.core.contracts import ContractViolation, parse_usage
from billing.core.meters import load_meters
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from producers.manifest import Manifest
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import KafkaSink

pytestmark = pytest.mark.integration

LOGICAL = ("usage", "customers", "subscriptions", "invoices", "payments")


def _consume_all(bootstrap: str, topic: str) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
        consumer.assign(partitions)
        messages, remaining = [], {p: end for p, end in ends.items() if end > 0}
        while remaining:
            for message in consumer.consume(10_000, timeout=5):
                assert message.error() is None, message.error()
                messages.append(message)
                if message.offset() + 1 >= remaining.get(message.partition(), 0):
                    remaining.pop(message.partition(), None)
        return messages
    finally:
        consumer.close()


def test_records_on_the_broker_match_the_manifest(kafka, settings, tmp_path):
    run = uuid.uuid4().hex[:8]
    topics = {name: f"test.simulate.{run}.{name}" for name in LOGICAL}
    ensure_topics(admin_client(settings.kafka_bootstrap),
                  [TopicSpec(name, settings.kafka_partitions, 1) for name in topics.values()])
    config = SimulationConfig(customers=50, events=20_000, rate=None, seed=99, days=40,
                              start=datetime(2024, 4, 1, tzinfo=UTC),
                              duplicate_rate=0.02, late_rate=0.02, malformed_rate=0.02)
    Simulator(config, load_meters(None), KafkaSink(settings.kafka_bootstrap, topics), tmp_path / "m").run()
    manifest = Manifest.load(tmp_path / "m")

    for logical, name in topics.items():
        messages = _consume_all(settings.kafka_bootstrap, name)
        per_key = Counter(m.key().decode() for m in messages)
        assert dict(per_key) == manifest.record_counts(logical), logical
        partitions_of_key = defaultdict(set)
        for message in messages:
            partitions_of_key[message.key()].add(message.partition())
        assert all(len(p) == 1 for p in partitions_of_key.values()), "one customer, one partition"
        if logical == "usage":
            ids, invalid = Counter(), 0
            for message in messages:
                try:
                    ids[parse_usage(message.value(), now=datetime(2030, 1, 1, tzinfo=UTC)).id] += 1
                except ContractViolation:
                    invalid += 1
            assert invalid == len(manifest.faults("malformed"))
            assert len(ids) == manifest.summary["usage"]["unique_valid"]
            assert sorted(i for i, n in ids.items() for _ in range(n - 1)) == \
                sorted(f.event_id for f in manifest.faults("duplicate"))
