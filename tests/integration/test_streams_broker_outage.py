"""The broker goes away for 30 s while the worker consumes from it: the worker waits, nothing is
lost, and the log stays readable (runs of repeated client errors are held back)."""

from __future__ import annotations

import time

import pytest

from billing.platform.kafka import KafkaService
from tests.integration.streams_harness import (
    caught_up,
    differences,
    free_port,
    hourly_totals,
    isolated,
    query,
    simulate,
    wait_for,
    worker_process,
)

OUTAGE_S = 30


@pytest.mark.slow
def test_broker_outage_stalls_the_worker_and_loses_nothing(warehouse, settings, tmp_path):
    own = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}",
                                      "kafka_controller_port": free_port(), "state_dir": tmp_path / "state"})
    broker = KafkaService(own)
    broker.start()
    try:
        mine = isolated(own, "brokerdown", worker_metrics_interval_s=1.0)
        manifest = simulate(mine, tmp_path / "manifest", events=60_000, customers=40, days=2, seed=6)
        total = manifest.summary["usage"]["unique_valid"]
        worker = worker_process(mine, "w1")
        worker.start(timeout=90)
        try:
            wait_for(lambda: query(mine, "SELECT count() FROM {db}.usage_events")[0][0] > 0, timeout=60, interval=0.2)
            broker.stop()
            stored_during_outage = query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0]
            time.sleep(OUTAGE_S)
            assert worker.is_running(), "the worker must survive a broker outage"
            broker.start()
            wait_for(caught_up(mine, manifest), timeout=400, interval=2.0)
        finally:
            worker.stop()
        assert 0 < stored_during_outage < total
        assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
        assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == total
        lines = worker.log_file.read_text(errors="replace").count("\n")
        assert lines < 1_000, f"{lines} log lines for a {OUTAGE_S}s outage (4,600 without the repeat filter)"
    finally:
        broker.stop()
