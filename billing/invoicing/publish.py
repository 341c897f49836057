"""Publish invoice versions to the invoices topic (acks=all, idempotent, key = customer id)."""

from __future__ import annotations

from collections.abc import Iterable

from billing.core.contracts import Invoice
from billing.kafka import publish as kafka
from billing.settings import Settings


def publish(settings: Settings, invoices: Iterable[Invoice], timeout_s: float = 30.0) -> int:
    """Send every invoice and wait until the broker acknowledged all of them; returns the count
    (errors: :func:`billing.kafka.publish.publish`)."""
    return kafka.publish(settings, "invoices", ((invoice.customer_id, invoice) for invoice in invoices), "invoice", timeout_s)
