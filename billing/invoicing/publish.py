"""Publish invoice versions to the invoices topic and issued credit notes to the credit notes topic
(acks=all, idempotent, key = customer id)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from billing.core.contracts import CreditNote, Invoice
from billing.kafka import publish as kafka
from billing.settings import Settings


def publish(settings: Settings, invoices: Iterable[Invoice], timeout_s: float = 30.0) -> int:
    """Send every invoice and wait until the broker acknowledged all of them; returns the count
    (errors: :func:`billing.kafka.publish.publish`)."""
    return kafka.publish(settings, "invoices", ((invoice.customer_id, invoice) for invoice in invoices), "invoice", timeout_s)


def publish_credit_notes(settings: Settings, notes: Sequence[CreditNote], timeout_s: float = 30.0) -> int:
    """Send every issued credit note and wait until the broker acknowledged all of them; returns the count
    (none: no producer is made)."""
    if not notes:
        return 0
    return kafka.publish(settings, "credit_notes", ((note.customer_id, note) for note in notes), "credit note", timeout_s)
