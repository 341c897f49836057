"""kill -9 the worker repeatedly while it processes 200,000 events: no event lost, none counted twice."""

from __future__ import annotations

import random

import pytest

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

KILLS = 3


@pytest.mark.slow
def test_kill_9_during_processing_loses_and_duplicates_nothing(kafka, warehouse, settings, tmp_path):
    mine = isolated(settings, "crash", worker_metrics_interval_s=1.0)
    manifest = simulate(mine, tmp_path / "manifest", events=200_000, customers=50, days=2, seed=11)
    total = manifest.summary["usage"]["unique_valid"]
    rng = random.Random(20240603)
    worker = worker_process(mine, "w1")
    progress_at_kill = []
    for _ in range(KILLS):
        worker.start(timeout=90)
        wait_for(lambda: query(mine, "SELECT count() FROM {db}.usage_events")[0][0] > 0, timeout=60, interval=0.5)
        wait_for(lambda: False, timeout=rng.uniform(2.0, 8.0), interval=0.2)
        worker.kill()
        progress_at_kill.append(query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0])
    worker.start(timeout=90)
    try:
        wait_for(caught_up(mine, manifest), timeout=600, interval=2.0)
    finally:
        worker.stop()
    assert all(0 < done < total for done in progress_at_kill), progress_at_kill
    replays = query(mine, "SELECT max(value) FROM {db}.pipeline_metrics WHERE metric IN ('replayed', 'fenced')")
    assert replays[0][0] > 0, "no event was re-read after a kill: the test did not exercise recovery"
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
    assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == total
    dead = query(mine, f"SELECT count() FROM {{db}}.dead_letters FINAL WHERE source_topic = '{mine.topic_usage}'")
    assert dead[0][0] == manifest.summary["usage"]["malformed"]
