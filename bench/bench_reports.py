"""Report jobs: one customer's monthly report, request to file, and 1,000 scheduled monthly reports.

A private warehouse and report jobs topic (`bench/scratch.py`) get the invoicing benchmark's generated
month (`bench_invoicing.statements`) for 1,000 customers (``BENCH_REPORTS_CUSTOMERS``), in the month
before this one (the month a monthly schedule reports now), finalized by `billing invoice run`. Report
jobs go to `billing reports worker` processes (default concurrency), files to the temporary state folder.

Timed: (0) one report's stages in this process (warehouse reads, PDF, CSV), to see where its time goes.
(1) single customer_usage reports (PDF and CSV) requested one at a time with one worker idle and
waiting, from the request to the job's completed state (polled every 50 ms); target < 2 s. (2) two
workers started with a schedules file holding one monthly schedule for every customer: from starting
them to the last of the jobs completed (each worker queues the due run at start; the job ids make that
one run); target < 5 min for 1,000. Progress goes to stderr; after ``BENCH_REPORTS_TIMEOUT_S`` (900 s)
from the start the run stops waiting and records how far the scheduled reports got.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench.bench_invoicing import statements
from bench.scratch import scratch
from billing.core.contracts import ReportFormat, ReportKind
from billing.core.pricing.proration import month_period
from billing.core.reports import table
from billing.core.reports.jobs import TERMINAL, JobStatus
from billing.core.reports.schedules import SCOPE
from billing.invoicing.run import Invoicing
from billing.reports import pdf
from billing.reports.content import customer_usage
from billing.reports.requests import Reports
from billing.settings import Settings
from billing.warehouse.client import client

CUSTOMERS = int(os.environ.get("BENCH_REPORTS_CUSTOMERS", "1000"))
TIMEOUT_S = float(os.environ.get("BENCH_REPORTS_TIMEOUT_S", "900"))
DB = "bench_reports"
SINGLES = 10
PARTITIONS = 4
SINGLE_TARGET_S = 2.0
SCHEDULED_TARGET_S = 300.0
POLL_S = 0.05
PROGRESS_EVERY_S = 15.0


def _say(text: str) -> None:
    print(f"  [reports {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "BILLING_CLICKHOUSE_URL": settings.clickhouse_url, "BILLING_CLICKHOUSE_DATABASE": DB,
            "BILLING_CLICKHOUSE_PASSWORD": settings.clickhouse_password, "BILLING_STATE_DIR": str(settings.state_dir),
            "BILLING_REPORTS_DIR": str(settings.report_dir), "BILLING_TOPIC_REPORT_JOBS": settings.topic_report_jobs,
            "BILLING_REPORT_WORKER_GROUP": settings.report_worker_group, **extra}


def _workers(env: dict[str, str], count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "billing", "reports", "worker", "--name", f"bench-reports-{i}"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(count)]


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)


def _stages(settings: Settings, period: str, customer: str, folder: Path) -> dict[str, float]:
    """Seconds of each stage of one report in this process: warehouse reads, PDF, CSV (the median of three)."""
    invoicing, timed = Invoicing(settings), {"content": [], "pdf": [], "csv": []}
    for _ in range(3):
        began = time.perf_counter()
        report = customer_usage(invoicing, customer, period, datetime.now(UTC))
        rendered = time.perf_counter()
        pdf.render(report, folder / "stage.pdf")
        written = time.perf_counter()
        table.to_csv(report)
        timed["content"].append(rendered - began)
        timed["pdf"].append(written - rendered)
        timed["csv"].append(time.perf_counter() - written)
    return {stage: statistics.median(seconds) for stage, seconds in timed.items()}


def _singles(reports: Reports, period: str, customers: list[str], deadline: float) -> list[tuple[str, float]]:
    """(format, seconds from request to completed) of one report at a time, after one untimed report (the worker
    starts and joins its group meanwhile)."""
    timed = []
    for i, customer in enumerate([customers[-1], *customers]):
        fmt = (ReportFormat.CSV, ReportFormat.PDF)[i % 2]
        began = time.perf_counter()
        state, _created = reports.request(customer_id=customer, period=period, kind=ReportKind.CUSTOMER_USAGE, fmt=fmt,
                                          scope="bench", idempotency_key=uuid.uuid4().hex, now=datetime.now(UTC))
        while state.status not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"single report {i} of {len(customers)} ({state.job_id}) still {state.status.value} "
                                   f"after {time.perf_counter() - began:.0f} s: is the report worker running?")
            time.sleep(POLL_S)
            state = reports.get(state.job_id)
        if state.status is not JobStatus.COMPLETED:
            raise RuntimeError(f"report job {state.job_id} {state.status.value}: {state.error}")
        seconds = time.perf_counter() - began
        _say(f"single report {i}/{len(customers)} ({fmt.value}) in {seconds:.2f} s" + (" (warm-up, not timed)" if i == 0 else ""))
        if i:
            timed.append((fmt.value, seconds))
    return timed


def _scheduled(reports: Reports, began: float, deadline: float) -> tuple[int, int]:
    """(completed, failed) scheduled jobs once every customer's job is terminal, or when ``deadline`` passed."""
    said = time.monotonic()
    while True:
        done, failed = reports.jobs.ch.query(
            f"SELECT countIf(status = 'completed'), countIf(status = 'failed') FROM (SELECT argMax(status, version) AS status "
            f"FROM {DB}.report_jobs WHERE requested_by = {{s:String}} GROUP BY job_id)", parameters={"s": SCOPE}).result_rows[0]
        if done + failed >= CUSTOMERS or time.monotonic() > deadline:
            return done, failed
        if time.monotonic() - said >= PROGRESS_EVERY_S:
            elapsed = time.perf_counter() - began
            _say(f"scheduled: {done:,}/{CUSTOMERS:,} completed, {failed} failed after {elapsed:.0f} s ({done / elapsed:.1f}/s)")
            said = time.monotonic()
        time.sleep(0.5)


