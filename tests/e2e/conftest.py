"""Session fixtures of the dashboard tests: the whole pipeline (Superset bootstraps meanwhile), then Superset.

Simulated traffic (75 days of history, then the last hour live) goes through the real broker and
the real stream worker into a raw database of this session's own; dbt builds the marts into a
marts database of its own, and Superset registers that warehouse through the read-only user.
Other tests' data never reaches these dashboards, and theirs never sees this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billing.core.meters import active_meters
from billing.core.pricing import month_period
from billing.invoicing.run import Invoicing
from billing.kafka.topics import admin_client
from billing.platform.process import tail
from billing.platform.service import Service
from billing.platform.superset import SupersetService
from billing.settings import Settings
from billing.warehouse.client import client
from producers.manifest import Manifest
from producers.paying import pay_period
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import KafkaSink
from tests.integration.streams_harness import env_of, isolated, wait_for, worker_process
from tests.paths import REPO_ROOT

CUSTOMERS, HISTORY_DAYS, HISTORY_EVENTS, LIVE_EVENTS = 80, 75, 20_000, 1_500
WORKER = "dash"
FAULTS = {"duplicate_rate": 0.02, "late_rate": 0.01, "malformed_rate": 0.005}


def send(settings: Settings, manifest: Path, *, seed: int, customers: int, events: int, start: datetime,
         days: float) -> Manifest:
    """Simulate ``days`` from ``start`` into the session's topics; returns the manifest."""
    config = SimulationConfig(customers=customers, rate=None, events=events, start=start, days=days, seed=seed,
                              **FAULTS)
    Simulator(config, active_meters(), KafkaSink(settings.kafka_bootstrap, settings.topics()), manifest).run()
    return Manifest.load(manifest)


def bill_and_pay(settings: Settings, start: datetime, end: datetime, folder: Path) -> int:
    """Bill every whole month between ``start`` and ``end`` with the engine (finalized two hours after
    the month, as `make demo` does), let the payers pay them as of ``end`` into the session's topics
    (prompt, late and never payers, refunds, disputes); returns the payment events they sent."""
    invoicing = Invoicing(settings)
    sent = 0
    month = month_period(month_period(start).end)
    while month.end <= end:
        invoicing.run_period(f"{month.start:%Y-%m}", now=month.end + timedelta(hours=2), finalize=True)
        summary = pay_period(invoicing.store.invoices(period=month), 11, end,
                             KafkaSink(settings.kafka_bootstrap, settings.topics()), invoicing.mark_paid,
                             folder / "payers")
        sent += summary.payment_events
        month = month_period(month.end)
    return sent


def expected(manifests: list[Manifest]) -> tuple[int, int, int, int]:
    """Unique valid usage events, payment events, malformed usage events and subscription events the
    manifests sent (the invoice run bills only the subscriptions stored before it runs)."""
    return (sum(m.summary["usage"]["unique_valid"] for m in manifests),
            sum(m.summary["records"].get("payments", 0) for m in manifests),
            sum(m.summary["usage"]["malformed"] for m in manifests),
            sum(m.summary["records"].get("subscriptions", 0) for m in manifests))


def stored(settings: Settings) -> tuple[int, int, int, int]:
    """Usage events, payment events, dead letters and subscription events in the session's warehouse database."""
    db = settings.clickhouse_database
    return tuple(client(settings).query(f"SELECT (SELECT count() FROM {db}.usage_events FINAL), "
                                        f"(SELECT count() FROM {db}.payment_events FINAL), "
                                        f"(SELECT count() FROM {db}.dead_letters FINAL), "
                                        f"(SELECT count() FROM {db}.subscription_events FINAL)").result_rows[0])


def all_stored(settings: Settings, want: tuple[int, int, int, int]) -> bool:
    """True once every unique valid usage event, payment event, dead letter and subscription event is in
    the warehouse."""
    got = stored(settings)
    return got[0] == want[0] and got[1] == want[1] and got[2] >= want[2] and got[3] == want[3]


