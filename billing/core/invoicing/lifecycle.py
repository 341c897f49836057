"""Invoice lifecycle: draft -> finalized -> paid | void (and draft -> void); void -> re-billed.

Only drafts change content (a re-run recomputes them). Finalizing issues the invoice (issue and
due dates) and freezes it; paying or voiding a finalized invoice records a new version with the
same lines. Every transition is a new version with a later ``event_time``; a transition the
status does not allow raises :class:`InvalidTransition` and changes nothing.

A void invoice can be re-billed once: it records ``replaced_by`` (a new id, ``<id>-r1``), and the
next run of its period bills the customer on that invoice, which records ``replaces``. A finalized
invoice is never re-billed: it is corrected by credit notes (and late-usage correction lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from billing.core.contracts import Invoice, InvoiceStatus
from billing.core.invoicing.errors import InvalidTransition

ONE_MS = timedelta(milliseconds=1)

_ALLOWED = {
    InvoiceStatus.FINALIZED: {InvoiceStatus.DRAFT},
    InvoiceStatus.PAID: {InvoiceStatus.FINALIZED},
    InvoiceStatus.VOID: {InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED},
}
_VERBS = {
    InvoiceStatus.FINALIZED: ("finalize", "finalized"),
    InvoiceStatus.PAID: ("pay", "paid"),
    InvoiceStatus.VOID: ("void", "voided"),
}
_HINTS = {
    (InvoiceStatus.PAID, InvoiceStatus.DRAFT): "finalize it first",
    (InvoiceStatus.VOID, InvoiceStatus.PAID): "refund the payment instead",
    (InvoiceStatus.FINALIZED, InvoiceStatus.VOID): "a void invoice stays void; re-bill it with `billing invoice rebill`",
    (InvoiceStatus.PAID, InvoiceStatus.VOID): "a void invoice cannot be paid",
}


def transition(invoice: Invoice, target: InvoiceStatus, now: datetime, due_days: int,
               reason: str | None = None, number: str | None = None) -> Invoice:
    """The next version of ``invoice`` in status ``target``, recorded at ``now`` (``reason``: why it is
    voided; ``number``: the number a finalized invoice gets, :mod:`~billing.core.invoicing.numbering`)."""
    allowed = _ALLOWED[target]
    if invoice.status not in allowed:
        verb, done = _VERBS[target]
        hint = _HINTS.get((target, invoice.status)) or f"only {' or '.join(sorted(s.value for s in allowed))} invoices can be {done}"
        raise InvalidTransition(f"cannot {verb} invoice {invoice.id}: it is {invoice.status.value}; {hint}")
    at = max(now, invoice.event_time + ONE_MS)
    update: dict = {"status": target, "event_time": at}
    if target is InvoiceStatus.FINALIZED:
        update.update(issued_at=at, due_at=at + timedelta(days=due_days), number=number)
    elif target is InvoiceStatus.PAID:
        update["paid_at"] = at
    else:
        update.update(voided_at=at, void_reason=reason)
    return invoice.model_copy(update=update)


def rebill(invoice: Invoice, replacement_id: str, now: datetime) -> Invoice:
    """The version of the void ``invoice`` that names its replacement ``replacement_id`` (a new invoice
    of the same period the next run computes); any other status, or a void invoice already
    re-billed, raises :class:`InvalidTransition`."""
    if invoice.status is not InvoiceStatus.VOID:
        raise InvalidTransition(f"cannot re-bill invoice {invoice.id}: it is {invoice.status.value}; only void invoices "
                                "are re-billed (void it first, or correct a finalized invoice with a credit note); nothing was written")
    if invoice.replaced_by is not None:
        raise InvalidTransition(f"cannot re-bill invoice {invoice.id}: it was re-billed already as {invoice.replaced_by}; "
                                "nothing was written")
    return invoice.model_copy(update={"replaced_by": replacement_id, "event_time": max(now, invoice.event_time + ONE_MS)})


def live_invoice(first_id: str, found: Mapping[str, tuple[InvoiceStatus, str | None]]) -> tuple[str, str | None]:
    """The invoice that bills a customer's period whose first invoice is ``first_id``, following
    re-bills of void invoices (``found``: status and ``replaced_by`` per invoice id of the period),
    and the void invoice it replaces (None for the first)."""
    current, replaces = first_id, None
    while current in found and found[current][0] is InvoiceStatus.VOID and found[current][1]:
        current, replaces = found[current][1], current
    return current, replaces


def replacement_id(invoice_id: str) -> str:
    """The id of the invoice re-billing ``invoice_id``: ``inv-c-202611`` -> ``inv-c-202611-r1`` -> ``...-r2``."""
    base, mark, count = invoice_id.rpartition("-r")
    if mark and count.isdigit():
        return f"{base}-r{int(count) + 1}"
    return f"{invoice_id}-r1"
