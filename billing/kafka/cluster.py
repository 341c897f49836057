"""What a cluster's metadata says about replication: brokers, partition leaders, under-replicated
and leaderless partitions (read with one metadata request)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from billing.core.errors import PlatformError, ServiceUnavailable


@dataclass(frozen=True)
class Replication:
    """Replication state of every partition of the cluster (internal topics included)."""

    brokers: frozenset[int]
    partitions: int
    leaders: Counter[int]
    under_replicated: tuple[str, ...]
    """``topic/partition`` of partitions with fewer in-sync replicas than replicas."""
    leaderless: tuple[str, ...]
    """``topic/partition`` of partitions without a leader (unreadable and unwritable)."""


def replication(admin: AdminClient, timeout: float = 5.0) -> Replication:
    """The cluster's replication state as its metadata reports it now."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka is not reachable ({exc.args[0].str()}); check BILLING_KAFKA_BOOTSTRAP.") from exc
    leaders: Counter[int] = Counter()
    under, leaderless, count = [], [], 0
    for name, topic in metadata.topics.items():
        for pid, partition in topic.partitions.items():
            count += 1
            if partition.leader < 0:
                leaderless.append(f"{name}/{pid}")
            else:
                leaders[partition.leader] += 1
            if len(partition.isrs) < len(partition.replicas):
                under.append(f"{name}/{pid}")
    return Replication(brokers=frozenset(metadata.brokers), partitions=count, leaders=leaders,
                       under_replicated=tuple(sorted(under)), leaderless=tuple(sorted(leaderless)))


def wait_for_brokers(admin: AdminClient, count: int, timeout: float) -> Replication:
    """Wait until ``count`` brokers are registered and every partition has its full ISR."""
    deadline = time.monotonic() + timeout
    state: Replication | None = None
    while time.monotonic() < deadline:
        try:
            state = replication(admin, timeout=3)
        except ServiceUnavailable:
            state = None
        if state and len(state.brokers) >= count and not state.under_replicated and not state.leaderless:
            return state
        time.sleep(0.5)
    seen = f"brokers {sorted(state.brokers)}, {len(state.under_replicated)} under-replicated partitions" if state else "no answer"
    raise PlatformError(f"the Kafka cluster did not get {count} brokers with full ISRs within {timeout:.0f}s ({seen}).")
