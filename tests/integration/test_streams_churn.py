"""Two workers under churn while the simulator produces: kill -9 of a worker again and again, and a
third worker joining and leaving. Every topic ends fully committed, usage and business facts exact."""

from __future__ import annotations

import random
import threading
import time

import pytest

from billing.platform.worker_service import fetch_stats, progressing
from tests.integration.streams_harness import (
    caught_up,
    differences,
    free_port,
    hourly_totals,
    isolated,
    query,
    simulate,
    uncommitted,
    wait_for,
    worker_process,
)

KILLS = 8
JOINS = 2


def _business_facts(mine) -> dict[str, dict]:
    return {
        "customers": dict(query(mine, "SELECT customer_id, 1 FROM {db}.customers FINAL GROUP BY customer_id")),
        "subscriptions": dict(query(mine, "SELECT customer_id, count() FROM {db}.subscription_events FINAL "
                                          "GROUP BY customer_id")),
        "invoices": dict(query(mine, "SELECT invoice_id, toString(status) FROM {db}.invoices FINAL")),
        "payments": {tx: (status, attempts) for tx, status, attempts in query(
            mine, "SELECT transaction_id, status, attempts FROM {db}.payment_transactions FINAL")},
    }


def _expected_facts(manifest) -> dict[str, dict]:
    return {
        "customers": dict.fromkeys(manifest.record_counts("customers"), 1),
        "subscriptions": manifest.record_counts("subscriptions"),
        "invoices": {inv["id"]: inv["status"] for inv in manifest.invoices()},
        "payments": {p["id"]: (p["final_status"], p["attempts"]) for p in manifest.payments()},
    }


@pytest.mark.slow
def test_kills_joins_and_leaves_while_producing_leave_nothing_behind(kafka, warehouse, settings, tmp_path):
    mine = isolated(settings, "churn", worker_metrics_interval_s=2.0)
    rng = random.Random(20261207)
    ports = [mine.worker_web_port, free_port()]
    workers = [worker_process(mine, f"w{n}", port) for n, port in enumerate(ports, start=1)]
    third = worker_process(mine, "w3", free_port())
    for worker in workers:
        worker.start(timeout=90)
    produced: dict = {}
    producer = threading.Thread(target=lambda: produced.update(manifest=simulate(
        mine, tmp_path / "manifest", events=60_000, customers=40, days=20, seed=5, rate=600.0)))
    producer.start()
    actions = ["kill"] * KILLS + ["join"] * JOINS
    rng.shuffle(actions)
    try:
        for action in actions:
            time.sleep(rng.uniform(3.0, 8.0))
            if action == "kill":
                victim = rng.choice(workers)
                victim.kill()
                time.sleep(rng.uniform(0.5, 3.0))
                victim.start(timeout=90)
            else:
                third.start(timeout=90)
                time.sleep(rng.uniform(4.0, 8.0))
                third.stop()
        producer.join()
        manifest = produced["manifest"]
        wait_for(lambda: not uncommitted(mine) and caught_up(mine, manifest)(), timeout=180, interval=2.0)
        behind = uncommitted(mine)
        reported = wait_for(lambda: all(fetch_stats(port)["consumer_lag"] == 0 for port in ports), timeout=30)
        healthy = all(progressing(port) for port in ports)
    finally:
        producer.join()
        for worker in [*workers, third]:
            worker.stop()
    assert behind == {}, f"records never committed (topic/partition: records): {behind}"
    assert reported, "a worker reports lag although every offset is committed"
    assert healthy
    crashed = [w.name for w in [*workers, third] if "We experienced a crash" in w.log_file.read_text(errors="replace")]
    assert crashed == [], "a worker stopped with SIGTERM exited with a crash"
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
    assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == manifest.summary["usage"]["unique_valid"]
    expected, stored = _expected_facts(manifest), _business_facts(mine)
    for topic in expected:
        assert expected[topic] and differences(expected[topic], stored[topic]) == [], topic
