"""Credit notes of a month's settlements of prepaid fees (:mod:`~billing.core.invoicing.prepaid`), pure.

One credit note per customer, month of the run and invoice credited (the invoice of the month that
billed the cycle in advance), id ``cn-<that invoice id>-<YYYYMM of the run>``: the same on every
run, so a repeated run issues nothing twice. Each line credits one plan's fee of one cycle; its
quantity, the share of the cycle credited, has the contract's 9 decimals (as the warehouse keeps it,
so the published credit note and the recorded one are equal).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from billing.core.contracts import CreditNote, CreditNoteLine
from billing.core.invoicing.periods import invoice_id, label
from billing.core.invoicing.prepaid import PrepaidChange, credit_description, credits
from billing.core.pricing.invoice import NINE_PLACES
from billing.core.pricing.proration import Period

_MAX_ID = 128


def credit_note_id(credited_invoice: str, period: Period) -> str:
    """``cn-<invoice id>-<YYYYMM>`` (a digest of the invoice id when that is too long for an id)."""
    candidate = f"cn-{credited_invoice}-{period.start:%Y%m}"
    if len(candidate) <= _MAX_ID:
        return candidate
    return f"cn-{hashlib.sha256(credited_invoice.encode()).hexdigest()[:40]}-{period.start:%Y%m}"


def credit_notes(customer_id: str, currency: str, settled: Sequence[PrepaidChange], period: Period, now: datetime,
                 number: Iterator[str], issued: frozenset[str] = frozenset()) -> list[CreditNote]:
    """The credit notes ``settled`` calls for in the run of ``period``, issued at ``now``, each numbered
    from ``number``; those whose id is in ``issued`` are left out (and take no number)."""
    by_invoice: dict[str, list[PrepaidChange]] = defaultdict(list)
    for change in credits(settled):
        by_invoice[invoice_id(customer_id, change.billed_on)].append(change)
    notes = []
    for credited in sorted(by_invoice):
        note_id = credit_note_id(credited, period)
        if note_id in issued:
            continue
        lines = tuple(CreditNoteLine(
            charge=f"{change.plan.id}.{change.charge.id}", description=credit_description(change),
            quantity=(Decimal(change.seconds_before - change.seconds_now) / Decimal(change.cycle.seconds)).quantize(
                NINE_PLACES, rounding=ROUND_HALF_UP),
            amount=-change.delta, service_start=change.cycle.start, service_end=change.cycle.end,
        ) for change in by_invoice[credited])
        notes.append(CreditNote(
            id=note_id, number=next(number), customer_id=customer_id, invoice_id=credited, period_start=period.start,
            period_end=period.end, currency=currency, lines=lines, total=sum((line.amount for line in lines), Decimal(0)),
            reason=f"unused part of fees paid in advance, after a plan change or cancellation in {label(period)}",
            issued_at=now, event_time=now,
        ))
    return notes
