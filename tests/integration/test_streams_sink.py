"""The worker's sink stores every value of every table it writes exactly (JSONCompactEachRow inserts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import TypeAdapter

from billing.core.meters import active_meters
from billing.warehouse.client import client
from billing.warehouse.facts import COLUMNS
from billing.warehouse.migrations import migrate
from streams.pipeline import Output
from streams.sink import DERIVED_COLUMNS, WarehouseSink

T = datetime(2026, 10, 5, 14, 30, 15, 123456, tzinfo=UTC)
T_EDGE = datetime(2026, 10, 5, 23, 59, 59, 999999, tzinfo=UTC)
T_MS = datetime(2026, 10, 5, 14, 30, 15, 123000, tzinfo=UTC)  # whole milliseconds: columns of microseconds keep them
T_OFFSET = TypeAdapter(datetime).validate_python("2026-10-06T01:02:03.456789-05:00")  # pydantic TzInfo, as contracts
BIG = Decimal("-12345678901234567890123456789.123456789")
HUGE = Decimal("99999999999999999999999999999.999999999")
TINY = Decimal("0.000000001")  # str() is 1E-9
HUNDREDS = Decimal("5E+2")
TEXT = 'Zoë "quoted" \\back\\slash\nnew line\ttab ✓ 🎉 \'single\' \x00 \u2028 ],[ {"x": 1}'
FLOAT = 3.791653059858058  # ClickHouse's fast float parser (a real server's default) reads it 1 ulp off
DIMENSIONS = {"region": "eu-west-1", TEXT: TEXT, "": ""}


def table_rows() -> dict[str, list[dict]]:
    """Two rows of every table the sink writes, by column name."""
    return {
        "usage_events": [
            dict(event_id="evt-1", customer_id="cus-1", meter="api_calls", event_time=T, quantity=BIG, value="",
                 dimensions=DIMENSIONS, group_key=TEXT, source="test", kafka_partition=65535,
                 kafka_offset=2**64 - 1),
            dict(event_id=TEXT, customer_id="cus-2", meter="active_seats", event_time=T_OFFSET, quantity=TINY,
                 value="u-7", dimensions={}, group_key="", source=TEXT, kafka_partition=0, kafka_offset=0),
        ],
        "customers": [
            dict(customer_id="cus-1", company_name=TEXT, email="a@acme.io", country="DE", region="EMEA",
                 currency="EUR", segment="smb", signup_time=T, updated_at=T_EDGE, tax_region=None, tax_exempt=0),
            dict(customer_id="cus-2", company_name="", email=TEXT, country="CA", region="AMER", currency="CAD",
                 segment="enterprise", signup_time=T_OFFSET, updated_at=T, tax_region="QC", tax_exempt=1),
        ],
        "subscription_events": [
            dict(event_id="se-1", subscription_id="sub-1", customer_id="cus-1", type="created", sequence=1,
                 plan_id="starter", previous_plan_id=None, billing_interval="month", billing_time="calendar",
                 status="active", start_time=T, end_time=None, effective_time=T, event_time=T),
            dict(event_id="se-2", subscription_id="sub-1", customer_id="cus-1", type="plan_changed",
                 sequence=2**32 - 1, plan_id="growth", previous_plan_id=TEXT, billing_interval="year",
                 billing_time="anniversary", status="canceled", start_time=T, end_time=T_EDGE, effective_time=T_OFFSET,
                 event_time=T_EDGE),
        ],
        "invoices": [
            dict(invoice_id="inv-1", customer_id="cus-1", subscription_id=None, period_start=T, period_end=T_EDGE,
                 currency="EUR", subtotal=HUGE, discount_total=TINY, tax_rate=Decimal("0.190000"), tax=BIG,
                 total=HUNDREDS, status="draft", issued_at=None, due_at=None, paid_at=None, voided_at=None,
                 event_time=T, void_reason=None, number=None, replaces=None, replaced_by=None),
            dict(invoice_id="inv-2", customer_id="cus-2", subscription_id="sub-1", period_start=T_OFFSET,
                 period_end=T_EDGE, currency="USD", subtotal=Decimal("10.500000000"), discount_total=Decimal(0),
                 tax_rate=Decimal("0.000001"), tax=Decimal("-0.000000001"), total=Decimal("10.5"), status="paid",
                 issued_at=T, due_at=T_EDGE, paid_at=T_OFFSET, voided_at=T, event_time=T_EDGE, void_reason=TEXT,
                 number="INV-000001", replaces="inv-0", replaced_by=TEXT),
        ],
        "credit_notes": [
            dict(credit_note_id="cn-1", number="INV-CN-000001", customer_id="cus-1", invoice_id="inv-1", period_start=T,
                 period_end=T_EDGE, currency="EUR", reason=TEXT, total=HUGE, issued_at=T, event_time=T_EDGE),
            dict(credit_note_id=TEXT, number="", customer_id="cus-2", invoice_id="", period_start=T_OFFSET,
                 period_end=T_OFFSET, currency="USD", reason="", total=TINY, issued_at=T_OFFSET, event_time=T),
        ],
        "credit_note_lines": [
            dict(credit_note_id="cn-1", line_no=1, customer_id="cus-1", period_start=T, currency="EUR", charge=TEXT,
                 description=TEXT, quantity=Decimal("0.871232877"), amount=BIG, service_start=T, service_end=T_EDGE),
            dict(credit_note_id=TEXT, line_no=65535, customer_id="cus-2", period_start=T_OFFSET, currency="USD",
                 charge="", description="", quantity=TINY, amount=TINY, service_start=T_OFFSET, service_end=T),
        ],
        "invoice_lines": [
            dict(invoice_id="inv-1", line_no=1, customer_id="cus-1", period_start=T, currency="EUR", kind="usage",
                 charge="api_calls", meter="api_calls", description=TEXT, quantity=HUGE, unit_price=TINY,
                 amount=BIG, breakdown='[{"description": "0-1000", "amount": "1.5"}]', service_start=T, service_end=T_EDGE),
            dict(invoice_id="inv-1", line_no=65535, customer_id="cus-1", period_start=T, currency="EUR",
                 kind="base", charge=TEXT, meter=None, description="", quantity=Decimal(1), unit_price=HUNDREDS,
                 amount=HUNDREDS, breakdown="[]", service_start=None, service_end=None),
        ],
        "invoice_adjustments": [
            dict(invoice_id="inv-1", adjustment_id="adj-1", customer_id="cus-1", period_start=T, currency="EUR",
                 kind="coupon", code=TEXT, description=TEXT, percent_off=Decimal("12.3456"), amount=TINY),
            dict(invoice_id="inv-1", adjustment_id="adj-2", customer_id="cus-1", period_start=T, currency="EUR",
                 kind="credit", code=None, description="", percent_off=None, amount=BIG),
        ],
        "invoice_shipping": [
            dict(invoice_id="inv-1", customer_id="cus-1", recipient=TEXT, address_line="Main 1\nBackhouse",
                 city="Zürich", postal_code="8001", country="CH", carrier="DHL", tracking_number=None, cost=HUGE,
                 currency="CHF", shipped_at=None, delivered_at=None, event_time=T),
            dict(invoice_id="inv-2", customer_id="cus-2", recipient="", address_line="", city="", postal_code="",
                 country="US", carrier="UPS", tracking_number=TEXT, cost=TINY, currency="USD", shipped_at=T_OFFSET,
                 delivered_at=T_EDGE, event_time=T_EDGE),
        ],
        "payment_events": [
            dict(event_id="pe-1", transaction_id="tx-1", invoice_id="inv-1", customer_id="cus-1", method="card",
                 amount=HUGE, currency="EUR", status="failed", failure_reason=TEXT, attempt=1, sequence=1,
                 initiated_at=T, completed_at=T_EDGE, refunded_amount=None, event_time=T_EDGE),
            dict(event_id="pe-2", transaction_id="tx-1", invoice_id="inv-1", customer_id="cus-1", method="sepa",
                 amount=TINY, currency="EUR", status="refunded", failure_reason=None, attempt=65535,
                 sequence=2**32 - 1, initiated_at=T_OFFSET, completed_at=None, refunded_amount=BIG,
                 event_time=T_OFFSET),
        ],
        "dead_letters": [
            dict(time=T, source_topic="billing.usage", partition=None, offset=None, reason=TEXT, payload=TEXT,
                 key=None),
            dict(time=T_EDGE, source_topic="billing.payments", partition=65535, offset=2**64 - 1, reason="bad",
                 payload='{"broken', key="Y3VzLTE="),
        ],
        "alerts": [
            dict(alert_id="alr-1", customer_id="cus-1", type="usage.threshold.exceeded", rule=TEXT, meter="api_calls",
                 period_start=T, period_end=T_EDGE, value=HUGE, threshold=HUNDREDS, unit="percent",
                 limit_units=TINY, baseline=None, mad=None, score=None, direction=None, detected_at=T_OFFSET,
                 invoice_id=None, currency=None, due_at=None),
            dict(alert_id=TEXT, customer_id="cus-2", type="usage.anomaly.detected", rule="spikes", meter="active_seats",
                 period_start=T_OFFSET, period_end=T, value=BIG, threshold=None, unit=None, limit_units=None,
                 baseline=TINY, mad=HUGE, score=BIG, direction="drop", detected_at=T_EDGE,
                 invoice_id=None, currency=None, due_at=None),
            dict(alert_id="alr-due", customer_id="cus-3", type="billing.payment.due", rule="reminders", meter="",
                 period_start=T, period_end=T_EDGE, value=HUGE, threshold=TINY, unit=None, limit_units=None,
                 baseline=None, mad=None, score=None, direction=None, detected_at=T, invoice_id=TEXT, currency="JPY",
                 due_at=T_EDGE),
        ],
        "report_jobs": [
            dict(job_id="rpt-1", customer_id="cus-1", period="2026-10", kind="customer_usage", format="pdf",
                 requested_by=TEXT, idempotency_key=TEXT, requested_at=T, status="queued", progress=0, attempts=0,
                 error=None, file=None, updated_at=T_MS, finished_at=None, version=0),
            dict(job_id=TEXT, customer_id="cus-2", period="2026-09", kind="customer_usage", format="csv",
                 requested_by="cli", idempotency_key="", requested_at=T_EDGE, status="failed", progress=100,
                 attempts=65535, error=TEXT, file=TEXT, updated_at=T_MS, finished_at=T_MS, version=2**64 - 1),
        ],
        "alert_rules": [
            dict(rule_id="rule-1", customer_id="cus-1", kind="usage_threshold",
                 definition='{"meter": "api_calls", "thresholds": [50, 80, 100]}', created_at=T_MS, updated_at=T_MS,
                 updated_by="key-1", deleted=0, version=0),
            dict(rule_id=TEXT, customer_id=TEXT, kind="usage_anomaly", definition=TEXT, created_at=T_MS,
                 updated_at=T_MS, updated_by="cli", deleted=1, version=2**64 - 1),
        ],
        "webhook_deliveries": [
            dict(delivery_id="dlv-1", attempt=1, event_id="evt-1", event_type="invoice.finalized", customer_id="cus-1",
                 endpoint_id="crm", url="https://crm.example/hook", state="delivered", status_code=204, error=None,
                 latency_ms=FLOAT, attempted_at=T, body=TEXT),
            dict(delivery_id=TEXT, attempt=2**32 - 1, event_id=TEXT, event_type="payment.failed", customer_id="cus-2",
                 endpoint_id=TEXT, url=TEXT, state="dead", status_code=None, error=TEXT, latency_ms=0.0,
                 attempted_at=T_EDGE, body=""),
        ],
        "usage_rollups": [
            dict(customer_id="cus-1", meter="api_calls", window_seconds=60,
                 window_start=datetime(2026, 10, 5, 14, 30, tzinfo=UTC), group_key=TEXT, dimensions=DIMENSIONS,
                 aggregation="sum", value=BIG, event_count=2**64 - 1, version=2**64 - 1, closed=1, updated_at=T),
            dict(customer_id="cus-2", meter="active_seats", window_seconds=3600,
                 window_start=datetime(2026, 10, 5, 14, tzinfo=UTC), group_key="", dimensions={},
                 aggregation="unique_count", value=TINY, event_count=0, version=0, closed=0, updated_at=T_OFFSET),
        ],
        "payment_transactions": [
            dict(transaction_id="tx-1", invoice_id="inv-1", customer_id="cus-1", method="card", amount=HUGE,
                 currency="EUR", status="succeeded", last_failure=None, attempts=1, failures=0, first_initiated_at=T,
                 last_completed_at=None, succeeded_at=None, processing_seconds=None, refunded_amount=Decimal(0),
                 disputed=0, status_path="initiated", version=1, updated_at=T),
            dict(transaction_id=TEXT, invoice_id="inv-2", customer_id="cus-2", method="sepa", amount=TINY,
                 currency="USD", status="refunded", last_failure=TEXT, attempts=65535, failures=65535,
                 first_initiated_at=T_OFFSET, last_completed_at=T_EDGE, succeeded_at=T, processing_seconds=FLOAT,
                 refunded_amount=BIG, disputed=1, status_path="initiated>failed>initiated>succeeded>refunded",
                 version=2**64 - 1, updated_at=T_EDGE),
        ],
    }


def stored(value):
    """``value`` as the warehouse keeps it: times in UTC, truncated to the columns' milliseconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)
    return value


