"""Kafka refuses the table changelog: the worker stops without acknowledging, and a restart after
the cause is fixed ends with exact totals."""

from __future__ import annotations

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from tests.integration.streams_harness import (
    caught_up,
    differences,
    hourly_totals,
    isolated,
    query,
    simulate,
    wait_for,
    worker_process,
)


def _max_message_bytes(admin, topic: str, value: str) -> None:
    entry = ConfigEntry("max.message.bytes", value, incremental_operation=AlterConfigOpType.SET)
    for future in admin.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=[entry])]).values():
        future.result(timeout=30)


def test_a_refused_changelog_stops_the_worker_and_nothing_is_lost(kafka, warehouse, settings, tmp_path):
    mine = isolated(settings, "refused")
    admin = admin_client(mine.kafka_bootstrap)
    changelog = f"{mine.worker_app_id}-dedup-changelog"
    ensure_topics(admin, [TopicSpec(changelog, mine.kafka_partitions, mine.kafka_replication,
                                    {"cleanup.policy": "compact", "max.message.bytes": "64"})])
    manifest = simulate(mine, tmp_path / "manifest", events=3_000, customers=10)
    worker = worker_process(mine, "refused")
    worker.start(timeout=90)
    try:
        assert wait_for(lambda: not worker.is_running(), timeout=120), "the worker kept running"
        assert "ChangelogRefused('Kafka refused" in worker.log_file.read_text()
        assert query(mine, "SELECT count() FROM {db}.usage_events")[0][0] == 0
        _max_message_bytes(admin, changelog, "1048588")
        worker.start(timeout=90)
        assert wait_for(caught_up(mine, manifest), timeout=180)
    finally:
        worker.stop()
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
