"""Start one stream worker process (the body of `billing worker`)."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import faust

from billing.migrations import migrate
from billing.platform.topics import admin_client, ensure_topics, topic_specs
from billing.settings import Settings
from streams.app import StreamRuntime
from streams.logs import RepeatFilter


class Worker(faust.Worker):
    """Faust's worker whose log handlers hold back runs of repeated messages (:class:`RepeatFilter`)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        repeats = RepeatFilter()
        for handler in logger.handlers:
            handler.addFilter(repeats)


def worker_dir(settings: Settings, name: str) -> Path:
    """Local state (RocksDB tables) of the worker called ``name`` in the app (consumer group) of the
    settings: Faust names table files after the table only, so another app id needs another folder."""
    return settings.state_dir / "worker" / settings.worker_app_id / name


GC_THRESHOLDS = (50_000, 20, 100)
"""Collect the youngest generation every 50,000 allocations (Python's default: 700) and the oldest
about every 10^8. A worker keeps every open window decoded in memory (hundreds of thousands of
objects) and allocates dozens of short-lived objects per event; with the defaults, collections
that walk the long-lived windows took about a quarter of its time (12,100 -> 15,700 events/s)."""


def tune_gc() -> None:
    """Move the objects made at start-up out of the collector's sight and collect less often (see
    :data:`GC_THRESHOLDS`); cyclic garbage is still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(settings: Settings, name: str, web_port: int, loglevel: str = "warning") -> None:
    """Apply pending warehouse migrations, create missing topics and check the partition counts of
    existing ones (tables are partitioned like the topics), then run the Faust worker until it is
    stopped (SIGTERM/SIGINT)."""
    migrate(settings)
    ensure_topics(admin_client(settings.kafka_bootstrap), list(topic_specs(settings).values()))
    data_dir = worker_dir(settings, name)
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime = StreamRuntime(settings, name, web_port, data_dir)
    tune_gc()
    Worker(runtime.app, loglevel=loglevel, quiet=True).execute_from_commandline()
