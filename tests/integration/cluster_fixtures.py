"""The local 3-node KRaft cluster, started once per session on its own ports and state folder
(``BILLING_TEST_CLUSTER_BOOTSTRAP`` / ``BILLING_TEST_CLUSTER_CONTROLLER_PORT``: the first node's
ports, default 19292/19293; the nodes use them + 0, 2, 4, clear of test_kafka_faults' 19192/19193; state in
``<session state>-cluster``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from billing.kafka.cluster import wait_for_brokers
from billing.kafka.topics import admin_client
from billing.platform import stack
from billing.platform.kafka_broker import KafkaService, kafka_services
from billing.settings import Settings

BROKERS = 3


@pytest.fixture(scope="session")
def cluster_settings(settings: Settings) -> Settings:
    """The session's settings (its warehouse and credentials) with a 3-node local cluster instead of
    the single broker."""
    kafka = Settings(
        kafka_brokers=BROKERS,
        kafka_bootstrap=os.environ.get("BILLING_TEST_CLUSTER_BOOTSTRAP", "127.0.0.1:19292"),
        kafka_controller_port=int(os.environ.get("BILLING_TEST_CLUSTER_CONTROLLER_PORT", "19293")),
    )
    fields = ("kafka_brokers", "kafka_bootstrap", "kafka_controller_port", "kafka_replication")
    state_dir = settings.state_dir.with_name(f"{settings.state_dir.name}-cluster")
    return settings.model_copy(update={"state_dir": state_dir,
                                       **{name: getattr(kafka, name) for name in fields}})


@pytest.fixture(scope="session")
def kafka_cluster(cluster_settings: Settings) -> Iterator[list[KafkaService]]:
    """The cluster's nodes, started (topics created, every partition fully replicated)."""
    nodes = kafka_services(cluster_settings)
    names = [node.name for node in nodes]
    stack.up(cluster_settings, names)
    yield nodes
    if not os.environ.get("BILLING_TEST_KEEP"):
        stack.down(cluster_settings, names)


@pytest.fixture()
def healthy_cluster(kafka_cluster: list[KafkaService], cluster_settings: Settings) -> list[KafkaService]:
    """The cluster with every node running and every partition's ISR full (a test before may have
    stopped a node)."""
    for node in kafka_cluster:
        if not node.managed().is_running():
            node.start()
    wait_for_brokers(admin_client(cluster_settings.kafka_bootstrap), BROKERS, timeout=120)
    return kafka_cluster