def run() -> str:
    now = datetime.now(UTC)
    month = month_period(month_period(now).start - timedelta(days=1))
    period = f"{month.start:%Y-%m}"
    deadline = time.monotonic() + TIMEOUT_S
    tag = uuid.uuid4().hex[:8]
    with scratch("reports", DB, {"topic_report_jobs": PARTITIONS, "topic_invoices": None},
                 report_worker_group=f"bench-reports-{tag}") as settings:
        ch = client(settings)
        _say(f"generating {period} for {CUSTOMERS:,} customers and finalizing its invoices")
        for statement in statements(DB, CUSTOMERS, f"{month.start:%Y-%m-%d %H:%M:%S}"):
            ch.command(statement)
        Invoicing(settings).run_period(period, now=month.end + timedelta(hours=2), finalize=True)
        rollups = ch.command(f"SELECT count() FROM {DB}.usage_rollups")
        reports = Reports(settings)
        customers = sorted(reports.billing.customers())
        load = [os.getloadavg()[0]]
        stages = _stages(settings, period, customers[0], settings.state_dir)
        _say("one report in process: " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in stages.items()))
        workers = _workers(_env(settings), 1)
        try:
            singles = _singles(reports, period, customers[:: max(1, CUSTOMERS // SINGLES)][:SINGLES], deadline)
        finally:
            _stop(workers)
        load.append(os.getloadavg()[0])
        schedules = settings.state_dir / "schedules.yaml"
        schedules.write_text(yaml.safe_dump({"schedules": [{"id": "bench-monthly", "every": "monthly", "format": "pdf"}]}))
        _say(f"scheduled: two workers start with a monthly schedule for every customer (stops at the timeout, "
             f"{max(0.0, deadline - time.monotonic()):.0f} s left of BENCH_REPORTS_TIMEOUT_S={TIMEOUT_S:.0f})")
        began = time.perf_counter()
        workers = _workers(_env(settings, BILLING_REPORT_SCHEDULES_FILE=str(schedules)), 2)
        try:
            done, failed = _scheduled(reports, began, deadline)
        finally:
            _stop(workers)
        scheduled_s = time.perf_counter() - began
        load.append(os.getloadavg()[0])
    seconds = [s for _fmt, s in singles]
    by_format = {fmt: statistics.median(s for f, s in singles if f == fmt) for fmt in ("pdf", "csv")}
    single_status = "meets" if max(seconds) < SINGLE_TARGET_S else "misses"
    finished = done + failed >= CUSTOMERS
    scheduled_status = "meets" if done == CUSTOMERS and scheduled_s < SCHEDULED_TARGET_S else "misses"
    reached = "" if finished else f" (stopped at the timeout: {CUSTOMERS - done - failed:,} not finished)"
    return "\n".join([
        "## reports",
        "",
        f"Report jobs on a private local warehouse (chdb over HTTP) holding {period} for {CUSTOMERS:,} customers "
        f"({rollups:,} hourly rollup rows, the invoicing benchmark's generator; invoices finalized), a private "
        f"{PARTITIONS}-partition report jobs topic on the local broker, `billing reports worker` processes with the default "
        f"concurrency ({settings.report_worker_concurrency} consumers each).",
        "",
        "| measure | result |",
        "|---|---:|",
        f"| one report in process: warehouse reads / PDF / CSV (median of 3) | {stages['content']:.2f} / {stages['pdf']:.2f} / "
        f"{stages['csv']:.3f} s |",
        f"| one customer's monthly report, request to completed, one at a time ({len(seconds)}, one worker): median | "
        f"{statistics.median(seconds):.2f} s |",
        f"| same, slowest | {max(seconds):.2f} s |",
        f"| same, median PDF / CSV | {by_format['pdf']:.2f} / {by_format['csv']:.2f} s |",
        f"| {CUSTOMERS:,} scheduled monthly PDF reports (two workers started with the schedule, to the last completed) | "
        f"{scheduled_s:.1f} s ({done:,} completed, {failed} failed, {done / scheduled_s:.1f} reports/s){reached} |",
        "",
        f"Targets: a monthly report < {SINGLE_TARGET_S:.0f} s: {single_status} it; {CUSTOMERS:,} scheduled reports < "
        f"{SCHEDULED_TARGET_S / 60:.0f} min: {scheduled_status} it. The machine is shared (2 cores): 1-minute load average "
        f"{load[0]:.1f} before the single reports, {load[1]:.1f} before the scheduled run and {load[2]:.1f} after it.",
    ])
