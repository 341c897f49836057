"""Every contract maps to rows the warehouse schema accepts, and reads back exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.core.contracts import (
    Adjustment,
    AdjustmentKind,
    AlertData,
    AlertEvent,
    AlertType,
    AnomalyDirection,
    BillingInterval,
    BreakdownStep,
    CreditNote,
    CreditNoteLine,
    Customer,
    DeadLetter,
    Invoice,
    InvoiceStatus,
    LineItem,
    LineKind,
    PaymentMethod,
    PaymentStatus,
    PaymentTransaction,
    ReportFormat,
    ReportJob,
    Segment,
    ShippingDetails,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
    UsageData,
    UsageEvent,
)
from billing.core.reports.jobs import queued
from billing.warehouse import facts
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate

T0 = datetime(2026, 10, 5, 14, 30, 15, 123000, tzinfo=UTC)


@pytest.fixture()
def db(settings, warehouse):
    name = f"facts_{uuid.uuid4().hex[:8]}"
    scoped = settings.model_copy(update={"clickhouse_database": name})
    migrate(scoped)
    yield scoped, client(scoped, database=name)
    client(settings).command(f"DROP DATABASE IF EXISTS {name}")


def sample_models():
    usage = UsageEvent(specversion="1.0", id="evt-1", source="test", type="api_calls", subject="cus-1", time=T0,
                       data=UsageData(quantity=Decimal("12.5"), region="eu-west-1", endpoint="/v1/a|b", tier="x"))
    seats = UsageEvent(specversion="1.0", id="evt-2", source="test", type="active_seats", subject="cus-1", time=T0,
                       data=UsageData(quantity=Decimal(1), user_id="u-7"))
    customer = Customer(id="cus-1", company_name="Acme", email="a@acme.io", country="DE", region="EMEA",
                        currency="EUR", segment=Segment.SMB, signup_time=T0, updated_at=T0)
    sub = SubscriptionEvent(event_id="se-1", subscription_id="sub-1", customer_id="cus-1",
                            type=SubscriptionEventType.PLAN_CHANGED, sequence=2, plan_id="growth",
                            previous_plan_id="starter", billing_interval=BillingInterval.MONTH,
                            status=SubscriptionStatus.ACTIVE, start_time=T0, effective_time=T0, event_time=T0)
    line = LineItem(kind=LineKind.USAGE, charge="api_calls", meter="api_calls", quantity=Decimal(1500),
                    unit_price=Decimal("0.01"), amount=Decimal("10.00"),
                    breakdown=(BreakdownStep(description="1001-2000", quantity=Decimal(500),
                                             unit_price=Decimal("0.02"), amount=Decimal("10.00")),))
    invoice = Invoice(id="inv-1", customer_id="cus-1", subscription_id="sub-1", period_start=T0,
                      period_end=T0 + timedelta(days=30), currency="EUR", line_items=(line,),
                      subtotal=Decimal("10.00"),
                      adjustments=(Adjustment(id="adj-1", kind=AdjustmentKind.COUPON, code="WELCOME",
                                              percent_off=Decimal(10), amount=Decimal("1.00")),),
                      discount_total=Decimal("1.00"), tax_rate=Decimal("0.19"), tax=Decimal("1.71"),
                      total=Decimal("10.71"), status=InvoiceStatus.FINALIZED, issued_at=T0,
                      due_at=T0 + timedelta(days=14),
                      shipping=ShippingDetails(recipient="Ann", address_line="Main 1", city="Berlin",
                                               country="DE", carrier="DHL", cost=Decimal("4.90")),
                      event_time=T0, number="INV-000001")
    note = CreditNote(id="cn-inv-1-202601", number="INV-CN-000001", customer_id="cus-1", invoice_id="inv-1", period_start=T0,
                      period_end=T0 + timedelta(days=30), currency="EUR", reason="plan changed",
                      lines=(CreditNoteLine(charge="pro.fee", description="Unused fee", quantity=Decimal("0.5"),
                                            amount=Decimal("4.50"), service_start=T0, service_end=T0 + timedelta(days=30)),),
                      total=Decimal("4.50"), issued_at=T0, event_time=T0)
    payment = PaymentTransaction(event_id="pe-1", id="tx-1", invoice_id="inv-1", customer_id="cus-1",
                                 method=PaymentMethod.SEPA, amount=Decimal("10.71"), currency="EUR",
                                 status=PaymentStatus.FAILED, failure_reason="insufficient_funds", attempt=1,
                                 sequence=2, initiated_at=T0, completed_at=T0 + timedelta(seconds=3),
                                 event_time=T0 + timedelta(seconds=3))
    dead = DeadLetter.wrap(b'{"broken', "invalid JSON", "billing.usage", key=b"cus-1", partition=1, offset=7, time=T0)
    alert = AlertEvent(id="alert-1", source="billing/alerts", type=AlertType.USAGE_ANOMALY, subject="cus-1", time=T0,
                       data=AlertData(rule="api-anomaly", meter="api_calls", period_start=T0, period_end=T0 + timedelta(hours=1),
                                      value=Decimal(0), baseline=Decimal("120.5"), mad=Decimal(3), direction=AnomalyDirection.DROP))
    report = ReportJob(id="rpt-1", customer_id="cus-1", period="2026-09", format=ReportFormat.PDF, requested_at=T0,
                       requested_by="cli", idempotency_key="k-1")
    return [usage, seats, customer, sub, invoice, note, payment, dead, alert, report]


def test_every_model_round_trips_through_its_tables(db):
    scoped, ch = db
    rows: facts.Rows = {}
    for offset, model in enumerate(sample_models()):
        facts.merge(rows, facts.rows_for(model, partition=1, offset=offset))
    assert set(rows) == set(facts.COLUMNS) - facts.DERIVED_TABLES
    for table, table_rows in rows.items():
        ch.insert(table, table_rows, column_names=facts.COLUMNS[table])

    usage = ch.query("SELECT event_id, quantity, value, group_key, dimensions, event_time FROM usage_events "
                     "ORDER BY event_id").result_rows
    assert usage[0][:4] == ("evt-1", Decimal("12.5"), "", r"region=eu-west-1|endpoint=/v1/a\|b")
    assert usage[0][4] == {"region": "eu-west-1", "endpoint": "/v1/a|b"}
    assert usage[0][5] == T0
    assert usage[1][2] == "u-7"
    total, tax, status = ch.query("SELECT total, tax, status FROM invoices").result_rows[0]
    assert (total, tax, status) == (Decimal("10.71"), Decimal("1.71"), "finalized")
    assert ch.query("SELECT breakdown FROM invoice_lines").result_rows[0][0].startswith('[{"description":"1001-2000"')
    assert ch.query("SELECT failure_reason, completed_at FROM payment_events").result_rows[0] == (
        "insufficient_funds", T0 + timedelta(seconds=3))
    assert ch.query("SELECT number, total FROM credit_notes").result_rows == [("INV-CN-000001", Decimal("4.50"))]
    assert ch.query("SELECT number FROM invoices").result_rows == [("INV-000001",)]
    assert ch.query("SELECT payload, offset FROM dead_letters").result_rows[0] == ('{"broken', 7)
    assert ch.query("SELECT alert_id, baseline, score, direction, threshold FROM alerts").result_rows == [
        ("alert-1", Decimal("120.5"), None, "drop", None)]
    jobs = ch.query(f"SELECT {', '.join(facts.COLUMNS['report_jobs'])} FROM report_jobs").result_rows
    assert [facts.report_job_state(row) for row in jobs] == [queued(sample_models()[-1])]


def test_group_key_is_canonical_and_unambiguous():
    assert facts.group_key(("a", "b"), ("1", "2")) == "a=1|b=2"
    assert facts.group_key(("a",), ("",)) == "a="
    assert facts.group_key(("a", "b"), ("x|b=y", "")) != facts.group_key(("a", "b"), ("x", "y"))
    assert facts.group_key(("a=",), ("b",)) != facts.group_key(("a",), ("=b",))


def test_every_table_s_columns_are_those_of_its_migration(db):
    scoped, ch = db
    for table, columns in facts.COLUMNS.items():
        created = ch.query("SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                           "ORDER BY position", parameters={"db": scoped.clickhouse_database, "t": table})
        assert set(columns) <= set(created.result_columns[0]), table
