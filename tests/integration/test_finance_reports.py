"""The finance summary as a report job over real HTTP and a `billing reports worker` process, against
the marts dbt built from simulated data: every figure is the `billing report` answer for the month."""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from pypdf import PdfReader

from api.keys import KeyStore, store_path
from billing.analytics import report
from billing.core.reports.finance import text
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.settings import Settings
from tests.integration.api_fixtures import bearer, serve
from tests.integration.marts_data import BuiltMarts
from tests.integration.reports_helpers import start_worker, stop, until_done


@dataclass
class Finance:
    settings: Settings
    env: dict[str, str]
    month: str
    """The simulated month with the most booked invoices."""


@pytest.fixture(scope="module")
def finance(marts: BuiltMarts, tmp_path_factory) -> Iterator[Finance]:
    tag = uuid.uuid4().hex[:8]
    scoped = marts.settings.model_copy(update={"topic_report_jobs": f"tests-finance-{tag}.report-jobs",
                                               "reports_dir": tmp_path_factory.mktemp("finance-reports"),
                                               "report_worker_group": f"tests-finance-{tag}"})
    admin = admin_client(scoped.kafka_bootstrap)
    ensure_topics(admin, [TopicSpec(scoped.topic_report_jobs, 2, 1)])
    seasonality = report.answer(scoped, report.questions()["billing_seasonality"])
    busiest = max(seasonality.rows, key=lambda row: (row[1], row[0]))[0]
    env = {**os.environ, "BILLING_CLICKHOUSE_URL": scoped.clickhouse_url, "BILLING_CLICKHOUSE_PASSWORD": scoped.clickhouse_password,
           "BILLING_CLICKHOUSE_READONLY_PASSWORD": scoped.clickhouse_readonly_password,
           "BILLING_CLICKHOUSE_DATABASE": scoped.clickhouse_database,
           "BILLING_CLICKHOUSE_MARTS_DATABASE": scoped.clickhouse_marts_database, "BILLING_STATE_DIR": str(scoped.state_dir),
           "BILLING_REPORTS_DIR": str(scoped.report_dir), "BILLING_REPORT_WORKER_GROUP": scoped.report_worker_group,
           "BILLING_TOPIC_REPORT_JOBS": scoped.topic_report_jobs}
    yield Finance(scoped, env, f"{busiest:%Y-%m}")
    admin.delete_topics([scoped.topic_report_jobs])


def answered(f: Finance) -> dict[tuple[str, str], str]:
    """(section, metric) -> the figure as printed, straight from the `billing report` views."""
    questions = report.questions()
    month = {"m": f"{f.month}-01"}
    row = {}
    for name in ("billing_seasonality", "mrr_movements"):
        found = report.answer(f.settings, questions[name], "month_start = {m:Date}", month)
        assert len(found.rows) == 1, (name, found.rows)
        row |= dict(zip(found.columns, found.rows[0], strict=True))
    outstanding = report.answer(f.settings, questions["outstanding_payments"])
    total = sum((r[outstanding.columns.index("total_usd")] for r in outstanding.rows), Decimal(0))
    figures = {("booked", "booked_usd"): row["booked_usd"], ("booked", "invoices"): row["invoices"],
               ("collected", "collected_usd"): row["collected_usd"], ("collected", "payments"): row["payments"],
               ("outstanding", "all_invoices"): len(outstanding.rows), ("outstanding", "all_usd"): total,
               **{("mrr", c): row[c] for c in ("starting_mrr_usd", "new_mrr_usd", "expansion_mrr_usd", "contraction_mrr_usd",
                                              "churned_mrr_usd", "ending_mrr_usd", "net_revenue_retention")}}
    return {key: text(value) for key, value in figures.items()}


def test_an_admin_s_finance_summary_holds_the_report_answers_and_tenants_never_see_it(finance: Finance) -> None:
    keys = KeyStore(store_path(finance.settings))
    _key, admin = keys.create([], admin=True, label="tests-finance")
    _key, tenant = keys.create(["cus-any"], label="tests-finance-tenant")
    want = answered(finance)
    assert Decimal(want[("booked", "booked_usd")]) > 0 and Decimal(want[("collected", "collected_usd")]) > 0
    worker = start_worker(finance.env, "tests-finance")
    try:
        with serve(finance.settings) as (base, _served):
            for headers, body, status, kind in [
                (bearer(tenant), {"kind": "finance_summary", "period": finance.month}, 403, "forbidden"),
                (bearer(admin), {"kind": "finance_summary", "customer_id": "cus-any", "period": finance.month}, 422,
                 "invalid-request"),
                (bearer(admin), {"period": finance.month}, 422, "invalid-request"),
            ]:
                refused = httpx.post(f"{base}/v1/reports", headers=headers, json=body)
                assert refused.status_code == status and refused.json()["type"].endswith("/" + kind), refused.text
            jobs = {}
            for fmt in ("csv", "pdf"):
                asked = httpx.post(f"{base}/v1/reports", headers=bearer(admin),
                                   json={"kind": "finance_summary", "period": finance.month, "format": fmt})
                assert asked.status_code == 202, asked.text
                assert asked.json()["customer_id"] is None
                jobs[fmt] = asked.json()["job_id"]
            files = {}
            for fmt, job in jobs.items():
                status = until_done(base, admin, job)
                assert status["status"] == "completed", status
                files[fmt] = httpx.get(f"{base}{status['file_url']}", headers=bearer(admin))
                assert files[fmt].status_code == 200
                hidden = httpx.get(f"{base}/v1/reports/{job}", headers=bearer(tenant))
                assert hidden.status_code == 404
            assert httpx.get(f"{base}/v1/reports", headers=bearer(tenant)).json()["items"] == []
            assert {item["job_id"] for item in httpx.get(f"{base}/v1/reports", headers=bearer(admin)).json()["items"]} == set(jobs.values())
    finally:
        stop(worker)
    rows = {(r["section"], r["metric"]): r["value"] for r in csv.DictReader(io.StringIO(files["csv"].text))}
    assert {key: rows[key] for key in want} == want
    pdf = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(files["pdf"].content)).pages).split())
    assert f"Finance summary {finance.month}" in pdf
    for key in (("booked", "booked_usd"), ("collected", "collected_usd"), ("mrr", "ending_mrr_usd")):
        assert f"{key[1]} {want[key]} USD" in pdf, key
