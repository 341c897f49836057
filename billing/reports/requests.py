"""A report request: validated, then queued once per idempotency key.

The job is published on the report jobs topic first and its queued state stored after, so a request
that fails leaves nothing queued; a crash between the two leaves a queued message whose state the
worker writes (a re-request with the same key publishes it again: the worker runs a job to
completion once, whatever number of messages name it).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from billing.core.contracts import ReportFormat, ReportJob, ReportKind, scope_rule
from billing.core.invoicing.errors import PeriodError, UnknownCustomer
from billing.core.invoicing.periods import parse_period
from billing.core.reports.errors import IdempotencyConflict, ReportScopeError, UnknownJob
from billing.core.reports.jobs import JobState, job_id, queued, same_request
from billing.invoicing.store import Store
from billing.kafka.publish import publish
from billing.reports.store import JobStore
from billing.settings import Settings
from billing.warehouse.client import client


class Reports:
    """Requests and job lookups against the warehouse and the report jobs topic of ``settings``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        ch = client(settings)
        self.jobs = JobStore(ch, settings.clickhouse_database)
        self.billing = Store(ch, settings.clickhouse_database)

    def request(self, *, customer_id: str | None, period: str, kind: ReportKind, fmt: ReportFormat, scope: str,
                idempotency_key: str | None, now: datetime) -> tuple[JobState, bool]:
        """The job of this request and whether it was queued now (False: the key named it already)."""
        if (customer_id is None) != (kind is ReportKind.FINANCE_SUMMARY):
            raise ReportScopeError(scope_rule(kind))
        month = parse_period(period)
        if month.start > now:
            raise PeriodError(f"period {period} is in the future; a report covers a month that has started")
        key = idempotency_key or uuid.uuid4().hex
        job = ReportJob(id=job_id(scope, key), customer_id=customer_id, period=f"{month.start:%Y-%m}", kind=kind,
                        format=fmt, requested_at=now, requested_by=scope, idempotency_key=key)
        existing = self.jobs.get(job.id)
        if existing is not None:
            if not same_request(existing.job, job):
                raise IdempotencyConflict(
                    f"idempotency key {key!r} already names job {job.id} for {existing.job.customer_id or 'every customer'} "
                    f"{existing.job.period} {existing.job.kind.value} {existing.job.format.value}; use a new key")
            return existing, False
        if customer_id is not None and customer_id not in self.billing.customers([customer_id]):
            raise UnknownCustomer(f"no customer {customer_id!r} in the warehouse")
        publish(self.settings, "report_jobs", [(job.id, job)], "report job")
        return self.jobs.write(queued(job)), True

    def get(self, job: str) -> JobState:
        """The current state of ``job``."""
        found = self.jobs.get(job)
        if found is None:
            raise UnknownJob(f"no report job {job!r}; `billing reports list` shows the jobs")
        return found
