"""The report worker as a local service of `billing up | down | status`."""

from __future__ import annotations

import sys

from billing.kafka.groups import group_members
from billing.platform.process import ManagedProcess
from billing.platform.service import Service

NAME = "reports-1"
"""The worker's name: its Kafka client id, by which it is found in the report workers' group."""


class ReportWorkerService(Service):
    """`billing reports worker` in the background: report jobs and schedules (BILLING_REPORT_* settings); healthy
    once it is a member of the report workers' consumer group."""

    name = "reports"

    @property
    def endpoint(self) -> str:
        return f"group {self.settings.report_worker_group}"

    def managed(self) -> ManagedProcess:
        settings = self.settings
        process = ManagedProcess(
            name=self.name,
            argv=[sys.executable, "-m", "billing", "reports", "worker", "--name", NAME],
            run_dir=settings.run_dir,
            log_dir=settings.log_dir,
            health=lambda: process.is_running() and NAME in group_members(settings.kafka_bootstrap,
                                                                          settings.report_worker_group),
            env={"PYTHONUNBUFFERED": "1"},
        )
        return process

    def details(self) -> str:
        return f"{self.settings.report_worker_concurrency} at once, files in {self.settings.report_dir}"
