"""Topic messages -> webhook events: which messages integrators get, with which type and id.

Every webhook body is a CloudEvents 1.0 JSON object (``specversion``, ``id``, ``source``, ``type``,
``subject`` = customer id, ``time``, ``datacontenttype``, ``data``). An alert is sent as it is on the
alerts topic; an invoice, a credit note or a payment event is ``data`` of an envelope whose ``type``
says what happened. Only the changes integrators follow become events (:class:`EventType`); drafts,
paid invoice versions, initiated and disputed payments do not.

Ids are deterministic, so a message read twice (a restart, a replay of the topic) is the same event:
an alert keeps its id, a payment event its ``event_id``, an invoice change or an issued credit note is
a digest of the type and the invoice or credit note id (each invoice is finalized and voided at most
once, each credit note issued once).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum

import orjson

from billing.core.contracts import (
    AlertEvent,
    AlertType,
    Contract,
    CreditNote,
    Invoice,
    InvoiceStatus,
    PaymentStatus,
    PaymentTransaction,
    to_bytes,
)


class EventType(StrEnum):
    """Every event type an endpoint can subscribe to."""

    USAGE_THRESHOLD = AlertType.USAGE_THRESHOLD.value
    USAGE_ANOMALY = AlertType.USAGE_ANOMALY.value
    PAYMENT_DUE = AlertType.PAYMENT_DUE.value
    PAYMENT_OVERDUE = AlertType.PAYMENT_OVERDUE.value
    CREDIT_LOW = AlertType.CREDIT_LOW.value
    SPEND_THRESHOLD = AlertType.SPEND_THRESHOLD.value
    INVOICE_FINALIZED = "invoice.finalized"
    INVOICE_VOIDED = "invoice.voided"
    CREDIT_NOTE_ISSUED = "credit_note.issued"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"


TOPICS = ("alerts", "invoices", "credit_notes", "payments")
"""The logical topics webhook events come from."""
_INVOICE_TYPES = {InvoiceStatus.FINALIZED: EventType.INVOICE_FINALIZED, InvoiceStatus.VOID: EventType.INVOICE_VOIDED}
_PAYMENT_TYPES = {PaymentStatus.SUCCEEDED: EventType.PAYMENT_SUCCEEDED, PaymentStatus.FAILED: EventType.PAYMENT_FAILED,
                  PaymentStatus.REFUNDED: EventType.PAYMENT_REFUNDED}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event to deliver: its id (the ``webhook-id``), type, customer and the exact body bytes."""

    id: str
    type: EventType
    customer_id: str
    body: bytes


def webhook_event(message: Contract) -> WebhookEvent | None:
    """The webhook event a topic message is, or None when integrators do not get it."""
    if isinstance(message, AlertEvent):
        return WebhookEvent(message.id, EventType(message.type.value), message.subject, to_bytes(message))
    if isinstance(message, Invoice) and message.status in _INVOICE_TYPES:
        kind = _INVOICE_TYPES[message.status]
        return _envelope(kind, _digest(kind, message.id), "billing/invoices", message.customer_id, message)
    if isinstance(message, CreditNote):
        kind = EventType.CREDIT_NOTE_ISSUED
        return _envelope(kind, _digest(kind, message.id), "billing/credit-notes", message.customer_id, message)
    if isinstance(message, PaymentTransaction) and message.status in _PAYMENT_TYPES:
        return _envelope(_PAYMENT_TYPES[message.status], message.event_id, "billing/payments", message.customer_id, message)
    return None


def _envelope(kind: EventType, event_id: str, source: str, customer_id: str,
              message: Invoice | CreditNote | PaymentTransaction) -> WebhookEvent:
    body = {"specversion": "1.0", "id": event_id, "source": source, "type": kind.value, "subject": customer_id,
            "time": message.event_time.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
            "data": orjson.loads(to_bytes(message))}
    return WebhookEvent(event_id, kind, customer_id, orjson.dumps(body))


def _digest(kind: EventType, ref: str) -> str:
    return "evt-" + hashlib.sha256(json.dumps([kind.value, ref]).encode()).hexdigest()[:32]


def delivery_id(event_id: str, endpoint_id: str) -> str:
    """``dlv-`` and 32 hex digits: one delivery per event and endpoint, the same after a restart."""
    return "dlv-" + hashlib.sha256(json.dumps([event_id, endpoint_id]).encode()).hexdigest()[:32]
