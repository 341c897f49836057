"""The project's topics on the real broker: created with their specs, idempotently."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import ConfigResource, NewTopic

from billing.core.errors import PlatformError
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics, partition_counts, topic_specs
from billing.platform.kafka_broker import KafkaService
from billing.platform.service import Service
from billing.settings import Settings

pytestmark = pytest.mark.integration


def test_configured_topics_exist_with_their_specs(kafka: Service, settings: Settings) -> None:
    admin = admin_client(kafka.endpoint)
    counts = partition_counts(admin)
    specs = topic_specs(settings)
    assert {spec.name: counts.get(spec.name) for spec in specs.values()} == {
        spec.name: spec.partitions for spec in specs.values()
    }
    resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs.values()]
    described = {res.name: future.result() for res, future in admin.describe_configs(resources).items()}
    for spec in specs.values():
        for key, value in spec.config.items():
            assert described[spec.name][key].value == value, (spec.name, key)


def test_creating_again_is_a_no_op(kafka: Service, settings: Settings) -> None:
    admin = admin_client(kafka.endpoint)
    before = partition_counts(admin)
    assert ensure_topics(admin, list(topic_specs(settings).values())) == []
    assert partition_counts(admin) == before


def test_partition_mismatch_is_reported_not_changed(kafka: Service) -> None:
    admin = admin_client(kafka.endpoint)
    name = f"test.topics.{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result()
    try:
        with pytest.raises(PlatformError, match=f"{name} has 2 \\(configured 3\\)"):
            ensure_topics(admin, [TopicSpec(name=name, partitions=3, replication=1)])
        assert partition_counts(admin)[name] == 2
    finally:
        admin.delete_topics([name])[name].result()


def test_external_cluster_is_used_not_managed(kafka: Service, settings: Settings) -> None:
    host_port = kafka.endpoint
    external = KafkaService(settings.model_copy(update={"kafka_bootstrap": f"{host_port},{host_port}"}))
    assert external.start() is False
    assert external.stop() is False
    assert kafka.status().healthy
    specs = topic_specs(settings).values()
    assert len(specs) == 9  # usage, customers, subscriptions, invoices, credit notes, payments, alerts, report jobs, dead letters
    assert external.details() == f"{len(specs)}/{len(specs)} topics, {sum(s.partitions for s in specs)} partitions"
