"""Report jobs end to end: the API and CLI queue them on the real broker, `billing reports worker`
processes (a consumer group) run them against the real warehouse, files are checked against it."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml
from pypdf import PdfReader

from api.keys import KeyStore, store_path
from billing.core.contracts import AlertData, AlertEvent, AlertType, ReportFormat, ReportJob, ReportKind, ThresholdUnit
from billing.core.meters import Aggregation, active_meters
from billing.core.reports.jobs import TERMINAL, JobStatus, begin, job_id, queued
from billing.core.reports.schedules import SCOPE, Schedule, due, idempotency_key
from billing.core.reports.table import number
from billing.invoicing.run import Invoicing
from billing.kafka.publish import publish
from billing.reports import files
from billing.reports.requests import Reports as ReportRequests
from billing.reports.schedules import queue_due
from billing.reports.store import JobStore
from billing.settings import Settings
from billing.warehouse.client import client
from tests.integration.api_fixtures import TopicTail, bearer, insert, scratch_settings, serve
from tests.integration.invoicing_data import SEPTEMBER, load
from tests.integration.reports_helpers import WAIT_S, start_worker, stop, until_done

PERIOD = "2026-09"
NOW = datetime(2026, 12, 7, tzinfo=UTC)


@dataclass
class Reports:
    settings: Settings
    env: dict[str, str]
    customers: list[str]
    jobs: JobStore


@pytest.fixture(scope="module")
def reports(settings, warehouse, kafka, simulated, tmp_path_factory) -> Iterator[Reports]:
    """A scratch database with the simulated September billed and one alert, scratch topics, a reports
    folder and consumer group of its own; and the environment that points `billing` processes at them."""
    with scratch_settings(settings, tmp_path_factory) as scoped:
        scoped = scoped.model_copy(update={"state_dir": settings.state_dir, "reports_dir": tmp_path_factory.mktemp("reports"),
                                           "report_worker_group": f"tests-reports-{uuid.uuid4().hex[:8]}"})
        ch = client(scoped)
        records, manifest = simulated
        load(ch, scoped.clickhouse_database, records, manifest)
        summary = Invoicing(scoped).run_period(PERIOD, now=NOW, finalize=True)
        billed = sorted({invoice.customer_id for invoice in summary.invoices})
        alert = AlertEvent(id="alert-rpt-1", source="tests", type=AlertType.USAGE_THRESHOLD, subject=billed[0], time=SEPTEMBER,
                           data=AlertData(rule="api-calls-1k", meter="api_calls", period_start=SEPTEMBER,
                                          period_end=datetime(2026, 10, 1, tzinfo=UTC), value=Decimal(1000),
                                          threshold=Decimal(1000), unit=ThresholdUnit.UNITS, limit=Decimal(1000)))
        insert(scoped, alert)
        env = {**os.environ, "BILLING_CLICKHOUSE_DATABASE": scoped.clickhouse_database,
               "BILLING_REPORTS_DIR": str(scoped.report_dir), "BILLING_REPORT_WORKER_GROUP": scoped.report_worker_group,
               **{f"BILLING_TOPIC_{logical.upper()}": name for logical, name in scoped.topics().items()}}
        yield Reports(scoped, env, billed, JobStore(ch, scoped.clickhouse_database))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing", "reports", *args], env={**env, "COLUMNS": "250"},
                          capture_output=True, text=True, timeout=WAIT_S)


def expected_totals(r: Reports, customer: str) -> dict[str, Decimal]:
    """Each meter's September total straight from the warehouse, in the meter's aggregation."""
    rows = client(r.settings).query(
        f"SELECT meter, sum(value), max(value), argMax(value, window_start) FROM {r.settings.clickhouse_database}.usage_rollups "
        "FINAL WHERE customer_id = {c:String} AND window_seconds = 3600 AND toYYYYMM(window_start) = 202609 GROUP BY meter",
        parameters={"c": customer}).result_rows
    pick = {Aggregation.SUM: 1, Aggregation.COUNT: 1, Aggregation.MAX: 2, Aggregation.UNIQUE_COUNT: 2, Aggregation.LATEST: 3}
    meters = active_meters()
    return {row[0]: Decimal(row[pick[meters[row[0]].aggregation]]) for row in rows}


def _end_offsets(r: Reports) -> list[int]:
    tail = TopicTail(r.settings, r.settings.topic_report_jobs)
    try:
        return list(tail.positions.values())
    finally:
        tail.close()


def queued_count(r: Reports) -> tuple[int, int]:
    """(messages on the report jobs topic, jobs in the table)."""
    jobs = client(r.settings).query(f"SELECT uniqExact(job_id) FROM {r.settings.clickhouse_database}.report_jobs").result_rows[0][0]
    return sum(_end_offsets(r)), jobs


AT_ONCE = 20


def check_file(r: Reports, base: str, token: str, status: dict, customer: str, fmt: str) -> None:
    """The job's file holds the warehouse's totals (CSV: also its invoice and cost)."""
    file = httpx.get(f"{base}{status['file_url']}", headers=bearer(token))
    assert file.status_code == 200
    totals = expected_totals(r, customer)
    assert totals, customer
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(file.text)))
        assert {row["meter"]: Decimal(row["value"]) for row in rows if row["section"] == "total"} == totals
        invoices = [row for row in rows if row["section"] == "invoice"]
        assert len(invoices) == 1 and invoices[0]["detail"] == "finalized"
        cost = [Decimal(row["value"]) for row in rows if row["section"] == "cost_total"]
        assert cost == [Decimal(invoices[0]["value"])], "a closed month costs what its invoice bills"
    else:
        assert file.headers["content-type"] == "application/pdf"
        text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(file.content)).pages)
        for meter, total in totals.items():
            assert f"{meter}: total {number(total)}" in text, (meter, total)


def listed(base: str, token: str, limit: int) -> list[dict]:
    """Every job GET /v1/reports shows ``token``, page by page."""
    found, after = [], None
    while True:
        page = httpx.get(f"{base}/v1/reports", headers=bearer(token), params={"limit": limit, **({"after": after} if after else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= limit
        found += body["items"]
        after = body["next_after"]
        if after is None:
            return found


def test_jobs_queued_at_once_finish_with_the_warehouse_s_numbers(reports: Reports) -> None:
    """20 jobs queued at once over HTTP, two workers, the API restarted while they run: every job completes
    once with the warehouse's numbers, and the restarted API reports and lists every job."""
    keys = KeyStore(store_path(reports.settings))
    _key, admin = keys.create([], admin=True, label="tests-reports")
    mine = reports.customers[0]
    _key, tenant = keys.create([mine], label="tests-reports-tenant")
    workers = [start_worker(reports.env, f"tests-reports-{i}") for i in range(2)]
    try:
        asked = {}
        with serve(reports.settings) as (base, _served):
            for i in range(AT_ONCE):
                customer, fmt = reports.customers[i % len(reports.customers)], ("csv", "pdf")[i % 2]
                answer = httpx.post(f"{base}/v1/reports", headers={**bearer(admin), "Idempotency-Key": f"k-{i}"},
                                    json={"customer_id": customer, "period": PERIOD, "format": fmt})
                assert answer.status_code == 202, answer.text
                body = answer.json()
                assert body["status"] == "queued" and answer.headers["location"] == body["status_url"]
                asked[body["job_id"]] = (customer, fmt)
            again = httpx.post(f"{base}/v1/reports", headers={**bearer(admin), "Idempotency-Key": "k-0"},
                               json={"customer_id": reports.customers[0], "period": PERIOD, "format": "csv"})
            assert again.status_code == 200 and again.json()["job_id"] in asked
        assert len(asked) == AT_ONCE
        with serve(reports.settings) as (base, _served):  # a new API process state: nothing but the warehouse remembers
            for job, (customer, fmt) in asked.items():
                status = until_done(base, admin, job)
                assert status["status"] == "completed", status
                assert status["progress"] == 100 and status["file_url"] == f"/v1/reports/{job}/file"
                check_file(reports, base, admin, status, customer, fmt)
            alerted = next(job for job, (customer, fmt) in asked.items() if customer == mine and fmt == "csv")
            rows = list(csv.DictReader(io.StringIO(httpx.get(f"{base}/v1/reports/{alerted}/file", headers=bearer(admin)).text)))
            assert [(r["key"], r["value"]) for r in rows if r["section"] == "alert"] == [("api-calls-1k", "1000")]
            everything = listed(base, admin, limit=7)
            assert sorted(item["job_id"] for item in everything) == sorted(asked), "each job listed once, across pages"
            assert [item["requested_at"] for item in everything] == sorted((i["requested_at"] for i in everything), reverse=True)
            assert {item["status"] for item in everything} == {"completed"}
            own = listed(base, tenant, limit=2)
            assert sorted(item["job_id"] for item in own) == sorted(job for job, (c, _f) in asked.items() if c == mine)
            foreign = next(job for job, (customer, _fmt) in asked.items() if customer != mine)
            hidden = httpx.get(f"{base}/v1/reports", headers=bearer(tenant), params={"after": foreign})
            assert hidden.status_code == 404 and hidden.json()["type"].endswith("/unknown-report-job")
        assert queued_count(reports) == (AT_ONCE, AT_ONCE), "each job queued once, the repeated key queued nothing"
        completed = client(reports.settings).query(
            f"SELECT job_id, count() FROM {reports.settings.clickhouse_database}.report_jobs WHERE status = 'completed' "
            "GROUP BY job_id").result_rows
        assert sorted(completed) == sorted((job, 1) for job in asked), "every job completed exactly once"
    finally:
        for worker in workers:
            stop(worker)
    assert all(w.returncode == 0 for w in workers), [w.stderr.read() for w in workers]


