"""The report worker as a local service of `billing up | down | status`."""

from __future__ import annotations

from billing.platform.group_service import GroupConsumerService


class ReportWorkerService(GroupConsumerService):
    """`billing reports worker` in the background: report jobs and schedules (BILLING_REPORT_* settings); healthy
    once it is a member of the report workers' consumer group."""

    name = "reports"
    command = ("reports", "worker")
    member = "reports-1"

    @property
    def consumer_group(self) -> str:
        return self.settings.report_worker_group

    def details(self) -> str:
        return f"{self.settings.report_worker_concurrency} at once, files in {self.settings.report_dir}"
