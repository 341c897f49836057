"""The project's Kafka topics: their partition counts and configs, created idempotently.

Every topic is keyed by the customer id, so topics that streams join (usage, customers,
subscriptions, invoices, payments) share one partition count and stay co-partitioned. Only the
dead-letter topic, which nothing joins, is a single partition. Usage events are high volume and
are kept for the configured retention (the warehouse keeps their rollups); the business records
(customers, subscriptions, invoices, credit notes, payments) and the fired alerts are low volume and kept forever
so a replay can rebuild every table; dead letters are kept at least 30 days so someone can look at them.
Report jobs (the queue of `billing reports worker`) are keyed by job id instead, so one customer's many
reports spread over the workers; they are kept for the configured retention (the job states live in the
warehouse's ``report_jobs`` table).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from billing.core.errors import PlatformError, ServiceUnavailable
from billing.kafka.config import QUIET, client_config
from billing.settings import Settings

HOUR_MS = 3_600_000
DEAD_LETTER_MIN_HOURS = 30 * 24
KEEP_FOREVER = "-1"
RECORD_TOPICS = ("customers", "subscriptions", "invoices", "credit_notes", "payments", "alerts")

@dataclass(frozen=True)
class TopicSpec:
    """One topic as the project wants it."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def min_insync_replicas(replication: int) -> int:
    """Replicas that must have a write before it is acknowledged: 2 of 3 (one broker may be down
    without stopping writes, and an acknowledged write survives losing any one broker), 1 when
    there is no spare replica."""
    return max(1, min(2, replication - 1))


def topic_specs(settings: Settings) -> dict[str, TopicSpec]:
    """Logical topic name -> spec, for every topic of :meth:`Settings.topics`."""
    replication = settings.kafka_replication
    shared = {"min.insync.replicas": str(min_insync_replicas(replication)), "unclean.leader.election.enable": "false"}
    retention = {
        "usage": settings.kafka_retention_hours * HOUR_MS,
        "dead_letters": max(settings.kafka_retention_hours, DEAD_LETTER_MIN_HOURS) * HOUR_MS,
        "report_jobs": settings.kafka_retention_hours * HOUR_MS,
    }
    specs = {}
    for logical, name in settings.topics().items():
        partitions = 1 if logical == "dead_letters" else settings.kafka_partitions
        retention_ms = KEEP_FOREVER if logical in RECORD_TOPICS else str(retention[logical])
        specs[logical] = TopicSpec(
            name=name,
            partitions=partitions,
            replication=replication,
            config={**shared, "retention.ms": retention_ms},
        )
    return specs


def admin_client(bootstrap: str) -> AdminClient:
    """An AdminClient for ``bootstrap`` that does not print librdkafka connection noise."""
    return AdminClient(client_config(bootstrap, {"socket.timeout.ms": 5000, "logger": QUIET}))


def partition_counts(admin: AdminClient, timeout: float = 5.0) -> dict[str, int]:
    """Topic name -> partition count of every topic on the cluster (internal ones included)."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"Kafka is not reachable ({exc.args[0].str()}); check BILLING_KAFKA_BOOTSTRAP and `billing status`."
        ) from exc
    return {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}


def ensure_topics(admin: AdminClient, specs: list[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the missing topics and check the partition counts of all; returns the names created.

    Idempotent: a second call creates nothing. A topic that exists with another partition count
    is an error (changing it would move keys to other partitions), never silently "fixed".
    """
    existing = partition_counts(admin)
    missing = [spec for spec in specs if spec.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=s.config)
             for s in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise PlatformError(f"cannot create topic {name}: {exc.args[0].str()}") from exc
    _wait_visible(admin, specs, timeout)
    return [spec.name for spec in missing]


def _wait_visible(admin: AdminClient, specs: list[TopicSpec], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        counts = partition_counts(admin)
        absent = [s.name for s in specs if s.name not in counts]
        if not absent:
            break
        if time.monotonic() > deadline:
            raise PlatformError(f"topics {', '.join(absent)} were created but are not visible after {timeout:.0f}s.")
        time.sleep(0.2)
    wrong = [f"{s.name} has {counts[s.name]} (configured {s.partitions})" for s in specs if counts[s.name] != s.partitions]
    if wrong:
        raise PlatformError(
            "topic partition counts differ from the settings: " + "; ".join(wrong)
            + ". Set BILLING_KAFKA_PARTITIONS to match, or delete and recreate the topics (loses their data)."
        )
