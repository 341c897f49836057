"""Webhook endpoints files: the example loads; each mistake is one specific, located error; topic
messages map to the events integrators get, with ids stable across re-reads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from billing.core.contracts import (
    AlertData,
    AlertEvent,
    AlertType,
    CreditNote,
    CreditNoteLine,
    FailureReason,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
    PaymentStatus,
    PaymentTransaction,
    ThresholdUnit,
)
from billing.core.webhooks.endpoints import EXAMPLE_ENDPOINTS, load_endpoints, parse_endpoints
from billing.core.webhooks.errors import (
    DuplicateEndpoint,
    EndpointError,
    InvalidEndpointUrl,
    InvalidSecret,
    MissingSecret,
    UnknownEndpoint,
    UnknownEventType,
)
from billing.core.webhooks.events import EventType, delivery_id, webhook_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T = datetime(2026, 12, 1, tzinfo=UTC)


def endpoint(**fields) -> dict:
    return {"id": "crm", "url": "https://crm.example.com/hooks", "secret": SECRET, "types": ["invoice.finalized"], **fields}


def test_the_example_endpoints_load():
    found = load_endpoints([EXAMPLE_ENDPOINTS])
    assert [e.id for e in found] == ["crm", "ops-alerts"]
    assert found["crm"].wants(EventType.PAYMENT_FAILED, "anyone")
    assert not found["crm"].wants(EventType.USAGE_ANOMALY, "anyone")
    assert "secret" not in repr(found["crm"]) and SECRET not in repr(found["crm"])
    with pytest.raises(UnknownEndpoint, match="no endpoint 'nope'.*known: crm, ops-alerts"):
        found["nope"]


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"url": "ftp://crm.example.com/hooks"}, InvalidEndpointUrl,
     "endpoint 'crm' > url: 'ftp://crm.example.com/hooks' is not an absolute http(s) URL"),
    ({"url": "crm.example.com/hooks"}, InvalidEndpointUrl, "is not an absolute http(s) URL"),
    ({"url": "https:///hooks"}, InvalidEndpointUrl, "is not an absolute http(s) URL"),
    ({"secret": None}, MissingSecret, "endpoint 'crm' > secret: the secret is empty"),
    ({"secret": "  "}, MissingSecret, "the secret is empty"),
    ({"secret": "short"}, InvalidSecret, "the secret has 5 bytes; use at least 16"),
    ({"secret": "whsec_not base64!"}, InvalidSecret, "must continue in base64"),
    ({"types": ["invoice.paid"]}, UnknownEventType, "endpoint 'crm' > types[1]: unknown event type 'invoice.paid'; known: "
                                                    "usage.threshold.exceeded"),
    ({"types": []}, UnknownEventType, "no event types"),
    ({"customers": []}, EndpointError, "an empty customers list gets nothing"),
    ({"retries": 3}, EndpointError, "endpoint 'crm' > retries: unknown field"),
])
def test_each_mistake_is_one_specific_error(fields, error, message):
    with pytest.raises(error) as raised:
        parse_endpoints({"endpoints": [endpoint(**fields)]}, "hooks.yaml")
    assert str(raised.value).startswith("hooks.yaml: ") and message in str(raised.value)


def test_a_missing_secret_and_duplicates_and_bad_files():
    document = {"endpoints": [{k: v for k, v in endpoint().items() if k != "secret"}]}
    with pytest.raises(MissingSecret, match="endpoint 'crm' > secret: no secret; every endpoint needs one"):
        parse_endpoints(document, "hooks.yaml")
    with pytest.raises(EndpointError, match="expected a mapping"):
        parse_endpoints(["crm"], "hooks.yaml")


def test_duplicate_ids_across_files(tmp_path):
    for name in ("a.yaml", "b.json"):
        (tmp_path / name).write_text(orjson.dumps({"endpoints": [endpoint()]}).decode())
    with pytest.raises(DuplicateEndpoint, match="endpoint 'crm' is defined twice"):
        load_endpoints([tmp_path])


def test_subscriptions_by_type_and_customer():
    found = parse_endpoints({"endpoints": [endpoint(), endpoint(id="acme", customers=["cus-acme"],
                                                                  types=["invoice.finalized", "payment.failed"])]}, "f")
    by = {e.id: e for e in found}
    assert by["crm"].wants(EventType.INVOICE_FINALIZED, "cus-other") and by["acme"].wants(EventType.PAYMENT_FAILED, "cus-acme")
    assert not by["acme"].wants(EventType.INVOICE_FINALIZED, "cus-other")


def invoice(status: InvoiceStatus, **fields) -> Invoice:
    times = {InvoiceStatus.FINALIZED: {"issued_at": T, "due_at": T, "number": "INV-000001"},
             InvoiceStatus.VOID: {"voided_at": T, "void_reason": "wrong plan"}}.get(status, {})
    return Invoice(id="inv-1", customer_id="cus-1", period_start=datetime(2026, 11, 1, tzinfo=UTC), period_end=T, currency="EUR",
                   line_items=(), subtotal=Decimal(0), total=Decimal(0), status=status, event_time=T, **{**times, **fields})


def payment(status: PaymentStatus, event_id: str = "pe-1") -> PaymentTransaction:
    extra = {PaymentStatus.FAILED: {"failure_reason": FailureReason.CARD_EXPIRED},
             PaymentStatus.REFUNDED: {"refunded_amount": Decimal("5.00")}}.get(status, {})
    return PaymentTransaction(event_id=event_id, id="tx-1", invoice_id="inv-1", customer_id="cus-1", method=PaymentMethod.CARD,
                              amount=Decimal("12.50"), currency="EUR", status=status, attempt=1, sequence=1, initiated_at=T,
                              completed_at=None if status is PaymentStatus.INITIATED else T, event_time=T, **extra)


def credit_note(note_id: str = "cn-inv-1-202612") -> CreditNote:
    line = CreditNoteLine(charge="growth-year.platform", description="Unused Platform fee", quantity=Decimal("0.5"),
                          amount=Decimal("600.00"), service_start=datetime(2026, 6, 1, tzinfo=UTC), service_end=T)
    return CreditNote(id=note_id, number="INV-CN-000001", customer_id="cus-1", invoice_id="inv-1", period_start=T,
                      period_end=datetime(2027, 1, 1, tzinfo=UTC), currency="EUR", reason="downgrade", lines=(line,),
                      total=Decimal("600.00"), issued_at=T, event_time=T)


def test_messages_map_to_the_events_integrators_get():
    alert = AlertEvent(id="alert-1", source="billing/alerts", type=AlertType.USAGE_THRESHOLD, subject="cus-1", time=T,
                       data=AlertData(rule="r", meter="api_calls", period_start=datetime(2026, 11, 1, tzinfo=UTC), period_end=T,
                                      value=Decimal(10), threshold=Decimal(5), unit=ThresholdUnit.UNITS, limit=Decimal(5)))
    sent = webhook_event(alert)
    assert (sent.id, sent.type, sent.customer_id) == ("alert-1", EventType.USAGE_THRESHOLD, "cus-1")
    assert orjson.loads(sent.body) == orjson.loads(alert.model_dump_json(exclude_none=True))

    finalized, voided = webhook_event(invoice(InvoiceStatus.FINALIZED)), webhook_event(invoice(InvoiceStatus.VOID))
    assert (finalized.type, voided.type) == (EventType.INVOICE_FINALIZED, EventType.INVOICE_VOIDED)
    assert finalized.id != voided.id and finalized.id == webhook_event(invoice(InvoiceStatus.FINALIZED)).id
    body = orjson.loads(finalized.body)
    assert (body["specversion"], body["type"], body["subject"], body["id"], body["data"]["number"]) == (
        "1.0", "invoice.finalized", "cus-1", finalized.id, "INV-000001")
    assert webhook_event(invoice(InvoiceStatus.DRAFT)) is None

    kinds = {status: webhook_event(payment(status)) for status in PaymentStatus}
    assert {s: e and e.type for s, e in kinds.items()} == {
        PaymentStatus.INITIATED: None, PaymentStatus.DISPUTED: None, PaymentStatus.SUCCEEDED: EventType.PAYMENT_SUCCEEDED,
        PaymentStatus.FAILED: EventType.PAYMENT_FAILED, PaymentStatus.REFUNDED: EventType.PAYMENT_REFUNDED}
    assert kinds[PaymentStatus.FAILED].id == "pe-1"
    assert orjson.loads(kinds[PaymentStatus.REFUNDED].body)["data"]["refunded_amount"] == "5.00"
    assert delivery_id("e", "crm") == delivery_id("e", "crm") != delivery_id("e", "ops")

    issued = webhook_event(credit_note())
    assert (issued.type, issued.customer_id) == (EventType.CREDIT_NOTE_ISSUED, "cus-1")
    assert issued.id == webhook_event(credit_note()).id != webhook_event(credit_note("cn-inv-2-202612")).id
    assert issued.id not in {finalized.id, voided.id}
    body = orjson.loads(issued.body)
    assert (body["type"], body["source"], body["subject"], body["data"]["invoice_id"], body["data"]["total"]) == (
        "credit_note.issued", "billing/credit-notes", "cus-1", "inv-1", "600.00")
