"""Helpers for the stream worker integration tests: isolated topics/database/consumer group per
test, the simulator, worker processes and the comparisons with the simulator's manifest."""

from __future__ import annotations

import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from billing.core.meters import Aggregation, active_meters
from billing.kafka.topics import admin_client, ensure_topics, topic_specs
from billing.platform.process import ManagedProcess
from billing.settings import Settings
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate
from producers.manifest import Manifest
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import KafkaSink
from tests.paths import REPO_ROOT

TOPIC_FIELDS = ("usage", "customers", "subscriptions", "invoices", "payments", "dead_letters")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated(settings: Settings, tag: str, **overrides) -> Settings:
    """Settings with this test run's own topics, consumer group, database and worker port."""
    tag = f"{tag}-{time.time_ns() // 1_000_000 % 10**8:08d}"
    update = {f"topic_{name}": f"t-{tag}.{name}" for name in TOPIC_FIELDS}
    update.update(worker_app_id=f"t-{tag}", clickhouse_database=f"t_{tag.replace('-', '_')}",
                  worker_web_port=free_port(), worker_idle_close_s=5.0, **overrides)
    mine = settings.model_copy(update=update)
    ensure_topics(admin_client(mine.kafka_bootstrap), list(topic_specs(mine).values()))
    client(mine).command(f"DROP DATABASE IF EXISTS {mine.clickhouse_database}")
    migrate(mine)
    return mine


def env_of(settings: Settings) -> dict[str, str]:
    """Environment that makes a `billing` subprocess use ``settings``."""
    names = [f"topic_{name}" for name in TOPIC_FIELDS] + [
        "worker_app_id", "clickhouse_database", "clickhouse_url", "clickhouse_password", "kafka_bootstrap", "state_dir",
        "worker_web_port", "worker_idle_close_s", "worker_batch_size", "worker_grace_s", "kafka_partitions",
        "worker_metrics_interval_s", "worker_dedup_retention_days", "worker_purge_interval_s",
        "worker_window_retention_days", "worker_stall_after_s", "worker_session_timeout_s", "kafka_replication",
    ]
    return {f"BILLING_{name.upper()}": str(getattr(settings, name)) for name in names}


def worker_process(settings: Settings, name: str, web_port: int | None = None) -> ManagedProcess:
    """A `billing worker` subprocess for ``settings``."""
    port = web_port or settings.worker_web_port
    return ManagedProcess(
        name=f"{settings.worker_app_id}-{name}",
        argv=[sys.executable, "-m", "billing", "worker", "--name", f"{settings.worker_app_id}-{name}",
              "--web-port", str(port), "--loglevel", "info"],
        run_dir=settings.run_dir, log_dir=settings.log_dir,
        health=lambda: _health(port), env={**env_of(settings), "PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT,
    )


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def simulate(settings: Settings, manifest: Path, *, events: int, customers: int = 30, seed: int = 7,
             days: float = 1.0, duplicate_rate: float = 0.02, late_rate: float = 0.01,
             malformed_rate: float = 0.01, rate: float | None = None,
             progress: Callable[[int], None] | None = None) -> Manifest:
    """Send a deterministic history (ending a day ago: raw facts have a TTL) to the test's topics,
    at most ``rate`` usage events per second (None: as fast as possible; or paced by ``progress``,
    called with each batch's event count after it was sent); return its manifest."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days + 1)
    config = SimulationConfig(customers=customers, rate=rate, events=events, seed=seed, start=start, days=days,
                              duplicate_rate=duplicate_rate,
                              late_rate=late_rate, malformed_rate=malformed_rate)
    Simulator(config, active_meters(), KafkaSink(settings.kafka_bootstrap, settings.topics()), manifest,
              progress=progress).run()
    return Manifest.load(manifest)


class Paced:
    """A simulator ``progress`` callback that holds production to ``rate`` usage events/s until
    :meth:`release`, then lets it run as fast as it can: the load lasts as long as the faults a test
    injects under it, on a fast machine or a slow one, and no longer."""

    def __init__(self, rate: float) -> None:
        self.rate, self.sent, self.started = rate, 0, time.monotonic()
        self.released = threading.Event()

    def __call__(self, events: int) -> None:
        self.sent += events
        ahead = self.sent / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            self.released.wait(ahead)

    def release(self) -> None:
        self.released.set()


def query(settings: Settings, sql: str) -> list[tuple]:
    return client(settings).query(sql.replace("{db}", settings.clickhouse_database)).result_rows


def hourly_totals(settings: Settings, seconds: int = 3600) -> dict[tuple, Decimal]:
    """Rollups per customer x meter x hour (FINAL), summed over group keys; minute rollups are
    summed into their hour (only meaningful for SUM/COUNT meters)."""
    rows = query(settings, f"SELECT customer_id, meter, toStartOfHour(window_start), sum(value) "
                           f"FROM {{db}}.usage_rollups FINAL WHERE window_seconds = {seconds} GROUP BY 1, 2, 3")
    return {(c, m, w): Decimal(v) for c, m, w, v in rows}


def additive_meters() -> set[str]:
    return {m.name for m in active_meters() if m.aggregation in (Aggregation.SUM, Aggregation.COUNT)}


def differences(expected: dict, actual: dict) -> list[tuple]:
    return sorted((k, expected.get(k), actual.get(k)) for k in expected.keys() | actual.keys()
                  if expected.get(k) != actual.get(k))


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def caught_up(settings: Settings, manifest: Manifest) -> Callable[[], bool]:
    """True once every unique valid event and every malformed one is in the warehouse and the
    hourly rollups equal the manifest."""
    usage = manifest.summary["usage"]
    expected = manifest.usage_totals("hour")

    def check() -> bool:
        events = query(settings, "SELECT count() FROM {db}.usage_events FINAL")[0][0]
        dead = query(settings, "SELECT count() FROM {db}.dead_letters FINAL")[0][0]
        return events == usage["unique_valid"] and dead >= usage["malformed"] and hourly_totals(settings) == expected

    return check


CONSUMED = ("usage", "customers", "subscriptions", "invoices", "payments")


def uncommitted(settings: Settings) -> dict[str, int]:
    """``topic/partition`` -> records the worker group has not committed (end offset minus
    committed offset), for every partition of the consumed topics that is behind."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.worker_app_id,
                         "enable.auto.commit": False})
    try:
        topics = settings.topics()
        partitions = [TopicPartition(topics[name], p) for name in CONSUMED for p in range(settings.kafka_partitions)]
        behind = {}
        for tp in consumer.committed(partitions, timeout=30):
            end = consumer.get_watermark_offsets(tp, timeout=30)[1]
            if end > max(tp.offset, 0):
                behind[f"{tp.topic}/{tp.partition}"] = end - max(tp.offset, 0)
        return behind
    finally:
        consumer.close()
