"""A service the worker depends on goes away for 30 s mid-run: the worker stalls and waits, nothing
is lost, and the log stays readable.

The warehouse: writes fail and are retried with backoff, lag grows. The broker: the Kafka clients
reconnect; their runs of repeated errors are held back in the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from billing.platform.kafka_broker import KafkaService
from billing.platform.service import Service
from billing.platform.warehouse_service import WarehouseService
from billing.settings import Settings
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
MAX_LOG_LINES = 1_000
"""A 30 s broker outage wrote 4,600 log lines before repeated client errors were held back."""


@dataclass(frozen=True)
class Outage:
    """A service of the test's own (``endpoint`` gives its free ports), the session service it needs
    beside it, and what else must hold afterwards."""

    service: Callable[[Settings], Service]
    endpoint: Callable[[], dict]
    beside: str
    check: Callable[[Settings], None] = lambda mine: None


def retried(mine: Settings) -> None:
    """The worker retried its failed warehouse writes."""
    assert query(mine, "SELECT max(value) FROM {db}.pipeline_metrics WHERE metric = 'sink_retries'")[0][0] > 0


OUTAGES = {
    "warehouse": Outage(WarehouseService, lambda: {"clickhouse_url": f"http://127.0.0.1:{free_port()}"}, "kafka",
                        retried),
    "broker": Outage(KafkaService, lambda: {"kafka_bootstrap": f"127.0.0.1:{free_port()}",
                                            "kafka_controller_port": free_port()}, "warehouse"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(OUTAGES))
def test_an_outage_stalls_the_worker_and_loses_nothing(kind, request, settings, tmp_path):
    outage = OUTAGES[kind]
    request.getfixturevalue(outage.beside)
    own = settings.model_copy(update={**outage.endpoint(), "state_dir": tmp_path / "state"})
    service = outage.service(own)
    service.start()
    try:
        mine = isolated(own, f"{kind}-down", worker_metrics_interval_s=1.0)
        manifest = simulate(mine, tmp_path / "manifest", events=60_000, customers=40, days=2, seed=5)
        total = manifest.summary["usage"]["unique_valid"]
        worker = worker_process(mine, "w1")
        worker.start(timeout=90)
        try:
            wait_for(lambda: query(mine, "SELECT count() FROM {db}.usage_events")[0][0] > 0, timeout=60, interval=0.2)
            stored_before_outage = query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0]
            service.stop()
            time.sleep(OUTAGE_S)
            assert worker.is_running(), f"the worker must survive a {kind} outage"
            service.start()
            wait_for(caught_up(mine, manifest), timeout=400, interval=2.0)
        finally:
            worker.stop()
        assert 0 < stored_before_outage < total
        assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
        assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == total
        lines = worker.log_file.read_text(errors="replace").count("\n")
        assert lines < MAX_LOG_LINES, f"{lines} log lines for a {OUTAGE_S}s {kind} outage"
        outage.check(mine)
    finally:
        service.stop()
