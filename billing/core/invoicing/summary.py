"""What an invoice run billed per currency, and why a subscription was not billed (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.core.contracts import Invoice, LineKind
from billing.core.invoicing.timeline import SubscriptionChange
from billing.core.pricing.proration import Period

ZERO = Decimal(0)
TRIAL = "in its free trial"
ENDED = "service ended before the month"
INACTIVE = "not active in the month (not started, or not billable)"


@dataclass
class CurrencyBilled:
    """The invoices of one currency a run computed, with their amounts by kind of line."""

    invoices: int = 0
    fees: Decimal = ZERO
    usage: Decimal = ZERO
    other: Decimal = ZERO
    """Minimum-commitment true-ups and corrections of late usage."""
    discounts: Decimal = ZERO
    tax: Decimal = ZERO
    total: Decimal = ZERO


def billed_by_currency(invoices: Iterable[Invoice]) -> dict[str, CurrencyBilled]:
    """``currency -> what was billed in it``, sorted by currency."""
    found: dict[str, CurrencyBilled] = {}
    for invoice in invoices:
        billed = found.setdefault(invoice.currency, CurrencyBilled())
        billed.invoices += 1
        for line in invoice.line_items:
            if line.kind in (LineKind.SUBSCRIPTION, LineKind.PRORATION):
                billed.fees += line.amount
            elif line.kind is LineKind.USAGE:
                billed.usage += line.amount
            else:
                billed.other += line.amount
        billed.discounts += invoice.discount_total
        billed.tax += invoice.tax
        billed.total += invoice.total
    return dict(sorted(found.items()))


def not_billed_reason(changes: Iterable[SubscriptionChange], period: Period) -> str:
    """Why a customer whose subscription events are ``changes`` has nothing billable in ``period``."""
    known = [c for c in changes if c.effective_time < period.end]
    last = max(known, key=lambda c: (c.effective_time, c.sequence))
    if last.status == "trialing":
        return TRIAL
    if last.end_time is not None and last.end_time <= period.start:
        return ENDED
    return INACTIVE
