"""Report jobs: one customer's monthly report, request to file, and 1,000 scheduled monthly reports.

A private local warehouse (own port and state folder) gets the invoicing benchmark's generated month
(`bench_invoicing.statements`) for 1,000 customers, in the month before this one (the month a
monthly schedule reports now), finalized by `billing invoice run`. Report jobs go through a private
topic on the broker of the settings (started for the run when it is not running) to `billing reports
worker` processes (default concurrency), files to a temporary folder.

Timed: (1) single customer_usage reports (PDF and CSV) requested one at a time with one worker idle
and waiting, from the request to the job's completed state (polled every 20 ms); target < 2 s. (2) two
workers started with a schedules file holding one monthly schedule for every customer: from starting
them to the last of the 1,000 jobs completed (each worker queues the due run at start; the job ids
make that one run); target < 5 min.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench.bench_invoicing import statements
from bench.bench_marts import _free_port as free_port
from billing.core.contracts import ReportFormat, ReportKind
from billing.core.pricing.proration import month_period
from billing.core.reports.jobs import TERMINAL, JobStatus
from billing.core.reports.schedules import SCOPE
from billing.invoicing.run import Invoicing
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.platform import stack
from billing.reports.requests import Reports
from billing.settings import Settings, get_settings
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate

CUSTOMERS = 1_000
DB = "bench_reports"
SINGLES = 10
PARTITIONS = 4
SINGLE_TARGET_S = 2.0
SCHEDULED_TARGET_S = 300.0
POLL_S = 0.02


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


def _singles(reports: Reports, period: str, customers: list[str]) -> list[tuple[str, float]]:
    """(format, seconds from request to completed) of one report at a time."""
    timed = []
    for i, customer in enumerate(customers):
        fmt = (ReportFormat.PDF, ReportFormat.CSV)[i % 2]
        began = time.perf_counter()
        state, _created = reports.request(customer_id=customer, period=period, kind=ReportKind.CUSTOMER_USAGE, fmt=fmt,
                                          scope="bench", idempotency_key=uuid.uuid4().hex, now=datetime.now(UTC))
        while state.status not in TERMINAL:
            time.sleep(POLL_S)
            state = reports.get(state.job_id)
        if state.status is not JobStatus.COMPLETED:
            raise RuntimeError(f"report job {state.job_id} {state.status.value}: {state.error}")
        timed.append((fmt.value, time.perf_counter() - began))
    return timed


def _scheduled(reports: Reports, timeout: float = 1800) -> tuple[int, int]:
    """(completed, failed) scheduled jobs once every customer's job is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        done, failed = reports.jobs.ch.query(
            f"SELECT countIf(status = 'completed'), countIf(status = 'failed') FROM (SELECT argMax(status, version) AS status "
            f"FROM {DB}.report_jobs WHERE requested_by = {{s:String}} GROUP BY job_id)", parameters={"s": SCOPE}).result_rows[0]
        if done + failed >= CUSTOMERS or time.monotonic() > deadline:
            return done, failed
        time.sleep(0.5)


def run() -> str:
    base = get_settings()
    now = datetime.now(UTC)
    month = month_period(month_period(now).start - timedelta(days=1))
    period = f"{month.start:%Y-%m}"
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        settings = base.model_copy(update={
            "clickhouse_url": f"http://127.0.0.1:{free_port()}", "clickhouse_database": DB, "state_dir": Path(tmp),
            "reports_dir": Path(tmp) / "reports", "topic_report_jobs": f"bench-reports-{tag}.report-jobs",
            "topic_invoices": f"bench-reports-{tag}.invoices", "report_worker_group": f"bench-reports-{tag}"})
        warehouse = stack.service(settings, "warehouse")
        warehouse.start()
        kafka = stack.service(base, "kafka")
        kafka_started = kafka.start()
        admin = admin_client(settings.kafka_bootstrap)
        try:
            ensure_topics(admin, [TopicSpec(settings.topic_report_jobs, PARTITIONS, settings.kafka_replication),
                                  TopicSpec(settings.topic_invoices, settings.kafka_partitions, settings.kafka_replication)])
            migrate(settings)
            ch = client(settings)
            for statement in statements(DB, CUSTOMERS, f"{month.start:%Y-%m-%d %H:%M:%S}"):
                ch.command(statement)
            Invoicing(settings).run_period(period, now=month.end + timedelta(hours=2), finalize=True)
            rollups = ch.command(f"SELECT count() FROM {DB}.usage_rollups")
            reports = Reports(settings)
            customers = sorted(reports.billing.customers())
            load = [os.getloadavg()[0]]
            workers = _workers(_env(settings), 1)
            try:
                singles = _singles(reports, period, customers[:: CUSTOMERS // SINGLES][:SINGLES])
            finally:
                _stop(workers)
            load.append(os.getloadavg()[0])
            schedules = Path(tmp) / "schedules.yaml"
            schedules.write_text(yaml.safe_dump({"schedules": [{"id": "bench-monthly", "every": "monthly", "format": "pdf"}]}))
            began = time.perf_counter()
            workers = _workers(_env(settings, BILLING_REPORT_SCHEDULES_FILE=str(schedules)), 2)
            try:
                done, failed = _scheduled(reports)
            finally:
                _stop(workers)
            scheduled_s = time.perf_counter() - began
            load.append(os.getloadavg()[0])
        finally:
            admin.delete_topics([settings.topic_report_jobs, settings.topic_invoices])
            warehouse.stop()
            if kafka_started:
                kafka.stop()
    seconds = [s for _fmt, s in singles]
    by_format = {fmt: statistics.median(s for f, s in singles if f == fmt) for fmt in ("pdf", "csv")}
    single_status = "meets" if max(seconds) < SINGLE_TARGET_S else "misses"
    scheduled_status = "meets" if done == CUSTOMERS and scheduled_s < SCHEDULED_TARGET_S else "misses"
    return "\n".join([
        "## reports",
        "",
        f"Report jobs on a private local warehouse (chdb over HTTP) holding {period} for {CUSTOMERS:,} customers "
        f"({rollups:,} hourly rollup rows, the invoicing benchmark's generator; invoices finalized), a private "
        f"{PARTITIONS}-partition report jobs topic on the local broker, `billing reports worker` processes with the default "
        f"concurrency ({base.report_worker_concurrency} consumers each).",
        "",
        "| measure | result |",
        "|---|---:|",
        f"| one customer's monthly report, request to completed, one at a time ({SINGLES}, one worker): median | "
        f"{statistics.median(seconds):.2f} s |",
        f"| same, slowest | {max(seconds):.2f} s |",
        f"| same, median PDF / CSV | {by_format['pdf']:.2f} / {by_format['csv']:.2f} s |",
        f"| {CUSTOMERS:,} scheduled monthly PDF reports (two workers started with the schedule, to the last completed) | "
        f"{scheduled_s:.1f} s ({done:,} completed, {failed} failed, {done / scheduled_s:.1f} reports/s) |",
        "",
        f"Targets: a monthly report < {SINGLE_TARGET_S:.0f} s: {single_status} it; {CUSTOMERS:,} scheduled reports < "
        f"{SCHEDULED_TARGET_S / 60:.0f} min: {scheduled_status} it. The machine is shared (2 cores): 1-minute load average "
        f"{load[0]:.1f} before the single reports, {load[1]:.1f} before the scheduled run and {load[2]:.1f} after it.",
    ])
