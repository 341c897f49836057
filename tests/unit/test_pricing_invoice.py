"""A priced invoice becomes a valid Invoice contract whose total is the amount due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from billing.core.contracts import AdjustmentKind, Invoice, LineKind
from billing.core.pricing import CouponGrant, Period, PlanTerm, TaxProfile, builtin_catalog, month_period, price_invoice
from billing.core.pricing.invoice import to_invoice

FEB = month_period(datetime(2024, 2, 1, tzinfo=UTC))
CATALOG = builtin_catalog()


def test_contract_invoice_carries_lines_breakdown_adjustments_and_amount_due():
    joined = Period(datetime(2024, 2, 16, tzinfo=UTC), FEB.end)
    priced = price_invoice(
        FEB,
        [PlanTerm(CATALOG.plan("growth"), joined, {"api_calls": D(100_000)})],
        bill_to=TaxProfile("US", "NY"),
        coupons=[CouponGrant(CATALOG.coupon("welcome50"))],
        credit_balance=D("10"),
        tax_rules=CATALOG.tax_rules,
    )
    issued = FEB.end + timedelta(hours=1)
    invoice = to_invoice(priced, invoice_id="inv-1", customer_id="cus-1", issued_at=issued, due_at=issued + timedelta(days=14))
    # subtotal 120.69 (see the golden test), minus 50 coupon = 70.69; NY 4 % = 2.8276 -> 2.83
    # total 73.52, minus 10 credits = 63.52 due
    assert (priced.total, priced.amount_due) == (D("73.52"), D("63.52"))
    assert invoice.total == D("63.52") and invoice.tax == D("2.83") and invoice.tax_rate == D("0.04")
    assert [(a.kind, a.amount) for a in invoice.adjustments] == [(AdjustmentKind.COUPON, D("50.00")), (AdjustmentKind.CREDIT, D("10.00"))]
    kinds = [(item.kind, item.charge) for item in invoice.line_items]
    assert kinds == [
        (LineKind.SUBSCRIPTION, "growth.platform_fee"),
        (LineKind.USAGE, "growth.api_calls"),
        (LineKind.USAGE, "growth.compute"),
        (LineKind.COMMITMENT, "growth.minimum_commitment"),
    ]
    prorated = invoice.line_items[0].breakdown[0]
    assert prorated.amount.as_tuple().exponent >= -9 and abs(prorated.amount - D("47.7931034")) < D("1e-6")
    # the contract survives a JSON round trip unchanged
    assert Invoice.model_validate_json(invoice.model_dump_json()) == invoice


def test_tier_bounds_travel_in_breakdown_details():
    priced = price_invoice(FEB, [PlanTerm(CATALOG.plan("growth"), FEB, {"api_calls": D(2_000_000)})])
    invoice = to_invoice(priced, invoice_id="inv-2", customer_id="c", issued_at=FEB.end, due_at=FEB.end)
    api = invoice.line_items[1]
    assert [step.details for step in api.breakdown] == [
        {"tier_from": "0", "tier_to": "1000000"},
        {"tier_from": "1000000", "tier_to": "10000000", "flat_fee": "50.00"},
    ]
    # 1,000,000 * 0.0003 = 300 + 1,000,000 * 0.0002 = 200 + 50 = 550
    assert api.amount == D("550.00")
