"""Scheduled reports: the due runs of the schedules file queued as report jobs, once per schedule x period.

Every report worker checks the schedules every ``BILLING_REPORT_SCHEDULE_CHECK_S`` and queues the due
run's jobs that do not exist yet. The jobs' ids follow from the schedule, period and customer
(:func:`~billing.core.reports.schedules.idempotency_key`), so workers that check at the same time, or a
worker that restarts, name the same jobs: at worst a job is published twice, both messages go to the
same partition (the key is the job id) and the second finds the job terminal, so it never runs twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from billing.core.contracts import ReportJob, ReportKind
from billing.core.errors import ConfigError
from billing.core.pricing.catalog import data_files, read_document
from billing.core.reports.jobs import job_id, queued
from billing.core.reports.schedules import SCOPE, Run, Schedule, due, idempotency_key, parse_schedules, run_prefix
from billing.kafka.publish import publish
from billing.reports.requests import Reports


def load(paths: Iterable[Path]) -> tuple[Schedule, ...]:
    """The schedules of the files ``paths`` name (a folder: every YAML/JSON file in it)."""
    found: dict[str, Schedule] = {}
    for path in data_files(paths):
        for schedule in parse_schedules(read_document(path), str(path)):
            if schedule.id in found:
                raise ConfigError(f"{path}: schedule id {schedule.id!r} is also in another schedules file")
            found[schedule.id] = schedule
    return tuple(found.values())


def jobs_of(run: Run, customers: Iterable[str], now: datetime) -> list[ReportJob]:
    """The report jobs of ``run`` (``customers``: every customer of the warehouse, for ``all``)."""
    s = run.schedule
    if s.kind is ReportKind.FINANCE_SUMMARY:
        targets: list[str | None] = [None]
    else:
        targets = sorted(customers) if s.customers == "all" else list(s.customers)
    return [ReportJob(id=job_id(SCOPE, idempotency_key(run, c)), customer_id=c, period=run.period, kind=s.kind, format=s.format,
                      requested_at=now, requested_by=SCOPE, idempotency_key=idempotency_key(run, c)) for c in targets]


def queue_due(reports: Reports, schedules: Iterable[Schedule], now: datetime) -> int:
    """Queue the jobs of each schedule's due run that are not known yet; returns how many were queued."""
    runs = [due(s, now) for s in schedules]
    if not runs:
        return 0
    customers = list(reports.billing.customers()) if any(r.schedule.customers == "all" for r in runs) else []
    new = []
    for run in runs:
        known = reports.jobs.requested(SCOPE, run_prefix(run))
        new += [job for job in jobs_of(run, customers, now) if job.id not in known]
    if new:
        publish(reports.settings, "report_jobs", [(job.id, job) for job in new], "scheduled report job")
        reports.jobs.write_many([queued(job) for job in new])
    return len(new)