def test_bad_input_is_refused_over_http_and_nothing_is_queued(reports: Reports) -> None:
    keys = KeyStore(store_path(reports.settings))
    mine, theirs = reports.customers[0], reports.customers[1]
    _key, admin = keys.create([], admin=True, label="tests-reports")
    _key, tenant = keys.create([mine], label="tests-reports-tenant")
    _key, other = keys.create([theirs], label="tests-reports-other")
    before = queued_count(reports)
    future = f"{datetime.now(UTC) + timedelta(days=40):%Y-%m}"
    with serve(reports.settings) as (base, _served):
        owned = httpx.post(f"{base}/v1/reports", headers=bearer(tenant), json={"customer_id": mine, "period": PERIOD})
        assert owned.status_code == 202
        before = (before[0] + 1, before[1] + 1)
        job = owned.json()["job_id"]
        table = [
            (bearer(admin), {"customer_id": "nobody-here", "period": PERIOD}, 404, "unknown-customer"),
            (bearer(admin), {"customer_id": mine, "period": "2026-13"}, 422, "invalid-period"),
            (bearer(admin), {"customer_id": mine, "period": "September"}, 422, "invalid-period"),
            (bearer(admin), {"customer_id": mine, "period": future}, 422, "invalid-period"),
            (bearer(admin), {"customer_id": mine, "period": PERIOD, "format": "docx"}, 422, "invalid-request"),
            (bearer(admin), {"customer_id": mine, "period": PERIOD, "kind": "finance"}, 422, "invalid-request"),
            (bearer(tenant), {"customer_id": theirs, "period": PERIOD}, 403, "forbidden"),
            ({**bearer(tenant), "Idempotency-Key": "same"}, {"customer_id": mine, "period": PERIOD}, 202, None),
            ({**bearer(tenant), "Idempotency-Key": "same"}, {"customer_id": mine, "period": "2026-08"}, 409,
             "idempotency-key-reused"),
        ]
        for headers, body, status, kind in table:
            answer = httpx.post(f"{base}/v1/reports", headers=headers, json=body)
            assert answer.status_code == status, (body, answer.text)
            if kind is not None:
                assert answer.headers["content-type"] == "application/problem+json"
                problem = answer.json()
                assert problem["type"].endswith("/" + kind) and problem["detail"], problem
            else:
                before = (before[0] + 1, before[1] + 1)
        nobody = "rpt-000000000000000000000000"
        for suffix in ("", "/file"):
            unknown = httpx.get(f"{base}/v1/reports/{nobody}{suffix}", headers=bearer(other))
            foreign = httpx.get(f"{base}/v1/reports/{job}{suffix}", headers=bearer(other))
            assert unknown.status_code == foreign.status_code == 404
            assert foreign.text.replace(job, "ID") == unknown.text.replace(nobody, "ID"), "the same answer as an unknown job"
        assert httpx.get(f"{base}/v1/reports/{job}", headers=bearer(tenant)).status_code == 200
        not_ready = httpx.get(f"{base}/v1/reports/{job}/file", headers=bearer(tenant))
        assert not_ready.status_code == 409 and not_ready.json()["type"].endswith("/report-not-ready")
    assert queued_count(reports) == before, "refused requests queued nothing"


