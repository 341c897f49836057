"""Consumer group membership, read from the broker's group coordinator."""

from __future__ import annotations

from confluent_kafka import KafkaException

from billing.kafka.topics import admin_client


def group_members(bootstrap: str, group: str, timeout: float = 5.0) -> set[str]:
    """The client ids of the members of consumer group ``group`` (empty when it has none or Kafka does not answer)."""
    admin = admin_client(bootstrap)  # held until the answer: a collected client cancels its requests
    future = admin.describe_consumer_groups([group], request_timeout=timeout)[group]
    try:
        return {member.client_id for member in future.result(timeout=timeout).members}
    except KafkaException:
        return set()
