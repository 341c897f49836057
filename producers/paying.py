"""`billing simulate payers`: the payers react to the invoices the engine finalized for a month.

Takes the period's finalized (and already paid) invoices from the warehouse, settles each with
:func:`producers.payers.settle`, sends the payment events that happened by ``until`` to the
payments topic, records the invoices paid by then as paid (a new version through the engine's
lifecycle, published and written like every invoice version) and writes the outcome to the
manifest. Re-running sends the same events again (the pipeline drops them as duplicates) plus
those that became due since: delays, late payers, refunds and disputes arrive over time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from billing.core.contracts import Invoice, InvoiceStatus, PaymentTransaction, to_bytes
from producers.manifest import write_settlements
from producers.payers import settle


@dataclass
class PayerSummary:
    """What the payers did with one month's invoices."""

    invoices: int = 0
    payment_events: int = 0
    newly_paid: int = 0
    paid: int = 0
    unpaid: int = 0
    scheduled_later: int = 0
    """Payment events that happen after ``until`` (sent by a later run)."""
    settled: list[Invoice] = field(default_factory=list)
    payments: list[PaymentTransaction] = field(default_factory=list)


def pay_period(invoices: Sequence[Invoice], seed: int, until: datetime, sink,
               mark_paid: Callable[[list[tuple[Invoice, datetime]]], list[Invoice]],
               manifest_dir: Path | None = None) -> PayerSummary:
    """Pay a month's ``invoices`` (the engine's, read from the warehouse) as of ``until`` into ``sink``;
    ``mark_paid`` records the invoices paid (the engine's :meth:`~billing.invoicing.run.Invoicing.mark_paid`)."""
    summary = PayerSummary()
    issued = [invoice for invoice in invoices
              if invoice.status in (InvoiceStatus.FINALIZED, InvoiceStatus.PAID) and invoice.issued_at <= until]
    to_mark: list[tuple[Invoice, datetime]] = []
    for invoice in issued:
        settlement = settle(invoice, seed)
        sent = [event for event in settlement.events if event.event_time <= until]
        summary.scheduled_later += len(settlement.events) - len(sent)
        summary.payments.extend(sent)
        paid = settlement.paid_at is not None and settlement.paid_at <= until
        if paid and invoice.status is InvoiceStatus.FINALIZED:
            to_mark.append((invoice, settlement.paid_at))
        else:
            summary.settled.append(invoice)
        summary.paid += paid
        summary.unpaid += not paid
    summary.invoices = len(issued)
    summary.payment_events = len(summary.payments)
    sink.send_many("payments", [(event.customer_id.encode(), to_bytes(event)) for event in summary.payments])
    sink.close()
    marked = mark_paid(to_mark)
    summary.newly_paid = len(marked)
    summary.settled.extend(marked)
    summary.settled.sort(key=lambda invoice: invoice.id)
    if manifest_dir is not None:
        write_settlements(manifest_dir, summary.settled, summary.payments)
    return summary
