"""Start one stream worker process (the body of `billing worker`)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import faust

from billing.gc_tuning import tune_gc
from billing.kafka.topics import admin_client, ensure_topics, topic_specs
from billing.settings import Settings
from billing.warehouse.migrations import migrate
from streams.app import StreamRuntime
from streams.logs import RepeatFilter

CRASH_EXIT_AFTER_S = 30.0
"""How long a crashed worker may take to stop before the process leaves anyway (status 1)."""


class Worker(faust.Worker):
    """Faust's worker whose log handlers hold back runs of repeated messages (:class:`RepeatFilter`),
    and that leaves after a crash even when Faust's stop hangs (seen in the consumer after a refused
    changelog), so that a supervisor restarts it instead of a process that consumes nothing."""

    def _crash(self, reason: BaseException) -> None:
        leave = threading.Timer(CRASH_EXIT_AFTER_S, os._exit, args=(1,))
        leave.daemon = True
        leave.start()
        super()._crash(reason)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        repeats = RepeatFilter()
        for handler in logger.handlers:
            handler.addFilter(repeats)


def worker_dir(settings: Settings, name: str) -> Path:
    """Local state (RocksDB tables) of the worker called ``name`` in the app (consumer group) of the
    settings: Faust names table files after the table only, so another app id needs another folder."""
    return settings.state_dir / "worker" / settings.worker_app_id / name


def run_worker(settings: Settings, name: str, web_port: int, loglevel: str = "warning") -> None:
    """Apply pending warehouse migrations, create missing topics and check the partition counts of
    existing ones (tables are partitioned like the topics), then run the Faust worker until it is
    stopped (SIGTERM/SIGINT)."""
    migrate(settings)
    ensure_topics(admin_client(settings.kafka_bootstrap), list(topic_specs(settings).values()))
    data_dir = worker_dir(settings, name)
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime = StreamRuntime(settings, name, web_port, data_dir)
    tune_gc(automatic=False)
    Worker(runtime.app, loglevel=loglevel, quiet=True).execute_from_commandline()
