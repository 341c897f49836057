"""Report files in the local reports folder (``BILLING_REPORTS_DIR``, default <state>/reports).

A job's file is ``<job id>.<attempt>.<format>``, written to a temporary name and renamed into place, so a
reader never sees half a file and an attempt never replaces another attempt's file (a superseded attempt
removes its own). Files of jobs completed more
than ``BILLING_REPORT_RETENTION_DAYS`` ago are deleted and their jobs marked expired.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from billing.core.contracts import ReportFormat
from billing.core.reports import finance, table
from billing.core.reports.finance import FinanceSummary
from billing.core.reports.jobs import JobState, expire
from billing.core.reports.usage import UsageReport
from billing.reports import pdf
from billing.reports.store import JobStore
from billing.settings import Settings

MEDIA_TYPES = {ReportFormat.CSV: "text/csv", ReportFormat.PDF: "application/pdf"}
Report = UsageReport | FinanceSummary
_CSV = {UsageReport: table.to_csv, FinanceSummary: finance.to_csv}
_PDF = {UsageReport: pdf.render, FinanceSummary: pdf.render_finance}


def file_name(state: JobState) -> str:
    return f"{state.job_id}.{state.attempts}.{state.job.format.value}"


def path_of(settings: Settings, name: str) -> Path:
    """Where the report file ``name`` is kept."""
    return settings.report_dir / name


def write(settings: Settings, state: JobState, report: Report) -> str:
    """Render ``report`` in the job's format into the reports folder; returns the file name."""
    folder = settings.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name(state)
    draft = folder / f".{name}.{os.getpid()}.part"
    if state.job.format is ReportFormat.CSV:
        draft.write_text(_CSV[type(report)](report))
    else:
        _PDF[type(report)](report, draft)
    os.replace(draft, folder / name)
    return name


def remove(settings: Settings, name: str) -> None:
    """Delete the report file ``name`` if it exists."""
    path_of(settings, name).unlink(missing_ok=True)


def sweep(settings: Settings, jobs: JobStore, now: datetime) -> int:
    """Delete the files kept longer than the retention and mark their jobs expired; returns how many."""
    cutoff = now - timedelta(days=settings.report_retention_days)
    expired = jobs.completed_before(int(cutoff.timestamp() * 1000))
    for state in expired:
        if state.file:
            remove(settings, state.file)
        jobs.write(expire(state, now))
    return len(expired)
