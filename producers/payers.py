"""Simulated payers: how customers pay the invoices the billing engine finalized.

:func:`settle` is pure: the payment events of one invoice follow from the seed and the invoice id
alone (the customer's habits from the seed and the customer id), so the expected outcome of every
invoice is reproducible. A customer keeps its payment method and habits across invoices: most pay
within hours of the invoice, late payers after the due date, never-payers not at all. Each
attempt may fail with a reason (card-only reasons only for cards) and is retried (network errors
within hours, other failures after days) up to ``MAX_ATTEMPTS``; a settled payment may later be
refunded (in full or in part) or disputed. Times start at the invoice's ``issued_at``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from billing.core.contracts import (
    FailureReason,
    Invoice,
    PaymentMethod,
    PaymentStatus,
    PaymentTransaction,
)
from billing.core.pricing.money import currency
from producers import world as cat

USD_RATES = {market.currency: market.usd_rate for market in cat.MARKETS}


@dataclass(frozen=True, slots=True)
class Habits:
    """How one customer pays."""

    method: str
    late: bool
    never: bool


@dataclass(frozen=True, slots=True)
class Settlement:
    """The payment events of one invoice and when it was paid (None: not paid)."""

    events: tuple[PaymentTransaction, ...]
    paid_at: datetime | None


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


def habits(seed: int, customer_id: str, code: str) -> Habits:
    """The payment habits of ``customer_id`` (billed in currency ``code``) in the run with ``seed``."""
    rng = random.Random(f"payer:{seed}:{customer_id}")
    method = _weighted(rng, cat.METHODS_BY_CURRENCY.get(code, cat.METHODS_DEFAULT))
    late = rng.random() < cat.LATE_PAYER_SHARE
    return Habits(method, late, rng.random() < cat.NEVER_PAYER_SHARE)


def settle(invoice: Invoice, seed: int) -> Settlement:
    """Every payment event of ``invoice`` (finalized, with a positive total), in time order."""
    if invoice.issued_at is None or invoice.due_at is None:
        raise ValueError(f"invoice {invoice.id} is not issued; payers only pay finalized invoices")
    how = habits(seed, invoice.customer_id, invoice.currency)
    if how.never or invoice.total <= 0:
        return Settlement((), None)
    rng = random.Random(f"payer:{seed}:{invoice.id}")
    method = how.method
    usd = invoice.total / USD_RATES.get(invoice.currency, Decimal(1))
    if usd >= cat.LARGE_INVOICE_USD and rng.random() < cat.LARGE_INVOICE_WIRE_SHARE:
        method = "wire"
    success = cat.LATE_PAYER_SUCCESS_PROBABILITY if how.late else cat.SUCCESS_PROBABILITY
    when = (invoice.due_at + timedelta(days=rng.uniform(1, 20)) if how.late
            else invoice.issued_at + timedelta(hours=rng.uniform(0.1, 72)))
    tx = f"pay-{invoice.id.removeprefix('inv-')}"
    events: list[PaymentTransaction] = []

    def event(status: PaymentStatus, attempt: int, initiated: datetime, completed: datetime | None, at: datetime,
              **extra) -> None:
        events.append(PaymentTransaction(
            event_id=f"{tx}-{len(events) + 1}", id=tx, invoice_id=invoice.id, customer_id=invoice.customer_id,
            method=PaymentMethod(method), amount=invoice.total, currency=invoice.currency, status=status,
            attempt=attempt, sequence=len(events) + 1, initiated_at=initiated, completed_at=completed, event_time=at,
            **extra))

    low, high = cat.PROCESSING_SECONDS[method]
    reasons = tuple(r for r in cat.FAILURE_REASONS if method == "card" or r[0] not in cat.CARD_ONLY_REASONS)
    for attempt in range(1, cat.MAX_ATTEMPTS + 1):
        when = when.replace(microsecond=0)
        done = when + timedelta(seconds=rng.randint(low, high))
        event(PaymentStatus.INITIATED, attempt, when, None, when)
        if rng.random() < success:
            event(PaymentStatus.SUCCEEDED, attempt, when, done, done)
            later = rng.random()
            if later < cat.REFUND_PROBABILITY:
                refunded = done + timedelta(days=rng.uniform(1, 30))
                share = rng.choice((Decimal(1), Decimal("0.5"), Decimal("0.25")))
                event(PaymentStatus.REFUNDED, attempt, when, refunded, refunded,
                      refunded_amount=currency(invoice.currency).round(invoice.total * share))
            elif later < cat.REFUND_PROBABILITY + cat.DISPUTE_PROBABILITY:
                disputed = done + timedelta(days=rng.uniform(5, 60))
                event(PaymentStatus.DISPUTED, attempt, when, disputed, disputed)
            return Settlement(tuple(events), done)
        reason = _weighted(rng, reasons)
        event(PaymentStatus.FAILED, attempt, when, done, done, failure_reason=FailureReason(reason))
        delay = timedelta(hours=rng.uniform(1, 6)) if reason == "network_error" else timedelta(days=rng.uniform(1, 5))
        when = done + delay
    return Settlement(tuple(events), None)
