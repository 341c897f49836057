"""Simulator -> Kafka -> `billing worker` -> ClickHouse: exact rollups, dead letters, payments of the
engine's invoices, reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, TopicPartition

from billing.core.meters import active_meters
from billing.core.pricing.proration import month_period
from billing.invoicing.run import Invoicing
from billing.warehouse.client import client
from billing.warehouse.reconcile import fix_rows, reconcile
from producers.manifest import Manifest
from producers.paying import pay_period
from producers.sinks import KafkaSink
from streams.pipeline import ROLLUP_COLUMNS
from tests.integration.streams_harness import (
    additive_meters,
    caught_up,
    differences,
    hourly_totals,
    isolated,
    query,
    simulate,
    wait_for,
    worker_process,
)


@pytest.fixture(scope="module")
def run(kafka, warehouse, settings, tmp_path_factory):
    """40 simulated days (usage with duplicates, late and malformed events), processed by one worker;
    then the engine bills the last closed month and the payers pay it through the same worker."""
    mine = isolated(settings, "pipeline")
    manifest = simulate(mine, tmp_path_factory.mktemp("manifest"), events=30_000, days=40)
    worker = worker_process(mine, "w1")
    worker.start(timeout=90)
    try:
        wait_for(caught_up(mine, manifest), timeout=240)
        customers = len(manifest.record_counts("customers"))
        wait_for(lambda: query(mine, "SELECT count() FROM {db}.customers FINAL")[0][0] == customers, timeout=60)
        now = datetime.now(UTC)
        month = month_period(month_period(now).start - timedelta(seconds=1))
        invoicing = Invoicing(mine)
        invoicing.run_period(f"{month.start:%Y-%m}", now=month.end + timedelta(hours=2), finalize=True)
        pay_period(invoicing.store.invoices(period=month), 7, now, KafkaSink(mine.kafka_bootstrap, mine.topics()),
                   invoicing.mark_paid, manifest.path)
        manifest = Manifest.load(manifest.path)
        transactions = len(manifest.payments())
        wait_for(lambda: query(mine, "SELECT count() FROM {db}.payment_transactions FINAL")[0][0] == transactions, timeout=120)
    finally:
        worker.stop()
    return mine, manifest


def test_hourly_rollups_equal_the_manifest_exactly(run):
    mine, manifest = run
    assert manifest.summary["usage"]["duplicates"] > 0 and manifest.summary["usage"]["late"] > 0
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []


def test_the_worker_commits_every_consumed_offset(run):
    """A restart resumes where the worker stopped: its group's committed offset is the end of every
    partition (batch topics are acknowledged per partition, the business topics per message)."""
    mine, _ = run
    consumer = Consumer({"bootstrap.servers": mine.kafka_bootstrap, "group.id": mine.worker_app_id,
                         "enable.auto.commit": False})
    try:
        topics = [mine.topic_usage, mine.topic_customers, mine.topic_subscriptions, mine.topic_invoices,
                  mine.topic_payments]
        partitions = [TopicPartition(t, p) for t in topics for p in range(mine.kafka_partitions)]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=30)}
        ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in partitions}
    finally:
        consumer.close()
    assert sum(ends.values()) > 0
    assert {tp: end for tp, end in ends.items() if end} == {tp: committed[tp] for tp, end in ends.items() if end}


def test_minute_rollups_add_up_to_the_hours(run):
    mine, manifest = run
    additive = additive_meters()
    expected = {k: v for k, v in manifest.usage_totals("hour").items() if k[1] in additive}
    minutes = {k: v for k, v in hourly_totals(mine, seconds=60).items() if k[1] in additive}
    assert differences(expected, minutes) == []


def test_every_malformed_event_is_a_dead_letter_and_duplicates_are_never_stored(run):
    mine, manifest = run
    usage = manifest.summary["usage"]
    dead = query(mine, f"SELECT count() FROM {{db}}.dead_letters FINAL WHERE source_topic = '{mine.topic_usage}'")
    assert dead[0][0] == usage["malformed"]
    assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == usage["unique_valid"]
    malformed_ids = {f.event_id for f in manifest.faults("malformed")}
    assert not query(mine, "SELECT event_id FROM {db}.usage_events WHERE event_id IN %s"
                     % ("(" + ",".join(f"'{i}'" for i in malformed_ids) + ")"))


def test_payment_lifecycles_match_the_manifest(run):
    mine, manifest = run
    expected = {p["id"]: (p["final_status"], p["attempts"]) for p in manifest.payments()}
    rows = query(mine, "SELECT transaction_id, status, attempts, failures, status_path "
                       "FROM {db}.payment_transactions FINAL")
    assert expected and {r[0]: (r[1], r[2]) for r in rows} == expected
    for _, status, attempts, failures, path in rows:
        assert path.split(">")[-1] == status
        assert path.count("initiated") == attempts and path.count("failed") == failures


def test_reconcile_finds_and_fixes_a_wrong_rollup(run):
    mine, _ = run
    meters = active_meters()
    checked, diffs = reconcile(client(mine), mine, meters, mine.worker_windows_s)
    assert checked > 0 and diffs == []
    customer, meter, start, gkey, version, dims, agg, value, events = query(
        mine, "SELECT customer_id, meter, window_start, group_key, version, dimensions, aggregation, value, "
              "event_count FROM {db}.usage_rollups FINAL WHERE window_seconds = 3600 ORDER BY value DESC LIMIT 1")[0]
    wrong = [customer, meter, 3600, start, gkey, dims, agg, value + Decimal(1), events, version + 1, 1, start]
    ch = client(mine)
    ch.insert(f"{mine.clickhouse_database}.usage_rollups", [wrong], column_names=list(ROLLUP_COLUMNS))
    _, diffs = reconcile(ch, mine, meters, mine.worker_windows_s)
    assert [(d.window[:2], d.kind) for d in diffs] == [((customer, meter), "different")]
    ch.insert(f"{mine.clickhouse_database}.usage_rollups", fix_rows(diffs, meters), column_names=list(ROLLUP_COLUMNS))
    assert reconcile(ch, mine, meters, mine.worker_windows_s)[1] == []
