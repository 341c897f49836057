"""The warehouse goes away for 30 s while the worker writes to it: consumption stalls, nothing is lost."""

from __future__ import annotations

import time

import pytest

from billing.platform.warehouse import WarehouseService
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
def test_warehouse_outage_stalls_the_worker_and_loses_nothing(kafka, settings, tmp_path):
    own = settings.model_copy(update={"clickhouse_url": f"http://127.0.0.1:{free_port()}",
                                      "state_dir": tmp_path / "state"})
    store = WarehouseService(own)
    store.start()
    try:
        mine = isolated(own, "outage", worker_metrics_interval_s=1.0)
        manifest = simulate(mine, tmp_path / "manifest", events=60_000, customers=40, days=2, seed=5)
        total = manifest.summary["usage"]["unique_valid"]
        worker = worker_process(mine, "w1")
        worker.start(timeout=90)
        try:
            wait_for(lambda: query(mine, "SELECT count() FROM {db}.usage_events")[0][0] > 0, timeout=60, interval=0.2)
            stored_before_outage = query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0]
            store.stop()
            time.sleep(OUTAGE_S)
            assert worker.is_running(), "the worker must survive a warehouse outage"
            store.start()
            wait_for(caught_up(mine, manifest), timeout=400, interval=2.0)
        finally:
            worker.stop()
        assert 0 < stored_before_outage < total
        assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
        assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == total
        retries = query(mine, "SELECT max(value) FROM {db}.pipeline_metrics WHERE metric = 'sink_retries'")
        assert retries[0][0] > 0
    finally:
        store.stop()
