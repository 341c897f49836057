"""A service the worker depends on goes away for 30 s mid-run: the worker stalls and waits, nothing
is lost, and the log stays readable.

The warehouse: writes fail and are retried with backoff, lag grows. The broker: the Kafka clients
reconnect; their runs of repeated errors are held back in the log.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from billing.platform.kafka_broker import KafkaService
from billing.platform.service import Service
from billing.platform.warehouse_service import WarehouseService
from billing.platform.worker_service import fetch_stats, progressing
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
STALL_AFTER_S = 10.0
MAX_LOG_LINES = 500
"""A 30 s broker outage wrote 4,600 log lines before repeated client errors were held back, ~1,000 while
the offset reader's librdkafka client printed every refused connection, ~220 since."""


@dataclass(frozen=True)
class Outage:
    """A service of the test's own (``endpoint`` gives its free ports), the session service it needs
    beside it, and what else must hold afterwards."""

    service: Callable[[Settings], Service]
    endpoint: Callable[[], dict]
    beside: str
    check: Callable[[Settings], None] = lambda mine: None
    stalls: bool = False  # the worker reports itself stalled during the outage (it can still read its offsets)


def retried(mine: Settings) -> None:
    """The worker retried its failed warehouse writes."""
    assert query(mine, "SELECT max(value) FROM {db}.pipeline_metrics WHERE metric = 'sink_retries'")[0][0] > 0


OUTAGES = {
    "warehouse": Outage(WarehouseService, lambda: {"clickhouse_url": f"http://127.0.0.1:{free_port()}"}, "kafka",
                        retried, stalls=True),
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
        mine = isolated(own, f"{kind}-down", worker_metrics_interval_s=1.0, worker_stall_after_s=STALL_AFTER_S)
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
            if outage.stalls:
                assert not progressing(mine.worker_web_port)
                assert fetch_stats(mine.worker_web_port)["stalled"], "no partition reported stalled"
            service.start()
            wait_for(caught_up(mine, manifest), timeout=400, interval=2.0)
            assert wait_for(lambda: progressing(mine.worker_web_port), timeout=30), "still unhealthy after catching up"
        finally:
            worker.stop()
        assert 0 < stored_before_outage < total
        assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
        assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == total
        log = worker.log_file.read_text(errors="replace").splitlines()
        most = Counter(re.sub(r"\d+", "N", line.split("]", 2)[-1])[:120] for line in log).most_common(3)
        assert len(log) < MAX_LOG_LINES, f"{len(log)} log lines for a {OUTAGE_S}s {kind} outage; most: {most}"
        outage.check(mine)
    finally:
        service.stop()
