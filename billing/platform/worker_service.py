"""The stream worker as a local service of `billing up | down | status`."""

from __future__ import annotations

import json
import sys
import urllib.request

from billing.platform.process import ManagedProcess
from billing.platform.service import Service
from billing.settings import Settings


def fetch_stats(port: int, timeout: float = 2.0) -> dict | None:
    """The worker's ``/stats`` document, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def describe(stats: dict) -> str:
    """One status line: lag, throughput, dedup hits, dead letters, late corrections."""
    return (f"lag {stats['consumer_lag']:,.0f}, {stats['throughput']:,.0f} ev/s, "
            f"{stats['duplicates']:,.0f} dedup hits, {stats['dead_letters']:,.0f} dead letters, "
            f"{stats['late_corrections']:,.0f} late corrections, partitions {stats['partitions']}")


class WorkerService(Service):
    """The ``index``-th `billing worker` process (Faust agents, RocksDB state) of the local stack:
    service ``worker`` for the first, ``worker-2``, ``worker-3``... for the others, each on the next
    web port."""

    def __init__(self, settings: Settings, index: int = 1):
        super().__init__(settings)
        self.index = index
        self.name = "worker" if index == 1 else f"worker-{index}"
        self.port = settings.worker_web_port + index - 1

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def managed(self) -> ManagedProcess:
        port = self.port
        return ManagedProcess(
            name=self.name,
            argv=[sys.executable, "-m", "billing", "worker", "--name", f"worker-{self.index}", "--web-port", str(port),
                  "--loglevel", "info"],
            run_dir=self.settings.run_dir,
            log_dir=self.settings.log_dir,
            health=lambda: fetch_stats(port) is not None,
            ports=[("127.0.0.1", port)],
            env={"PYTHONUNBUFFERED": "1"},
            hint="set BILLING_WORKER_WEB_PORT",
        )

    def details(self) -> str:
        stats = fetch_stats(self.port)
        return describe(stats) if stats else ""


def worker_services(settings: Settings) -> list[WorkerService]:
    """The stack's workers: ``worker_processes`` of them, and any further one still running (started
    before the setting was lowered), so that `billing status` shows it and `billing down` stops it."""
    workers = [WorkerService(settings, index) for index in range(1, settings.worker_processes + 1)]
    while (extra := WorkerService(settings, len(workers) + 1)).managed().process() is not None:
        workers.append(extra)
    return workers
