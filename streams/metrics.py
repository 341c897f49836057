"""Worker counters: Prometheus exposition, JSON stats, and rows for ``pipeline_metrics``."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

COUNTERS = {
    "events_in": "Valid usage events consumed (replays included).",
    "duplicates": "Usage events whose idempotency key was already applied (never counted).",
    "replayed": "Usage events re-read after a restart (fenced by offset, never double counted).",
    "fenced": "Replayed usage events already in their windows (source offset fencing).",
    "late_in_grace": "Usage events behind the watermark but within their window's grace period.",
    "late_corrections": "Usage events after their window closed: applied as a correction (new version).",
    "dead_letters": "Records that failed validation, sent to the dead-letter topic.",
    "offset_gaps": "Times the consumer skipped source records; the partition was rewound (logged as errors).",
    "windows_closed": "Windows closed after their grace period.",
    "windows_recomputed": "Windows past their retention recomputed from the raw facts (late corrections).",
    "rollups_written": "Rollup rows (full window values) written to the warehouse.",
    "rows_written": "Rows written to the warehouse (all tables).",
    "sink_retries": "Failed warehouse writes that were retried.",
    "records_in": "Valid business records consumed (customers, subscriptions, invoices, payments).",
    "payment_transitions": "Payment state changes applied.",
    "payment_anomalies": "Payment events with an unexpected transition or a sequence gap.",
    "dedup_keys_purged": "Expired idempotency keys deleted.",
    "windows_purged": "Closed windows deleted after their retention.",
    "garbage_collections": "Scheduled garbage collections (the worker runs without Python's automatic collector).",
}
GAUGES = {
    "consumer_lag": "Records in the assigned partitions not processed yet.",
    "open_windows": "Windows not closed yet (index entries).",
    "throughput": "Usage events consumed per second over the last metrics interval.",
}
RECORD_TOPICS = ("customers_in", "subscriptions_in", "invoices_in", "payments_in")


class WorkerMetrics:
    """Counters and gauges of one worker process."""

    def __init__(self, worker: str):
        self.worker = worker
        self.registry = CollectorRegistry()
        self.totals: Counter = Counter()
        self.gauges: dict[str, float] = dict.fromkeys(GAUGES, 0.0)
        self._counters = {name: PromCounter(f"billing_worker_{name}", text, registry=self.registry)
                          for name, text in COUNTERS.items()}
        self._gauges = {name: Gauge(f"billing_worker_{name}", text, registry=self.registry)
                        for name, text in GAUGES.items()}
        self.sink_latency = Histogram("billing_worker_sink_latency_seconds", "Time to store one batch in the warehouse.",
                                      registry=self.registry, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
        self._rate_mark = (time.monotonic(), 0)

    def add(self, counts: Counter) -> None:
        """Add the counts of one batch (business topic counts roll up into ``records_in``)."""
        counts = Counter(counts)
        counts["records_in"] += sum(counts.pop(name, 0) for name in RECORD_TOPICS)
        for name, value in counts.items():
            if value and name in self._counters:
                self.totals[name] += value
                self._counters[name].inc(value)

    def set(self, name: str, value: float) -> None:
        """Set a gauge."""
        self.gauges[name] = value
        self._gauges[name].set(value)

    def update_rate(self) -> float:
        """Recompute the throughput gauge from the events counted since the last call."""
        now, events = time.monotonic(), self.totals["events_in"]
        then, before = self._rate_mark
        rate = (events - before) / (now - then) if now > then else 0.0
        self._rate_mark = (now, events)
        self.set("throughput", rate)
        return rate

    def snapshot(self) -> dict[str, float]:
        """Every counter and gauge by name."""
        return {**{name: float(self.totals[name]) for name in COUNTERS}, **self.gauges}

    def prometheus(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def rows(self) -> list[list]:
        """Rows of ``pipeline_metrics`` (time, worker, metric, value) for the current snapshot."""
        now = datetime.now(UTC)
        return [[now, self.worker, name, value] for name, value in self.snapshot().items()]
