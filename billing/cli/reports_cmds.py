"""`billing reports request | status | list | get | worker`: usage reports as asynchronous jobs."""

from __future__ import annotations

import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from billing.cli.app import app, console, stage_progress
from billing.core.contracts import ReportFormat, ReportKind
from billing.core.errors import BillingError, PlatformError
from billing.core.reports.errors import ReportNotReady
from billing.core.reports.jobs import TERMINAL, JobState, JobStatus
from billing.reports import files
from billing.reports.requests import Reports
from billing.settings import get_settings

reports_app = typer.Typer(help="Usage and finance reports as asynchronous jobs (run `billing reports worker` to execute them).",
                          no_args_is_help=True)
app.add_typer(reports_app, name="reports")

POLL_S = 0.3


@reports_app.command()
def request(
    customer: str | None = typer.Option(None, "--customer", "-c",
                                        help="Customer id (a customer usage report; none for a finance summary)."),
    period: str = typer.Option(..., "--period", "-p", help="The month reported, YYYY-MM (not in the future)."),
    kind: ReportKind = typer.Option(ReportKind.CUSTOMER_USAGE, "--kind", help="What the report shows."),
    fmt: ReportFormat = typer.Option(ReportFormat.PDF, "--format", "-f", help="File format."),
    key: str | None = typer.Option(None, "--idempotency-key", "-k",
                                   help="Asking again with the same key names the same job (default: a new key)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job with a progress bar until it ends."),
    timeout: float = typer.Option(600.0, "--timeout", min=1, help="Longest wait for the job, in seconds."),
) -> None:
    """Queue a report job (a customer's usage, or the month's finance summary); by default wait for it and print
    where its file is."""
    reports = Reports(get_settings())
    state, created = reports.request(customer_id=customer, period=period, kind=kind, fmt=fmt, scope="cli",
                                     idempotency_key=key, now=datetime.now(UTC))
    console.print(f"{'queued' if created else 'already requested'}: job [bold]{state.job_id}[/] ({state.status.value})")
    if wait and state.status not in TERMINAL:
        state = _follow(reports, state.job_id, timeout)
    _print_outcome(state)


def _follow(reports: Reports, job: str, timeout: float) -> JobState:
    deadline = time.monotonic() + timeout
    with stage_progress() as progress:
        while True:
            state = reports.get(job)
            progress(f"{state.status.value} (attempt {state.attempts})" if state.attempts else state.status.value,
                     state.progress, 100)
            if state.status in TERMINAL:
                return state
            if time.monotonic() > deadline:
                raise PlatformError(f"report job {job} is still {state.status.value} after {timeout:.0f}s; is "
                                    "`billing reports worker` running? Follow it with `billing reports status`")
            time.sleep(POLL_S)


def _print_outcome(state: JobState) -> None:
    if state.status is JobStatus.COMPLETED:
        console.print(f"[green]completed[/]: {files.path_of(get_settings(), state.file)}")
    elif state.status is JobStatus.FAILED:
        raise BillingError(f"report job {state.job_id} failed: {state.error}")
    elif state.status is JobStatus.EXPIRED:
        console.print(f"[yellow]expired[/]: the file of job {state.job_id} was deleted after the retention period")


@reports_app.command()
def status(job: str = typer.Argument(..., help="Job id.")) -> None:
    """Show a job's status, progress and outcome."""
    _jobs_table([Reports(get_settings()).get(job)])


@reports_app.command("list")
def list_jobs(
    customer: str | None = typer.Option(None, "--customer", "-c", help="Only this customer's jobs."),
    limit: int = typer.Option(20, "--limit", min=1, help="Most jobs shown, newest first."),
) -> None:
    """List the latest report jobs."""
    _jobs_table(Reports(get_settings()).jobs.list(customer, limit))


def _jobs_table(states: list[JobState]) -> None:
    table = Table("job", "customer", "period", "kind", "format", "status", "progress", "attempts", "requested", "file / error")
    for s in states:
        table.add_row(s.job_id, s.job.customer_id or "(all)", s.job.period, s.job.kind.value, s.job.format.value, s.status.value,
                      f"{s.progress}%", str(s.attempts), f"{s.job.requested_at:%Y-%m-%d %H:%M:%S}", s.error or s.file or "")
    console.print(table)


@reports_app.command()
def get(
    job: str = typer.Argument(..., help="Job id."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Copy the file here (default: print its path)."),
) -> None:
    """The file of a completed job."""
    settings = get_settings()
    state = Reports(settings).get(job)
    path = files.path_of(settings, state.file) if state.file else None
    if state.status is not JobStatus.COMPLETED or path is None or not path.is_file():
        raise ReportNotReady(f"report job {job} is {state.status.value}; it has no file"
                             + (f" ({state.error})" if state.error else ""))
    if out is None:
        console.print(str(path))
        return
    shutil.copyfile(path, out)
    console.print(f"[green]ok[/]: {out}")


@reports_app.command()
def worker(name: str = typer.Option("reports-1", "--name", help="Worker name (Kafka client id).")) -> None:
    """Execute queued report jobs (a consumer group: start several workers to share the jobs)."""
    from billing.reports.worker import ReportWorker

    settings = get_settings()
    runner = ReportWorker(settings, name)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    console.print(f"report worker {name}: {settings.report_worker_concurrency} at once, group "
                  f"{settings.report_worker_group}, files in {settings.report_dir}, {len(runner.schedules)} schedule(s)")
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop()