@pytest.fixture()
def db(settings, warehouse):
    name = f"sink_{uuid.uuid4().hex[:8]}"
    scoped = settings.model_copy(update={"clickhouse_database": name})
    migrate(scoped)
    yield scoped
    client(settings).command(f"DROP DATABASE IF EXISTS {name}")


def test_every_table_the_sink_writes_reads_back_exactly(db):
    columns = {**COLUMNS, **DERIVED_COLUMNS}
    rows = table_rows()
    assert set(rows) == set(columns)
    sink = WarehouseSink(db, active_meters(), stopping=lambda: True)  # a failed insert raises, never retries
    # A real server's defaults (chdb's differ): the sink's own insert settings must win over them.
    sink._client = client(db)
    sink._client.set_client_setting("date_time_input_format", "basic")
    sink._client.set_client_setting("precise_float_parsing", 0)
    out = Output(rows={table: [[row[c] for c in columns[table]] for row in items] for table, items in rows.items()})

    assert sink.write(out) == sum(len(items) for items in rows.values())

    ch = client(db, database=db.clickhouse_database)
    for table, cols in columns.items():
        got = ch.query(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {', '.join(cols[:2])}").result_rows
        want = sorted(([stored(row[c]) for c in cols] for row in rows[table]), key=lambda row: row[:2])
        assert [list(row) for row in got] == want, table


def test_a_batch_over_more_months_than_one_insert_may_touch_is_stored_whole(db):
    """ClickHouse refuses an insert touching over 100 partitions (TOO_MANY_PARTS): the sink splits it.

    The months lie ahead, since the table's TTL drops events older than 400 days."""
    months = [datetime(2030 + i // 12, i % 12 + 1, 28, 23, 59, 59, tzinfo=UTC) for i in range(130)]
    events = [[f"evt-{i}", "cus-1", "api_calls", t, Decimal(i) / 1000, "", {}, "", "test", 0, i]
              for i, t in enumerate(months + months[:7])]
    sink = WarehouseSink(db, active_meters(), stopping=lambda: True)  # a refused insert raises, never retries

    assert sink.write(Output(rows={"usage_events": events})) == len(events)

    ch = client(db, database=db.clickhouse_database)
    count, total, spanned = ch.query("SELECT count(), sum(quantity), uniqExact(toYYYYMM(event_time)) "
                                     "FROM usage_events FINAL").result_rows[0]
    assert (count, total, spanned) == (137, sum(Decimal(i) / 1000 for i in range(137)), 130)
