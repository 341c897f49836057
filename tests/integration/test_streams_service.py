"""The worker as a managed service (`billing status` details, Prometheus metrics, pipeline_metrics),
and two workers sharing the partitions of one consumer group."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from billing.platform.worker_service import WorkerService, fetch_stats, worker_services
from tests.integration.streams_harness import (
    additive_meters,
    caught_up,
    differences,
    env_of,
    free_port,
    hourly_totals,
    isolated,
    query,
    simulate,
    wait_for,
    worker_process,
)


def test_worker_service_reports_health_counters_and_prometheus_metrics(kafka, warehouse, settings, tmp_path,
                                                                        monkeypatch):
    mine = isolated(settings, "service", worker_metrics_interval_s=1.0)
    for name, value in env_of(mine).items():
        monkeypatch.setenv(name, value)
    service = WorkerService(mine)
    assert service.start()
    try:
        manifest = simulate(mine, tmp_path / "manifest", events=5_000, customers=10)
        assert wait_for(caught_up(mine, manifest), timeout=120)
        status = service.status()
        assert status.healthy and "dedup hits" in status.details
        stats = fetch_stats(mine.worker_web_port)
        assert stats["duplicates"] == manifest.summary["usage"]["duplicates"]
        assert stats["dead_letters"] == manifest.summary["usage"]["malformed"]
        usage_offsets = [offset for place, offset in stats["positions"].items() if place.startswith(f"{mine.topic_usage}/")]
        assert sum(usage_offsets) == manifest.summary["records"]["usage"] and stats["rewinding"] == {}
        with urllib.request.urlopen(service.endpoint, timeout=5) as response:
            exposition = response.read().decode()
        assert "billing_worker_events_in_total" in exposition and "billing_worker_sink_latency_seconds" in exposition
        assert wait_for(lambda: fetch_stats(mine.worker_web_port)["garbage_collections"] > 0, timeout=30)
        assert wait_for(lambda: query(mine, "SELECT count() FROM {db}.pipeline_metrics WHERE metric = 'duplicates' "
                                            f"AND value = {stats['duplicates']}")[0][0] > 0, timeout=30)
    finally:
        assert service.stop()
    assert not service.status().running


@pytest.mark.slow
def test_two_workers_share_the_partitions_and_totals_stay_exact(kafka, warehouse, settings, tmp_path, monkeypatch):
    """`BILLING_WORKER_PROCESSES=2`: the stack's services `worker` and `worker-2` share the partitions."""
    mine = isolated(settings, "scale", worker_processes=2)
    for name, value in env_of(mine).items():
        monkeypatch.setenv(name, value)
    workers = worker_services(mine)
    assert [w.name for w in workers] == ["worker", "worker-2"]
    for worker in workers:
        assert worker.start()
    try:
        manifest = simulate(mine, tmp_path / "manifest", events=40_000, customers=40, days=2)
        wait_for(caught_up(mine, manifest), timeout=300, interval=2.0)

        def shared() -> bool:  # polled: a rebalance in progress assigns nothing for a moment
            owners = [fetch_stats(worker.port)["partitions"] for worker in workers]
            return all(owners) and sorted(owners[0] + owners[1]) == list(range(mine.kafka_partitions))

        assert wait_for(shared, timeout=60), "the two workers do not share every partition"
        assert all(worker.status().healthy and "partitions" in worker.status().details for worker in workers)
    finally:
        for worker in workers:
            worker.stop()
    assert not any(worker.status().running for worker in workers)
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []


def test_expired_idempotency_keys_are_purged_and_totals_stay_exact(kafka, warehouse, settings, tmp_path):
    mine = isolated(settings, "purge", worker_dedup_retention_days=15 / 86_400, worker_purge_interval_s=1.0)
    worker = worker_process(mine, "purge")
    worker.start(timeout=90)
    try:
        manifest = simulate(mine, tmp_path / "manifest", events=3_000, customers=10)
        assert wait_for(caught_up(mine, manifest), timeout=120)
        unique = manifest.summary["usage"]["unique_valid"]
        assert wait_for(lambda: fetch_stats(mine.worker_web_port)["dedup_keys_purged"] >= unique, timeout=120)
        assert fetch_stats(mine.worker_web_port)["dedup_keys_purged"] == unique
    finally:
        worker.stop()
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []


def test_a_worker_configured_for_other_partition_counts_refuses_to_start(kafka, warehouse, settings):
    mine = isolated(settings, "partitions")
    env = {**os.environ, **env_of(mine), "BILLING_KAFKA_PARTITIONS": str(mine.kafka_partitions + 2)}
    done = subprocess.run([sys.executable, "-m", "billing", "worker", "--name", "wrong", "--web-port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "partition counts differ from the settings" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_late_events_past_the_window_retention_are_recomputed_from_the_raw_facts(kafka, warehouse, settings, tmp_path):
    mine = isolated(settings, "recompute", worker_window_retention_days=1 / 24, worker_purge_interval_s=2.0)
    worker = worker_process(mine, "recompute")
    worker.start(timeout=90)
    try:
        manifest = simulate(mine, tmp_path / "manifest", events=6_000, customers=15, days=2, late_rate=0.05)
        assert wait_for(caught_up(mine, manifest), timeout=180)
        stats = fetch_stats(mine.worker_web_port)
    finally:
        worker.stop()
    assert stats["windows_recomputed"] > 0
    additive = additive_meters()
    hours = {key: value for key, value in manifest.usage_totals("hour").items() if key[1] in additive}
    minutes = {key: value for key, value in hourly_totals(mine, 60).items() if key[1] in additive}
    assert differences(hours, minutes) == []
