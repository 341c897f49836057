"""Read endpoints against the real warehouse: usage windows (minute, hour, day rules), invoices,
PDFs, the open-period preview, customers and subscriptions; tenant isolation, 404s and 503s."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from api.app import create_app
from billing.core.contracts import (
    Adjustment,
    AdjustmentKind,
    BillingInterval,
    BreakdownStep,
    Customer,
    Invoice,
    InvoiceStatus,
    LineItem,
    LineKind,
    Segment,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)
from billing.core.pricing.proration import month_period
from billing.invoicing.run import Invoicing
from tests.integration.api_fixtures import bearer, insert, insert_rollups, scratch_settings

pytestmark = pytest.mark.integration

DAY = datetime(2026, 9, 10, tzinfo=UTC)
EU, US = {"region": "eu", "endpoint": "/a"}, {"region": "us", "endpoint": "/a"}
OPEN_MONTH = month_period(datetime.now(UTC)).start


def _customer(customer_id: str, name: str, country: str, code: str) -> Customer:
    return Customer(id=customer_id, company_name=name, email=f"billing@{customer_id}.example", country=country,
                    region="NA", currency=code, segment=Segment.SMB, signup_time=datetime(2026, 1, 5, tzinfo=UTC),
                    updated_at=datetime(2026, 1, 5, tzinfo=UTC))


CUST_A = _customer("cust-a", "Acme Widgets Inc.", "US", "USD")
CUST_B = _customer("cust-b", "Bolt Ltd", "GB", "GBP")
SUB_A = SubscriptionEvent(event_id="se-a-1", subscription_id="sub-a", customer_id="cust-a",
                          type=SubscriptionEventType.CREATED, sequence=1, plan_id="starter",
                          billing_interval=BillingInterval.MONTH, status=SubscriptionStatus.ACTIVE,
                          start_time=datetime(2026, 8, 1, tzinfo=UTC), effective_time=datetime(2026, 8, 1, tzinfo=UTC),
                          event_time=datetime(2026, 8, 1, tzinfo=UTC))


def _invoice(customer: Customer, month: int, status: InvoiceStatus) -> Invoice:
    start = datetime(2026, month, 1, tzinfo=UTC)
    issued = start + timedelta(days=31, hours=2)
    lines = (
        LineItem(kind=LineKind.SUBSCRIPTION, charge="starter.platform_fee", description="Starter platform fee",
                 quantity=Decimal(1), unit_price=Decimal("29.00"), amount=Decimal("29.00")),
        LineItem(kind=LineKind.USAGE, charge="starter.api_calls", meter="api_calls", description="API calls",
                 quantity=Decimal(150000), unit_price=Decimal("0.0004"), amount=Decimal("20.00"),
                 breakdown=(BreakdownStep(description="0 - 100,000 included", quantity=Decimal(100000),
                                          unit_price=Decimal(0), amount=Decimal(0)),
                            BreakdownStep(description="above 100,000", quantity=Decimal(50000),
                                          unit_price=Decimal("0.0004"), amount=Decimal("20.00")))),
    )
    return Invoice(
        id=f"inv-{customer.id}-2026{month:02d}", customer_id=customer.id, subscription_id="sub-a",
        period_start=start, period_end=datetime(2026, month + 1, 1, tzinfo=UTC), currency=customer.currency,
        line_items=lines, subtotal=Decimal("49.00"),
        adjustments=(Adjustment(id="adj-1", kind=AdjustmentKind.COUPON, code="LAUNCH10", description="Launch 10 % off",
                                percent_off=Decimal(10), amount=Decimal("4.90")),),
        discount_total=Decimal("4.90"), total=Decimal("44.10"), status=status,
        issued_at=issued if status is not InvoiceStatus.DRAFT else None,
        due_at=issued + timedelta(days=14) if status is not InvoiceStatus.DRAFT else None,
        paid_at=issued + timedelta(days=3) if status is InvoiceStatus.PAID else None, event_time=issued,
    )


INVOICES = [_invoice(CUST_A, 8, InvoiceStatus.PAID), _invoice(CUST_A, 9, InvoiceStatus.FINALIZED),
            _invoice(CUST_B, 9, InvoiceStatus.DRAFT)]


def _at(hour: int, minute: int = 0, day: datetime = DAY) -> datetime:
    return day + timedelta(hours=hour, minutes=minute)


ROLLUPS = [
    ("cust-a", "api_calls", 60, _at(10, 0), EU, "SUM", "5", 1, 1),
    ("cust-a", "api_calls", 60, _at(10, 1), EU, "SUM", "7", 1, 1),
    ("cust-a", "api_calls", 60, _at(10, 0), US, "SUM", "1", 1, 1),
    ("cust-a", "api_calls", 3600, _at(10), EU, "SUM", "12", 2, 1),
    ("cust-a", "api_calls", 3600, _at(11), EU, "SUM", "25", 3, 1),
    ("cust-a", "api_calls", 3600, _at(11), EU, "SUM", "30", 4, 2),  # a replayed window: version 2 wins
    ("cust-a", "api_calls", 3600, _at(10), US, "SUM", "1", 1, 1),
    ("cust-a", "api_calls", 3600, _at(24), EU, "SUM", "100", 9, 1),
    ("cust-a", "active_seats", 3600, _at(10), {}, "UNIQUE_COUNT", "3", 3, 1),
    ("cust-a", "active_seats", 3600, _at(11), {}, "UNIQUE_COUNT", "5", 6, 1),
    ("cust-a", "active_seats", 3600, _at(12), {}, "UNIQUE_COUNT", "4", 4, 1),
    ("cust-a", "api_calls", 3600, OPEN_MONTH, EU, "SUM", "150000", 150000, 1),
    ("cust-b", "api_calls", 3600, _at(10), EU, "SUM", "999", 1, 1),
]


@pytest.fixture(scope="module")
def api_settings(settings, kafka, warehouse, tmp_path_factory):
    with scratch_settings(settings, tmp_path_factory) as scoped:
        insert(scoped, CUST_A, CUST_B, SUB_A, *INVOICES)
        insert_rollups(scoped, ROLLUPS)
        yield scoped


@pytest.fixture(scope="module")
def tokens(keys) -> dict[str, str]:
    return {"admin": keys.create([], admin=True)[1], "a": keys.create(["cust-a"])[1], "b": keys.create(["cust-b"])[1]}


def _get(api, tokens, who, path, **params):
    return api.get(path, params=params, headers=bearer(tokens[who]))


def _series(body) -> dict:
    return {(s["meter"], tuple(sorted(s["dimensions"].items()))): [(p["window_start"], p["value"], p["events"])
                                                                   for p in s["points"]] for s in body["series"]}


EU_KEY, US_KEY = ("api_calls", (("endpoint", "/a"), ("region", "eu"))), ("api_calls", (("endpoint", "/a"), ("region", "us")))


def test_hour_windows_are_the_latest_version_of_each_rollup(api, tokens):
    response = _get(api, tokens, "a", "/v1/customers/cust-a/usage", window="hour",
                    **{"from": "2026-09-10T10:30:00Z", "to": "2026-09-10T13:00:00Z"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["start"], body["end"], body["day_rule"]) == ("2026-09-10T10:00:00Z", "2026-09-10T13:00:00Z", None)
    assert _series(body) == {
        ("active_seats", ()): [("2026-09-10T10:00:00Z", "3", 3), ("2026-09-10T11:00:00Z", "5", 6),
                               ("2026-09-10T12:00:00Z", "4", 4)],
        EU_KEY: [("2026-09-10T10:00:00Z", "12", 2), ("2026-09-10T11:00:00Z", "30", 4)],
        US_KEY: [("2026-09-10T10:00:00Z", "1", 1)],
    }
    units = {s["meter"]: (s["unit"], s["aggregation"]) for s in body["series"]}
    assert units == {"active_seats": ("seats", "UNIQUE_COUNT"), "api_calls": ("calls", "SUM")}


def test_minute_windows_and_meter_filter(api, tokens):
    body = _get(api, tokens, "admin", "/v1/customers/cust-a/usage", window="minute", meter="api_calls",
                **{"from": "2026-09-10T10:00:00Z", "to": "2026-09-10T10:05:00Z"}).json()
    assert _series(body) == {EU_KEY: [("2026-09-10T10:00:00Z", "5", 1), ("2026-09-10T10:01:00Z", "7", 1)],
                             US_KEY: [("2026-09-10T10:00:00Z", "1", 1)]}


def test_days_add_additive_meters_and_take_the_peak_hour_of_distinct_counts(api, tokens):
    body = _get(api, tokens, "a", "/v1/customers/cust-a/usage", window="day",
                **{"from": "2026-09-10T05:00:00+02:00", "to": "2026-09-12T00:00:00Z"}).json()
    assert body["start"] == "2026-09-10T00:00:00Z"
    assert "peak hour" in body["day_rule"]
    assert _series(body) == {
        ("active_seats", ()): [("2026-09-10T00:00:00Z", "5", 13)],
        EU_KEY: [("2026-09-10T00:00:00Z", "42", 6), ("2026-09-11T00:00:00Z", "100", 9)],
        US_KEY: [("2026-09-10T00:00:00Z", "1", 1)],
    }


@pytest.mark.parametrize(("params", "status", "kind"), [
    ({"from": "2026-09-10T00:00:00Z", "to": "2026-09-10T00:00:00Z"}, 400, "invalid-range"),
    ({"window": "minute", "from": "2026-09-01T00:00:00Z", "to": "2026-09-10T00:00:00Z"}, 400, "range-too-large"),
    ({"from": "2026-09-10T00:00:00"}, 422, "invalid-request"),
    ({"meter": "nope"}, 422, "unknown-meter"),
    ({"window": "week"}, 422, "invalid-request"),
])
def test_bad_usage_queries_are_problems(api, tokens, params, status, kind):
    response = _get(api, tokens, "a", "/v1/customers/cust-a/usage", **params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + kind)


@pytest.mark.parametrize("path", [
    "/v1/customers/cust-a", "/v1/customers/cust-a/usage", "/v1/customers/cust-a/invoices",
    "/v1/customers/cust-a/invoice-preview", "/v1/customers/cust-a/subscriptions", "/v1/customers",
])
def test_a_tenant_key_cannot_read_other_customers(api, tokens, path):
    response = _get(api, tokens, "b", path)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("path", "unknown"), [
    ("/v1/invoices/inv-cust-a-202609", "/v1/invoices/inv-cust-a-209909"),
    ("/v1/invoices/inv-cust-a-202609/pdf", "/v1/invoices/inv-cust-a-209909/pdf"),
    ("/v1/subscriptions/sub-a", "/v1/subscriptions/sub-q"),
])
def test_another_tenants_object_answers_like_an_unknown_id(api, tokens, path, unknown):
    foreign, missing = _get(api, tokens, "b", path), _get(api, tokens, "b", unknown)
    assert (foreign.status_code, missing.status_code) == (404, 404), foreign.text
    assert foreign.json()["type"] == missing.json()["type"]
    assert foreign.json()["detail"] == missing.json()["detail"].replace(unknown.split("/")[3], path.split("/")[3])
    assert "cust-a" not in foreign.json()["detail"].replace(path.split("/")[3], "")
    assert _get(api, tokens, "a", path).status_code == 200


@pytest.mark.parametrize(("who", "path", "kind"), [
    ("admin", "/v1/customers/cust-zz", "unknown-customer"),
    ("admin", "/v1/customers/cust-zz/usage", "unknown-customer"),
    ("admin", "/v1/customers/cust-zz/invoices", "unknown-customer"),
    ("admin", "/v1/customers/cust-zz/invoice-preview", "unknown-customer"),
    ("admin", "/v1/customers/cust-zz/subscriptions", "unknown-customer"),
    ("admin", "/v1/invoices/inv-nope", "unknown-invoice"),
    ("a", "/v1/invoices/inv-nope/pdf", "unknown-invoice"),
    ("admin", "/v1/subscriptions/sub-nope", "unknown-subscription"),
    ("b", "/v1/customers/cust-b/invoice-preview", "no-billable-subscription"),
])
def test_unknown_things_are_404(api, tokens, who, path, kind):
    response = _get(api, tokens, who, path)
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith("/" + kind)
    assert response.json()["detail"]


def test_tenant_key_for_an_unknown_customer_is_403_not_404(api, tokens):
    assert _get(api, tokens, "a", "/v1/customers/cust-zz").status_code == 403


def test_invoice_list_filters_by_status_and_period(api, tokens):
    listed = _get(api, tokens, "a", "/v1/customers/cust-a/invoices").json()
    assert [(i["id"], i["status"], i["total"]) for i in listed] == [
        ("inv-cust-a-202608", "paid", "44.10"), ("inv-cust-a-202609", "finalized", "44.10")]
    assert "line_items" not in listed[0]
    assert [i["id"] for i in _get(api, tokens, "a", "/v1/customers/cust-a/invoices", status="paid").json()] == [
        "inv-cust-a-202608"]
    assert [i["id"] for i in _get(api, tokens, "a", "/v1/customers/cust-a/invoices", period="2026-09").json()] == [
        "inv-cust-a-202609"]
    assert _get(api, tokens, "a", "/v1/customers/cust-a/invoices", period="2026-07").json() == []
    assert _get(api, tokens, "a", "/v1/customers/cust-a/invoices", period="2026-13").status_code == 422


def test_invoice_reads_back_exactly(api, tokens):
    response = _get(api, tokens, "a", "/v1/invoices/inv-cust-a-202609")
    assert response.status_code == 200, response.text
    assert Invoice.model_validate(response.json()) == INVOICES[1]
    assert response.json()["line_items"][1]["breakdown"][1]["amount"] == "20.00"


def test_invoice_pdf_shows_the_invoice_and_its_totals(api, tokens):
    response = _get(api, tokens, "a", "/v1/invoices/inv-cust-a-202609/pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    for expected in ("inv-cust-a-202609", "Acme Widgets Inc.", "Subtotal", "49.00", "-4.90", "Total due (USD)",
                     "44.10", "FINALIZED"):
        assert expected in text, expected


def test_preview_is_the_invoicing_modules_running_total(api, tokens, api_settings):
    response = _get(api, tokens, "a", "/v1/customers/cust-a/invoice-preview")
    assert response.status_code == 200, response.text
    body = response.json()
    expected = Invoicing(api_settings).preview("cust-a", now=datetime.fromisoformat(body["until"]))
    assert datetime.fromisoformat(body["period_start"]) == OPEN_MONTH
    assert Invoice.model_validate(body["invoice"]) == expected.invoice
    usage = [line for line in body["invoice"]["line_items"] if line["meter"] == "api_calls"]
    assert [line["quantity"] for line in usage] == ["150000"]


def test_customer_reads_back_and_lists_in_pages(api, tokens):
    assert Customer.model_validate(_get(api, tokens, "a", "/v1/customers/cust-a").json()) == CUST_A
    first = _get(api, tokens, "admin", "/v1/customers", limit=1).json()
    assert ([c["id"] for c in first["items"]], first["next_after"]) == (["cust-a"], "cust-a")
    second = _get(api, tokens, "admin", "/v1/customers", limit=1, after=first["next_after"]).json()
    assert ([c["id"] for c in second["items"]], second["next_after"]) == (["cust-b"], None)


def test_subscription_state_is_its_latest_event(api, tokens):
    state = _get(api, tokens, "a", "/v1/subscriptions/sub-a").json()
    assert (state["plan_id"], state["status"], state["sequence"], state["last_change"], state["billing_time"]) == (
        "starter", "active", 1, "created", "calendar")
    assert _get(api, tokens, "a", "/v1/customers/cust-a/subscriptions").json() == [state]
    assert _get(api, tokens, "b", "/v1/customers/cust-b/subscriptions").json() == []


@pytest.mark.parametrize("path", ["/v1/customers/cust-a/usage", "/v1/invoices/inv-cust-a-202609",
                                  "/v1/customers/cust-a/invoice-preview", "/v1/customers"])
def test_reads_answer_503_while_the_warehouse_is_down(api_settings, tokens, path):
    down = api_settings.model_copy(update={"clickhouse_url": "http://127.0.0.1:9"})
    with TestClient(create_app(down)) as client:
        response = client.get(path, headers=bearer(tokens["admin"]))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "warehouse" in response.json()["detail"] and response.headers["retry-after"]


def test_reads_answer_503_naming_the_fix_when_the_schema_is_missing(api_settings, tokens):
    bare = api_settings.model_copy(update={"clickhouse_database": "api_not_migrated"})
    with TestClient(create_app(bare)) as client:
        response = client.get("/v1/customers/cust-a", headers=bearer(tokens["admin"]))
    assert response.status_code == 503, response.text
    assert "billing warehouse migrate" in response.json()["detail"]
