"""kill -9 the worker repeatedly while it processes 60,000 events: no event lost, none counted twice.

Each kill lands at a random point of its own quarter of the run, measured by the events stored (not
by the clock), so every kill hits work in flight however fast the machine is; small batches (the
records stored per write) keep many writes and offset commits between the kills."""

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
BATCH = 3_000


@pytest.mark.slow
def test_kill_9_during_processing_loses_and_duplicates_nothing(kafka, warehouse, settings, tmp_path):
    mine = isolated(settings, "crash", worker_metrics_interval_s=1.0, worker_batch_size=BATCH)
    manifest = simulate(mine, tmp_path / "manifest", events=60_000, customers=50, days=2, seed=11)
    total = manifest.summary["usage"]["unique_valid"]
    rng = random.Random(20240603)
    worker = worker_process(mine, "w1")

    def stored() -> int:
        return query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0]

    progress_at_kill = []
    try:
        for kill in range(1, KILLS + 1):
            worker.start(timeout=90)
            target = int(total * (kill + rng.uniform(-0.3, 0.3)) / (KILLS + 1))
            assert wait_for(lambda target=target: stored() >= target, timeout=300, interval=0.1), \
                f"kill {kill}: the worker did not store {target} events ({stored()} stored)"
            worker.kill()
            progress_at_kill.append(stored())
        worker.start(timeout=90)
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
