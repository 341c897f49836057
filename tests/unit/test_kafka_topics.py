"""Topic specs built from the settings (no broker needed)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from billing.kafka.topics import HOUR_MS, KEEP_FOREVER, topic_specs
from billing.settings import Settings


def test_one_spec_per_configured_topic() -> None:
    settings = Settings(topic_usage="u", topic_dead_letters="dlq")
    specs = topic_specs(settings)
    assert {logical: spec.name for logical, spec in specs.items()} == settings.topics()


def test_partitions_and_retention() -> None:
    specs = topic_specs(Settings(kafka_partitions=6, kafka_retention_hours=24))
    assert specs["usage"].partitions == 6
    assert specs["usage"].config["retention.ms"] == str(24 * HOUR_MS)
    assert specs["dead_letters"].partitions == 1
    assert specs["dead_letters"].config["retention.ms"] == str(30 * 24 * HOUR_MS)
    for logical in ("customers", "subscriptions", "invoices", "payments"):
        assert specs[logical].config["retention.ms"] == KEEP_FOREVER


def test_min_insync_replicas_follows_replication() -> None:
    assert topic_specs(Settings(kafka_replication=1))["usage"].config["min.insync.replicas"] == "1"
    assert topic_specs(Settings(kafka_replication=3))["usage"].config["min.insync.replicas"] == "2"
    assert all(spec.replication == 3 for spec in topic_specs(Settings(kafka_replication=3)).values())


@given(partitions=st.integers(1, 64), hours=st.integers(1, 24 * 365))
def test_customer_keyed_topics_stay_copartitioned(partitions: int, hours: int) -> None:
    specs = topic_specs(Settings(kafka_partitions=partitions, kafka_retention_hours=hours))
    joined = {spec.partitions for logical, spec in specs.items() if logical != "dead_letters"}
    assert joined == {partitions}
    dead = int(specs["dead_letters"].config["retention.ms"])
    assert dead >= int(specs["usage"].config["retention.ms"]) == hours * HOUR_MS
