"""The local 3-node KRaft cluster for real: replicated topics, status, writes with a node down."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource

from billing.kafka.cluster import replication, wait_for_brokers
from billing.kafka.config import producer_config
from billing.kafka.topics import admin_client, topic_specs
from billing.platform import stack
from billing.platform.kafka_broker import KafkaService, active_controller
from billing.settings import Settings

pytestmark = [pytest.mark.cluster, pytest.mark.slow]  # slow: shares the cluster with the failover tests


def test_topics_have_three_in_sync_replicas_on_three_brokers(healthy_cluster, cluster_settings: Settings) -> None:
    admin = admin_client(cluster_settings.kafka_bootstrap)
    metadata = admin.list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    for spec in topic_specs(cluster_settings).values():
        partitions = metadata.topics[spec.name].partitions.values()
        assert len(partitions) == spec.partitions
        for partition in partitions:
            assert sorted(partition.replicas) == [1, 2, 3], (spec.name, partition.id)
            assert sorted(partition.isrs) == [1, 2, 3], (spec.name, partition.id)
        config = admin.describe_configs([ConfigResource("topic", spec.name)])
        values = {name: entry.value for name, entry in next(iter(config.values())).result().items()}
        assert values["min.insync.replicas"] == "2"
        assert values["unclean.leader.election.enable"] == "false"
    assert replication(admin).under_replicated == ()


def test_status_shows_each_broker_and_one_active_controller(healthy_cluster, cluster_settings: Settings) -> None:
    rows = {row.name: row for row in stack.status(cluster_settings) if row.name.startswith("kafka")}
    assert sorted(rows) == ["kafka-1", "kafka-2", "kafka-3"]
    assert all(row.healthy for row in rows.values())
    controllers = [name for name, row in rows.items() if "active controller" in row.details]
    assert controllers == [f"kafka-{active_controller(cluster_settings)}"]
    assert all("0 under-replicated" in row.details for row in rows.values())


def _produce(bootstrap: str, topic: str, count: int) -> list[str]:
    errors: list[str] = []
    producer = Producer(producer_config(bootstrap, {"message.timeout.ms": 30_000}))
    for i in range(count):
        producer.produce(topic, str(i).encode(), f"c-{i % 7}".encode(),
                         on_delivery=lambda err, _msg: err and errors.append(err.str()))
    assert producer.flush(60) == 0
    return errors


def test_a_node_down_leaves_writes_acknowledged_and_shows_under_replication(
        healthy_cluster: list[KafkaService], cluster_settings: Settings) -> None:
    admin = admin_client(cluster_settings.kafka_bootstrap)
    usage = cluster_settings.topic_usage
    leaders = [p.leader for p in admin.list_topics(usage, timeout=10).topics[usage].partitions.values()]
    victim = healthy_cluster[max(set(leaders), key=leaders.count) - 1]
    victim.managed().kill()
    rows = {row.name: row for row in stack.status(cluster_settings)}
    assert not rows[victim.name].running
    assert _produce(cluster_settings.kafka_bootstrap, usage, 2_000) == []
    deadline = time.monotonic() + 60
    while victim.node in (state := replication(admin)).brokers and time.monotonic() < deadline:
        time.sleep(0.5)
    assert victim.node not in state.brokers, "the killed broker is still registered after its session timed out"
    project = {f"{spec.name}/{p}" for spec in topic_specs(cluster_settings).values() for p in range(spec.partitions)}
    assert project <= set(state.under_replicated), "every project partition has a replica on the killed node"
    assert state.leaderless == ()
    victim.start()
    assert not wait_for_brokers(admin, 3, timeout=120).under_replicated


def test_down_stops_every_node_and_up_brings_the_cluster_back(
        healthy_cluster: list[KafkaService], cluster_settings: Settings) -> None:
    names = [node.name for node in healthy_cluster]
    assert dict(stack.down(cluster_settings, names)) == dict.fromkeys(names, True)
    assert not any(node.managed().is_running() for node in healthy_cluster)
    stack.up(cluster_settings, names)
    state = replication(admin_client(cluster_settings.kafka_bootstrap))
    assert state.brokers == {1, 2, 3} and state.under_replicated == ()
    assert {spec.name for spec in topic_specs(cluster_settings).values()} <= set(
        admin_client(cluster_settings.kafka_bootstrap).list_topics(timeout=10).topics)