def test_bad_input_is_refused_by_the_cli_and_nothing_is_queued(reports: Reports) -> None:
    before = queued_count(reports)
    customer = reports.customers[0]
    table = [
        (("request", "-c", "nobody-here", "-p", PERIOD, "--no-wait"), "no customer 'nobody-here'"),
        (("request", "-c", customer, "-p", "2026-9x", "--no-wait"), "is not a month like"),
        (("request", "-c", customer, "-p", "2099-01", "--no-wait"), "is in the future"),
        (("request", "-c", customer, "-p", PERIOD, "-f", "docx", "--no-wait"), "Invalid value for '--format'"),
        (("request", "-c", customer, "-p", PERIOD, "--kind", "finance", "--no-wait"), "Invalid value for '--kind'"),
        (("status", "rpt-000000000000000000000000"), "no report job 'rpt-000000000000000000000000'"),
        (("get", "rpt-000000000000000000000000"), "no report job 'rpt-000000000000000000000000'"),
    ]
    for args, message in table:
        done = cli(reports.env, *args)
        assert done.returncode != 0, args
        assert message in done.stdout + done.stderr, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
    assert queued_count(reports) == before


def test_cli_requests_follow_and_fetch_a_report(reports: Reports, tmp_path: Path) -> None:
    worker = start_worker(reports.env, "tests-reports-cli")
    try:
        customer = reports.customers[2]
        done = cli(reports.env, "request", "-c", customer, "-p", PERIOD, "-f", "csv", "-k", "cli-1")
        assert done.returncode == 0, done.stderr
        assert "completed" in done.stdout
        again = cli(reports.env, "request", "-c", customer, "-p", PERIOD, "-f", "csv", "-k", "cli-1", "--no-wait")
        assert "already requested" in again.stdout and job_id("cli", "cli-1") in again.stdout
        out = tmp_path / "report.csv"
        assert cli(reports.env, "get", job_id("cli", "cli-1"), "-o", str(out)).returncode == 0
        totals = {r["meter"]: Decimal(r["value"]) for r in csv.DictReader(out.open()) if r["section"] == "total"}
        assert totals == expected_totals(reports, customer)
        listed = cli(reports.env, "list", "-c", customer)
        assert job_id("cli", "cli-1") in listed.stdout and "completed" in listed.stdout
    finally:
        stop(worker)