def not_stored(settings: Settings, want: tuple[int, int, int, int], log_file: Path) -> str:
    """What a failed wait saw: the counts, the worker's own counters and the end of its log."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.worker_web_port}/stats", timeout=5) as response:
            stats = response.read().decode()
    except OSError as exc:
        stats = f"unavailable ({exc})"
    return (f"the worker did not store everything: (usage, payments, dead letters, subscription events) stored {stored(settings)}, "
            f"expected {want}; worker stats {stats}; end of {log_file}:\n{tail(log_file, 80)}")


def snapshot_after(settings: Settings, moment: datetime):
    """Check that the worker wrote a pipeline_metrics snapshot after ``moment`` (counters final)."""
    ch = client(settings)

    def check() -> bool:
        latest = ch.query(f"SELECT max(time) FROM {settings.clickhouse_database}.pipeline_metrics").result_rows[0][0]
        return latest is not None and latest > moment

    return check


@pytest.fixture(scope="session")
def pipeline(settings: Settings, warehouse: Service, kafka: Service,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of this session's topics and databases, after the traffic went through and dbt built the marts.

    Its topics, both databases and the worker's state are deleted afterwards (kept with BILLING_TEST_KEEP=1).
    """
    mine = isolated(settings, "dash", worker_metrics_interval_s=2.0)
    mine = mine.model_copy(update={"clickhouse_marts_database": f"{mine.clickhouse_database}_marts"})
    folder = tmp_path_factory.mktemp("simulated")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live_start = now - timedelta(hours=1)
    worker = worker_process(mine, WORKER)
    worker.start(timeout=120)
    try:
        manifests = [
            send(mine, folder / "history", seed=11, customers=CUSTOMERS, events=HISTORY_EVENTS,
                 start=live_start - timedelta(days=HISTORY_DAYS), days=HISTORY_DAYS),
            send(mine, folder / "live", seed=12, customers=CUSTOMERS // 2, events=LIVE_EVENTS,
                 start=live_start, days=1 / 24),
        ]
        want = expected(manifests)
        assert wait_for(lambda: all_stored(mine, want), timeout=300), not_stored(mine, want, worker.log_file)
        paid = bill_and_pay(mine, live_start - timedelta(days=HISTORY_DAYS), live_start, folder)
        assert paid > 0, "the payers paid nothing: the invoice run billed no one"
        want = (want[0], want[1] + paid, *want[2:])
        assert wait_for(lambda: all_stored(mine, want), timeout=300), not_stored(mine, want, worker.log_file)
        assert wait_for(snapshot_after(mine, datetime.now(UTC)), timeout=60), "the worker wrote no final metrics"
    finally:
        worker.stop()
    env = {**os.environ, **env_of(mine), "BILLING_CLICKHOUSE_MARTS_DATABASE": mine.clickhouse_marts_database}
    build = subprocess.run([sys.executable, "-m", "billing", "dbt", "build"], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, f"billing dbt build failed:\n{build.stdout[-3000:]}\n{build.stderr[-2000:]}"
    yield mine
    if not os.environ.get("BILLING_TEST_KEEP"):
        for database in (mine.clickhouse_marts_database, mine.clickhouse_database):
            client(mine).command(f"DROP DATABASE IF EXISTS {database}")
        admin = admin_client(mine.kafka_bootstrap)  # the session's topics and the worker's changelogs
        mine_only = [t for t in admin.list_topics(timeout=10).topics if t.startswith(mine.worker_app_id)]
        for deleted in admin.delete_topics(mine_only).values():
            deleted.result()
        shutil.rmtree(mine.state_dir / "worker" / f"{mine.worker_app_id}-{WORKER}", ignore_errors=True)


@pytest.fixture(scope="session")
def superset_prepared(settings: Settings) -> Iterator[Future]:
    """Superset installed and bootstrapped (metadata database, roles, admin user) in the background
    while ``pipeline`` sends the traffic and builds the marts: neither needs the other."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(SupersetService(settings).prepare)


@pytest.fixture(scope="session")
def superset(superset_prepared: Future, pipeline: Settings) -> Iterator[SupersetService]:
    """Superset on the test port, reading this session's marts, with the project's dashboards imported."""
    superset_prepared.result()
    svc = SupersetService(pipeline)
    started = svc.start()
    yield svc
    if started and not os.environ.get("BILLING_TEST_KEEP"):
        svc.stop()
