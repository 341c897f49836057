"""The run summary: what was billed per currency, and why the rest was not billed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from billing.core.invoicing import compose
from billing.core.invoicing.periods import parse_period
from billing.core.invoicing.summary import (
    ENDED,
    INACTIVE,
    TRIAL,
    billed_by_currency,
    not_billed_reason,
)
from billing.core.invoicing.timeline import PlanSpan, SubscriptionChange
from billing.core.pricing import builtin_catalog

UTC = UTC
SEP = parse_period("2026-09")
CATALOG = builtin_catalog()


def invoice(customer: compose.BillingCustomer, plan: str, usage: dict):
    priced = compose.price(SEP, customer, [PlanSpan("s", plan, SEP.start, SEP.end)], [usage], CATALOG)
    return compose.draft(priced, invoice_id=f"inv-{customer.id}", customer_id=customer.id, subscription_id="s", now=SEP.end)


def test_billed_per_currency_splits_fees_usage_true_ups_and_tax():
    us, de = compose.BillingCustomer("a", "USD", "US"), compose.BillingCustomer("b", "EUR", "DE")
    found = billed_by_currency([invoice(us, "starter", {"api_calls": Decimal(150_000)}), invoice(us, "growth", {}),
                                invoice(de, "starter", {})])
    assert list(found) == ["EUR", "USD"]
    usd, eur = found["USD"], found["EUR"]
    # starter 29.00 + 20.00 calls; growth 99.00 + 0.00 usage + 151.00 true-up to its 250.00 commitment
    assert (usd.invoices, usd.fees, usd.usage, usd.other, usd.tax, usd.total) == (
        2, Decimal("128.00"), Decimal("20.00"), Decimal("151.00"), Decimal(0), Decimal("299.00"))
    # starter in euro: 29 x 0.92 = 26.68, German VAT 19 % = 5.07
    assert (eur.invoices, eur.fees, eur.tax, eur.total) == (1, Decimal("26.68"), Decimal("5.07"), Decimal("31.75"))


def test_reasons_a_subscription_is_not_billed():
    signed = datetime(2026, 8, 20, tzinfo=UTC)
    trial = [SubscriptionChange("s", 1, "growth", "trialing", signed, None, signed)]
    assert not_billed_reason(trial, SEP) == TRIAL
    ended = [SubscriptionChange("s", 1, "growth", "active", signed, None, signed),
             SubscriptionChange("s", 2, "growth", "canceled", signed, SEP.start, datetime(2026, 8, 25, tzinfo=UTC))]
    assert not_billed_reason(ended, SEP) == ENDED
    later = [SubscriptionChange("s", 1, "growth", "active", datetime(2026, 10, 5, tzinfo=UTC), None, signed)]
    assert not_billed_reason(later, SEP) == INACTIVE
