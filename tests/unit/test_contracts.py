"""Event contracts: usage event validation, business-event invariants, codecs, schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billing.cli import schema_cmds
from billing.core.contracts import (
    QUANTITY_LIMIT,
    TOPIC_MODELS,
    ContractViolation,
    DeadLetter,
    Invoice,
    InvoiceStatus,
    PaymentTransaction,
    SubscriptionEvent,
    UsageEvent,
    loads_exact,
    parse_topic,
    parse_usage,
    to_bytes,
    usage_context,
)
from billing.core.invoicing import compose
from billing.core.invoicing.lifecycle import transition
from billing.core.invoicing.timeline import PlanSpan
from billing.core.meters import Aggregation, Meter, MeterSet, active_meters
from billing.core.pricing import builtin_catalog, month_period
from billing.settings import Settings
from producers.payers import settle
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, read_records

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)

def usage(**overrides) -> dict:
    event = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "test",
        "type": "api_calls",
        "subject": "cus-1",
        "time": "2024-06-01T11:00:00Z",
        "data": {"quantity": "3", "region": "eu-west", "endpoint": "/v1/search"},
    }
    event.update(overrides)
    return event


def parse(event: dict) -> UsageEvent:
    return parse_usage(orjson.dumps(event), now=NOW)


def test_valid_event_round_trips_byte_for_byte():
    event = parse(usage())
    assert event.data.quantity == Decimal("3")
    assert event.data.dimensions == {"region": "eu-west", "endpoint": "/v1/search"}
    assert event.group_key() == ("eu-west", "/v1/search")
    again = parse_usage(to_bytes(event), now=NOW)
    assert again == event and to_bytes(again) == to_bytes(event)


@given(st.decimals(min_value=0, max_value=QUANTITY_LIMIT - Decimal("0.000001"), places=6, allow_nan=False, allow_infinity=False))
def test_quantity_is_exact_from_string_or_number(quantity):
    from_string = parse(usage(data={"quantity": str(quantity)}))
    from_number = parse_usage(b'{"specversion":"1.0","id":"e","source":"s","type":"api_calls","subject":"c",'
                              b'"time":"2024-06-01T11:00:00Z","data":{"quantity":' + str(quantity).encode() + b"}}", now=NOW)
    assert from_string.data.quantity == quantity
    assert from_number.data.quantity == quantity


def test_offset_times_are_normalized_to_utc():
    event = parse(usage(time="2024-06-01T13:00:00+02:00"))
    assert event.time == datetime(2024, 6, 1, 11, tzinfo=UTC) and event.time.tzinfo is UTC


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (usage(type="gpu_minutes"), "unknown meter 'gpu_minutes'"),
        (usage(data={"quantity": "-1"}), "data.quantity: Input should be greater than or equal to 0"),
        (usage(data={"region": "x"}), "data.quantity: Field required"),
        (usage(time="2024-06-01T11:00:00"), "time: Input should have timezone info"),
        (usage(time="2024-06-01T12:10:00Z"), "more than 300s in the future"),
        (usage(type="active_seats", data={"quantity": 1}), "meter active_seats needs data.user_id"),
        (usage(specversion="0.3"), "specversion"),
        (usage(data={"quantity": "Infinity"}), "not a canonical decimal string"),
        (usage(extra_field=1), "extra_field: unknown attribute: CloudEvents extension attributes are not accepted"),
        ({k: v for k, v in usage().items() if k != "subject"}, "subject: Field required"),
        (usage(schema_version=2), "schema_version"),
        (usage(time="0001-01-01T00:00:00+01:00"), "out of range in UTC"),
    ],
)
def test_invalid_usage_events_are_rejected_with_a_clear_reason(event, message):
    with pytest.raises(ContractViolation) as info:
        parse(event)
    assert message in info.value.reason
    assert "\n" not in info.value.reason


def test_future_tolerance_is_configurable():
    event = orjson.dumps(usage(time="2024-06-01T12:10:00Z"))
    assert parse_usage(event, now=NOW, future_tolerance=3600).time.minute == 10
    assert Settings(usage_future_tolerance_s=5).usage_future_tolerance_s == 5


def test_custom_meter_set_in_context():
    meters = MeterSet([Meter(name="gpu_minutes", unit="min", aggregation=Aggregation.SUM)])
    assert parse_usage(orjson.dumps(usage(type="gpu_minutes")), meters=meters, now=NOW).type == "gpu_minutes"
    with pytest.raises(ContractViolation, match="unknown meter 'api_calls'"):
        parse_usage(orjson.dumps(usage()), meters=meters, now=NOW)


@pytest.mark.parametrize("raw", [b"{not json", b"[1,2]", b'"text"', b""])
def test_non_objects_are_rejected(raw):
    with pytest.raises(ContractViolation):
        parse_usage(raw, now=NOW)


def test_unique_count_meter_reads_its_value_field():
    event = parse(usage(type="active_seats", data={"quantity": 1, "user_id": "u-7"}))
    assert event.measured_value() == "u-7"


def _invoice(**overrides) -> dict:
    doc = {
        "id": "inv-1", "customer_id": "cus-1", "period_start": "2024-05-01T00:00:00Z",
        "period_end": "2024-06-01T00:00:00Z", "currency": "EUR",
        "line_items": [
            {"kind": "subscription", "charge": "growth", "quantity": "1", "unit_price": "99.00", "amount": "99.00"},
            {"kind": "usage", "charge": "api_calls", "meter": "api_calls", "quantity": "1000",
             "unit_price": "0.001", "amount": "1.00",
             "breakdown": [{"description": "tier 1", "quantity": "1000", "unit_price": "0.001", "amount": "1.00"}]},
        ],
        "subtotal": "100.00",
        "adjustments": [{"id": "adj-1", "kind": "coupon", "code": "WELCOME10", "percent_off": "10", "amount": "10.00"}],
        "discount_total": "10.00", "tax_rate": "0.19", "tax": "17.10", "total": "107.10",
        "status": "finalized", "issued_at": "2024-06-01T00:00:00Z", "due_at": "2024-06-15T00:00:00Z",
        "event_time": "2024-06-01T00:00:00Z",
    }
    doc.update(overrides)
    return doc


def test_invoice_totals_must_add_up():
    invoice = Invoice.model_validate(_invoice())
    assert invoice.total == Decimal("107.10")
    assert parse_topic("invoices", to_bytes(invoice)) == invoice
    with pytest.raises(ContractViolation, match="total must equal"):
        parse_topic("invoices", orjson.dumps(_invoice(total="107.11")))
    with pytest.raises(ContractViolation, match="subtotal is not the sum"):
        parse_topic("invoices", orjson.dumps(_invoice(subtotal="101.00", total="108.10")))
    with pytest.raises(ContractViolation, match="paid invoice needs paid_at"):
        parse_topic("invoices", orjson.dumps(_invoice(status="paid")))


def _payment(**overrides) -> dict:
    doc = {
        "event_id": "pay-1-1", "id": "pay-1", "invoice_id": "inv-1", "customer_id": "cus-1", "method": "card",
        "amount": "107.10", "currency": "EUR", "status": "failed", "failure_reason": "insufficient_funds",
        "attempt": 1, "sequence": 2, "initiated_at": "2024-06-02T10:00:00Z",
        "completed_at": "2024-06-02T10:00:03Z", "event_time": "2024-06-02T10:00:03Z",
    }
    doc.update(overrides)
    return doc


def test_payment_lifecycle_invariants():
    failed = PaymentTransaction.model_validate(_payment())
    assert failed.processing_seconds == 3
    for bad, message in [
        (_payment(failure_reason=None), "failure_reason is required"),
        (_payment(status="succeeded"), "failure_reason is required"),
        (_payment(status="initiated", failure_reason=None), "no completed_at"),
        (_payment(completed_at="2024-06-02T09:00:00Z"), "before initiated_at"),
        (_payment(status="refunded", failure_reason=None), "refunded_amount is required"),
        (_payment(status="refunded", failure_reason=None, refunded_amount="200"), "exceeds"),
        (_payment(method="cheque"), "method"),
    ]:
        with pytest.raises(ContractViolation, match=message):
            parse_topic("payments", orjson.dumps(bad))


def test_subscription_plan_change_needs_previous_plan():
    base = {
        "event_id": "sub-1-2", "subscription_id": "sub-1", "customer_id": "cus-1", "type": "plan_changed",
        "sequence": 2, "plan_id": "growth", "previous_plan_id": "starter", "billing_interval": "month",
        "status": "active", "start_time": "2024-01-01T00:00:00Z", "effective_time": "2024-05-17T09:00:00Z",
        "event_time": "2024-05-17T09:00:00Z",
    }
    assert SubscriptionEvent.model_validate(base).previous_plan_id == "starter"
    with pytest.raises(ContractViolation, match="previous_plan_id different"):
        parse_topic("subscriptions", orjson.dumps({**base, "previous_plan_id": "growth"}))
    with pytest.raises(ContractViolation, match="needs end_time"):
        parse_topic("subscriptions", orjson.dumps({**base, "type": "canceled", "status": "canceled",
                                                   "previous_plan_id": None}))


def test_dead_letter_keeps_the_original_bytes():
    letter = DeadLetter.wrap(b"\x00{bad", "invalid JSON", "billing.usage", key=b"cus-1", partition=2, offset=41,
                             time=NOW)
    again = parse_topic("dead_letters", to_bytes(letter))
    assert again.payload == b"\x00{bad" and again.offset == 41 and again.partition == 2


def test_registry_covers_every_topic():
    assert set(TOPIC_MODELS) == set(Settings().topics())
    with pytest.raises(ContractViolation, match="unknown topic"):
        parse_topic("refunds", b"{}")


def test_checked_in_schemas_are_current():
    assert schema_cmds.stale() == [], "run `billing schemas export` and commit docs/schemas/"


def test_schema_check_detects_a_stale_file(tmp_path):
    for name, text in schema_cmds.render().items():
        (tmp_path / name).write_text(text)
    assert schema_cmds.stale(tmp_path) == []
    (tmp_path / "usage_event.schema.json").write_text("{}")
    (tmp_path / "old.schema.json").write_text("{}")
    assert schema_cmds.stale(tmp_path) == ["old.schema.json", "usage_event.schema.json"]


def engine_invoice(customer_id: str) -> Invoice:
    """A finalized invoice of the billing engine (Growth in euro, German VAT, some usage)."""
    period = month_period(NOW - timedelta(days=40))
    customer = compose.BillingCustomer(customer_id, "EUR", "DE")
    catalog = builtin_catalog()
    priced = compose.price(period, customer, [PlanSpan("sub", "growth", period.start, period.end)],
                           [{"api_calls": Decimal("1234567"), "compute_seconds": Decimal("98765.432")}], catalog)
    draft = compose.draft(priced, invoice_id=f"inv-{customer_id}-{period.start:%Y%m}", customer_id=customer_id,
                          subscription_id="sub", now=period.end)
    return transition(draft, InvoiceStatus.FINALIZED, period.end + timedelta(hours=2), 14)


def test_wire_form_is_the_compact_json_of_the_json_mode_dump(tmp_path):
    """to_bytes serializes in pydantic-core; every contract the simulator, the engine and the payers
    emit, and text with non-ASCII, quote, backslash and control characters, keep the documented form
    byte for byte."""
    path = tmp_path / "records"
    config = SimulationConfig(customers=20, rate=None, events=2_000, start=NOW - timedelta(days=40), days=40, seed=5)
    Simulator(config, active_meters(), FileSink(path), tmp_path / "manifest.json").run()
    models = []
    for topic, _key, value in read_records(path):
        try:
            models.append(parse_topic(topic, value, now=NOW + timedelta(days=1)))
        except ContractViolation:
            continue  # the simulator's injected malformed records
    models.append(parse(usage(source="s\u00e9\U0001f600", data={"quantity": "100", "note": "\u00e9\"\\"})))
    models.append(DeadLetter.wrap(b"\x01", "\u2028\"\\\x01", "usage", time=NOW))
    for number in range(5):  # the engine's finalized invoices and the payers' payments of them
        invoice = engine_invoice(f"cus-5-{number:06d}")
        models.extend([invoice, *settle(invoice, 5).events])
    assert {type(m) for m in models} >= {UsageEvent, Invoice, PaymentTransaction, SubscriptionEvent}
    for model in models:
        assert to_bytes(model) == orjson.dumps(model.model_dump(mode="json", exclude_none=True))


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (usage(time="1969-12-31T23:59:59Z"), "never before 1970"),
        (usage(time="1900-01-01T00:00:00Z"), "never before 1970"),
        (usage(time="2023-04-01T00:00:00Z"), "at most 400 days old"),
        (usage(time=1717239600), "must be an RFC 3339 string"),
        (usage(time="1717239600"), "is not an RFC 3339 time"),
        (usage(time="2024-06-01"), "is not an RFC 3339 time"),
        (usage(data={"quantity": "\u0661\u0662"}), "not a canonical decimal string"),
        (usage(data={"quantity": "1_000"}), "not a canonical decimal string"),
        (usage(data={"quantity": " 5"}), "not a canonical decimal string"),
        (usage(data={"quantity": "+5"}), "not a canonical decimal string"),
        (usage(data={"quantity": "1e3"}), "not a canonical decimal string"),
        (usage(data={"quantity": "007"}), "not a canonical decimal string"),
        (usage(data={"quantity": True}), "not bool"),
        (usage(data={"quantity": "1000000000000"}), "less than"),
        (usage(data={"quantity": "0.0000000001"}), "decimal places"),
        (usage(source="svc\r\nX-Injected: 1"), "non-printable character '\\r'"),
        (usage(source="svc\x00"), "non-printable character '\\x00'"),
        (usage(source="\x1b[31mred"), "non-printable character '\\x1b'"),
        (usage(subject="cus-1\n"), "subject: String should match pattern"),
        (usage(data={"quantity": 1, "region": "eu\x1b[2J"}), "data.region: contains the non-printable"),
        (usage(data={"quantity": 1, **{f"d{i}": "x" for i in range(65)}}), "65 dimensions; at most 64"),
        (usage(data={"quantity": 1, "k" * 65: "x"}), "dimension name"),
        ({k: v for k, v in usage().items() if k != "specversion"}, "specversion: Field required"),
    ],
)
def test_input_rules_refuse_with_a_reason(event, message):
    with pytest.raises(ContractViolation) as info:
        parse(event)
    assert message in info.value.reason
    assert "\n" not in info.value.reason and "\r" not in info.value.reason


def test_quantities_travel_as_canonical_strings():
    raw = orjson.dumps(usage(data={"quantity": 0})).replace(b'"quantity":0', b'"quantity":1e2')
    assert b'"quantity":"100"' in to_bytes(parse_usage(raw, now=NOW))
    tiny = parse(usage(data={"quantity": "0.0000001"}))
    assert str(tiny.data.quantity) == "1E-7" and b'"quantity":"0.0000001"' in to_bytes(tiny)
    infinite = loads_exact(orjson.dumps(usage()).replace(b'"quantity":"3"', b'"quantity":Infinity'))
    with pytest.raises(ValidationError, match="finite number"):
        UsageEvent.model_validate(infinite, context=usage_context({"now": NOW}))


def test_past_horizon_is_configurable_and_never_reaches_before_1970():
    old = orjson.dumps(usage(time="2023-05-01T00:00:00Z"))
    assert parse_usage(old, now=NOW, past_horizon=800).time.year == 2023
    assert Settings(usage_past_horizon_days=5).usage_past_horizon_days == 5
    with pytest.raises(ContractViolation, match="never before 1970"):
        parse_usage(orjson.dumps(usage(time="1969-12-31T23:59:59Z")), now=NOW, past_horizon=10**9)


def test_non_utf8_bodies_are_refused():
    with pytest.raises(ValueError, match="not UTF-8"):
        loads_exact(orjson.dumps(usage()).decode().encode("utf-16"))


def test_echoed_values_are_clipped():
    with pytest.raises(ContractViolation) as info:
        parse(usage(data={"quantity": "x" * 1_000_000}))
    assert len(info.value.reason) < 400
    with pytest.raises(ContractViolation) as info:
        parse(usage(**{"k" * 1_000_000: 1}))
    assert len(info.value.reason) < 400
