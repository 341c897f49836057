"""Invoice lifecycle: draft -> finalized -> paid | void (and draft -> void).

Only drafts change content (a re-run recomputes them). Finalizing issues the invoice (issue and
due dates) and freezes it; paying or voiding a finalized invoice records a new version with the
same lines. Every transition is a new version with a later ``event_time``; a transition the
status does not allow raises :class:`InvalidTransition` and changes nothing.
"""

from __future__ import annotations

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
    (InvoiceStatus.FINALIZED, InvoiceStatus.VOID): "a void invoice stays void; re-bill the customer on a new invoice",
    (InvoiceStatus.PAID, InvoiceStatus.VOID): "a void invoice cannot be paid",
}


def transition(invoice: Invoice, target: InvoiceStatus, now: datetime, due_days: int,
               reason: str | None = None) -> Invoice:
    """The next version of ``invoice`` in status ``target``, recorded at ``now`` (``reason``: why it is
    voided)."""
    allowed = _ALLOWED[target]
    if invoice.status not in allowed:
        verb, done = _VERBS[target]
        hint = _HINTS.get((target, invoice.status)) or f"only {' or '.join(sorted(s.value for s in allowed))} invoices can be {done}"
        raise InvalidTransition(f"cannot {verb} invoice {invoice.id}: it is {invoice.status.value}; {hint}")
    at = max(now, invoice.event_time + ONE_MS)
    update: dict = {"status": target, "event_time": at}
    if target is InvoiceStatus.FINALIZED:
        update.update(issued_at=at, due_at=at + timedelta(days=due_days))
    elif target is InvoiceStatus.PAID:
        update["paid_at"] = at
    else:
        update.update(voided_at=at, void_reason=reason)
    return invoice.model_copy(update=update)