def test_a_job_whose_worker_crashed_mid_way_completes_exactly_once(reports: Reports) -> None:
    """The state a killed worker leaves (running, attempt 1, the message not committed), then a real kill -9
    of a worker and a new worker that takes the job over."""
    customer = reports.customers[3]
    job = ReportJob(id=job_id("tests", "crashed"), customer_id=customer, period=PERIOD, format=ReportFormat.CSV,
                    requested_at=NOW, requested_by="tests", idempotency_key="crashed")
    reports.jobs.write(begin(queued(job), NOW, reports.settings.report_max_attempts))
    publish(reports.settings, "report_jobs", [(job.id, job)], "report job")
    victim = start_worker(reports.env, "tests-reports-victim")
    deadline = time.monotonic() + WAIT_S
    while (reports.jobs.get(job.id).attempts < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    survivor = start_worker(reports.env, "tests-reports-survivor")
    try:
        deadline = time.monotonic() + WAIT_S
        while reports.jobs.get(job.id).status is not JobStatus.COMPLETED and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(survivor)
    state = reports.jobs.get(job.id)
    assert state.status is JobStatus.COMPLETED and 2 <= state.attempts <= reports.settings.report_max_attempts
    completed = client(reports.settings).query(
        f"SELECT count() FROM {reports.settings.clickhouse_database}.report_jobs WHERE job_id = {{j:String}} "
        "AND status = 'completed'", parameters={"j": job.id}).result_rows[0][0]
    assert completed == 1
    assert (reports.settings.report_dir / state.file).is_file()


def wait_for(what: str, check, worker: subprocess.Popen | None = None, pause: float = 0.02):
    """The first truthy ``check()`` within WAIT_S (``worker`` must stay alive meanwhile)."""
    deadline = time.monotonic() + WAIT_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert worker is None or worker.poll() is None, f"the worker exited while waiting for {what}"
        time.sleep(pause)
    return found


def test_a_worker_stalled_past_its_session_cannot_complete_a_job_another_took_over(reports: Reports, tmp_path: Path) -> None:
    """SIGSTOP a worker mid-job for longer than its consumer session: a second worker takes the job over (attempt
    2) and is stopped in turn; the first resumes and finishes its attempt 1, whose completion must be refused; the
    second resumes and completes the job, once."""
    job = ReportJob(id=job_id("tests", "stalled"), customer_id=reports.customers[4], period=PERIOD, format=ReportFormat.PDF,
                    requested_at=NOW, requested_by="tests", idempotency_key="stalled")
    reports.jobs.write(queued(job))
    publish(reports.settings, "report_jobs", [(job.id, job)], "report job")
    stalled_log = tmp_path / "stalled.log"
    stalled = start_worker(reports.env, "tests-reports-stalled", stalled_log)
    takeover = None

    def at(attempt: int):
        state = reports.jobs.get(job.id)
        return state if state.status is JobStatus.RUNNING and state.attempts == attempt else None

    try:
        wait_for("attempt 1 to start", lambda: at(1), stalled)
        stalled.send_signal(signal.SIGSTOP)
        takeover = start_worker(reports.env, "tests-reports-takeover")
        wait_for("the second worker to take the job over", lambda: at(2), takeover)  # after the session timed out
        takeover.send_signal(signal.SIGSTOP)
        assert at(2), "the second worker finished before it could be stopped"
        stalled.send_signal(signal.SIGCONT)
        wait_for("the stalled attempt to finish", lambda: "attempt 1 was superseded" in stalled_log.read_text()
                 or reports.jobs.get(job.id).status is not JobStatus.RUNNING, pause=0.1)
        takeover.send_signal(signal.SIGCONT)
        done = wait_for("the job to complete", lambda: (s := reports.jobs.get(job.id)).status in TERMINAL and s, pause=0.2)
    finally:
        for worker in (stalled, takeover):
            if worker is not None:
                stop(worker)
    completed = client(reports.settings).query(
        f"SELECT attempts, file FROM {reports.settings.clickhouse_database}.report_jobs WHERE job_id = {{j:String}} "
        "AND status = 'completed'", parameters={"j": job.id}).result_rows
    assert done.status is JobStatus.COMPLETED and completed == [(done.attempts, done.file)], "completed once"
    assert done.attempts >= 2, "the stalled worker's attempt 1 completed the job another worker had taken over"
    assert sorted(p.name for p in reports.settings.report_dir.glob(f"{job.id}.*")) == [done.file], \
        "the refused attempt's file was removed"


def scheduled(r: Reports) -> dict[str, int]:
    """Job id -> completed states, of every job the schedules made."""
    return dict(client(r.settings).query(
        f"SELECT job_id, countIf(status = 'completed') FROM {r.settings.clickhouse_database}.report_jobs "
        "WHERE requested_by = {s:String} GROUP BY job_id", parameters={"s": SCOPE}).result_rows)


def test_two_workers_and_a_restart_run_each_scheduled_report_once(reports: Reports, tmp_path: Path) -> None:
    chosen = reports.customers[:2]
    monthly = Schedule(id="tests-monthly", every="monthly", format="csv", customers=chosen)
    path = tmp_path / "schedules.yaml"
    path.write_text(yaml.safe_dump({"schedules": [monthly.model_dump(mode="json")]}))
    env = {**reports.env, "BILLING_REPORT_SCHEDULES_FILE": str(path), "BILLING_REPORT_SCHEDULE_CHECK_S": "0.5"}
    run = due(monthly, datetime.now(UTC))
    expected = {job_id(SCOPE, idempotency_key(run, customer)) for customer in chosen}
    workers = [start_worker(env, f"tests-reports-scheduler-{i}") for i in range(2)]
    try:
        deadline = time.monotonic() + WAIT_S
        while sorted(scheduled(reports).values()) != [1, 1] and time.monotonic() < deadline:
            time.sleep(0.2)
        stop(workers[0])
        workers[0] = start_worker(env, "tests-reports-scheduler-restarted")
        time.sleep(3)  # the restarted worker checks the schedules at start and every 0.5 s
    finally:
        for worker in workers:
            stop(worker)
    assert scheduled(reports) == dict.fromkeys(expected, 1), "each scheduled report completed once, none made twice"
    for job in expected:
        state = reports.jobs.get(job)
        assert state.job.period == run.period and (reports.settings.report_dir / state.file).is_file()
    daily_all = Schedule(id="tests-daily-all", every="daily", format="csv")
    finance = Schedule(id="tests-finance", every="monthly", kind=ReportKind.FINANCE_SUMMARY, format="pdf")
    requests = ReportRequests(reports.settings)
    everyone = len(requests.billing.customers())
    assert queue_due(requests, [monthly], datetime.now(UTC)) == 0, "the workers queued this run already"
    assert queue_due(requests, [daily_all, finance], NOW) == everyone + 1
    assert queue_due(requests, [daily_all, finance], NOW + timedelta(hours=5)) == 0, "the same runs: nothing new"
    assert queue_due(requests, [daily_all], NOW + timedelta(days=1)) == everyone, "the next day is a new run"


def test_files_past_their_retention_are_deleted_and_their_jobs_expire(reports: Reports) -> None:
    """Runs last: it expires the module's completed jobs."""
    completed = [s for s in reports.jobs.list(limit=1000) if s.status is JobStatus.COMPLETED]
    assert completed
    assert files.sweep(reports.settings, reports.jobs, datetime.now(UTC)) == 0, "nothing is old enough yet"
    later = datetime.now(UTC) + timedelta(days=reports.settings.report_retention_days, hours=1)
    assert files.sweep(reports.settings, reports.jobs, later) == len(completed)
    for state in completed:
        assert reports.jobs.get(state.job_id).status is JobStatus.EXPIRED
        assert not (reports.settings.report_dir / state.file).exists()
    keys = KeyStore(store_path(reports.settings))
    _key, admin = keys.create([], admin=True, label="tests-reports")
    with serve(reports.settings) as (base, _served):
        gone = httpx.get(f"{base}/v1/reports/{completed[0].job_id}/file", headers=bearer(admin))
        assert gone.status_code == 410 and gone.json()["type"].endswith("/report-expired")
        assert httpx.get(f"{base}/v1/reports/{completed[0].job_id}", headers=bearer(admin)).json()["status"] == "expired"
