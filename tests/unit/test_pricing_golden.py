"""Golden invoices for every charge model, computed by hand from the shipped example plans.

Rounding is half-up to the currency's minor unit, once per line, discount and tax.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.core.errors import ConfigError
from billing.core.pricing import CouponGrant, Period, PlanTerm, TaxProfile, builtin_catalog, month_period, price_invoice

FEB = month_period(datetime(2024, 2, 1, tzinfo=UTC))  # 29 days (leap year)
CATALOG = builtin_catalog()


def invoice(plan_id, usage, period=FEB, active=None, **kwargs):
    term = PlanTerm(CATALOG.plan(plan_id), active or period, {k: D(v) for k, v in usage.items()})
    return price_invoice(period, [term], tax_rules=CATALOG.tax_rules, **kwargs)


def amounts(inv):
    return {line.charge_id: line.amount for line in inv.lines}


def test_flat_and_per_unit_with_allowance_and_us_sales_tax():
    inv = invoice("starter", {"api_calls": 250_000, "bandwidth_gb": "10.5"}, bill_to=TaxProfile("US", "CA"))
    # platform 29.00; api (250,000 - 100,000 free) * 0.0004 = 60.00;
    # bandwidth (10.5 - 10 free) * 0.09 = 0.045 -> 0.05 (half-up; banker's would give 0.04)
    assert amounts(inv) == {"platform_fee": D("29.00"), "api_calls": D("60.00"), "bandwidth": D("0.05")}
    assert inv.subtotal == D("89.05")
    # CA sales tax 7.25 % of 89.05 = 6.456125 -> 6.46
    assert [(t.name, t.amount) for t in inv.taxes] == [("Sales tax", D("6.46"))]
    assert inv.total == inv.amount_due == D("95.51")
    allowance = inv.lines[1].steps[0]
    assert (allowance.units, allowance.amount) == (D(100_000), 0)


def test_graduated_with_tier_flat_fees_and_package():
    inv = invoice("growth", {"api_calls": 12_345_678, "compute_seconds": 7201})
    # tier 1: 1,000,000 * 0.0003 = 300
    # tier 2: 9,000,000 * 0.0002 = 1,800 + flat 50 = 1,850
    # tier 3: 2,345,678 * 0.0001 = 234.5678 + flat 100 = 334.5678
    # sum 2,484.5678 -> 2,484.57
    api = inv.lines[1]
    assert [(s.units, s.unit_price, s.flat_fee, s.amount) for s in api.steps] == [
        (D(1_000_000), D("0.0003"), 0, D("300")),
        (D(9_000_000), D("0.0002"), D(50), D("1850")),
        (D(2_345_678), D("0.0001"), D(100), D("334.5678")),
    ]
    assert [(s.tier_from, s.tier_to) for s in api.steps] == [(0, 1_000_000), (1_000_000, 10_000_000), (10_000_000, None)]
    assert api.exact == D("2484.5678") and api.amount == D("2484.57")
    # compute: ceil(7,201 / 3,600) = 3 packages * 0.05 = 0.15
    assert amounts(inv)["compute"] == D("0.15")
    # 99 + 2,484.57 + 0.15 = 2,583.72, above the 250 commitment: no true-up line
    assert inv.subtotal == D("2583.72")
    assert "minimum_commitment" not in amounts(inv)


def test_minimum_commitment_true_up_full_and_prorated():
    full = invoice("growth", {"api_calls": 100_000})
    # 99 + 100,000 * 0.0003 = 30 + compute 0 = 129; true-up 250 - 129 = 121
    assert amounts(full)["minimum_commitment"] == D("121.00")
    assert full.subtotal == D("250.00")

    joined = Period(datetime(2024, 2, 16, tzinfo=UTC), FEB.end)  # 14 of 29 days
    part = invoice("growth", {"api_calls": 100_000}, active=joined)
    # fee 99 * 14/29 = 47.7931... -> 47.79; commitment 250 * 14/29 = 120.6896... -> 120.69
    # true-up 120.69 - (47.79 + 30.00) = 42.90
    assert amounts(part) == {"platform_fee": D("47.79"), "api_calls": D("30.00"), "compute": D("0.00"), "minimum_commitment": D("42.90")}
    assert part.subtotal == D("120.69")


def test_volume_package_per_seat_with_coupon_and_vat():
    usage = {"storage_gb_hours": 50_000, "active_seats": 8, "bandwidth_gb": 250}
    inv = invoice("business_eur", usage, bill_to=TaxProfile("DE"))
    # storage: 50,000 falls in tier 2 -> all 50,000 * 0.00011 = 5.50 + flat 5 = 10.50
    # seats: (8 - 5 free) * 12 = 36; bandwidth: ceil(250 / 100) = 3 packs * 5 = 15
    assert amounts(inv) == {"platform_fee": D("199.00"), "storage": D("10.50"), "seats": D("36.00"), "bandwidth": D("15.00")}
    # 199 + 10.50 + 36 + 15 = 260.50; VAT 19 % = 49.495 -> 49.50; total 310.00
    assert (inv.subtotal, inv.tax_total, inv.total) == (D("260.50"), D("49.50"), D("310.00"))

    launch = CouponGrant(CATALOG.coupon("launch20"), periods_used=2)
    discounted = invoice("business_eur", usage, bill_to=TaxProfile("DE"), coupons=[launch])
    # 20 % of 260.50 = 52.10; taxable 208.40; VAT 39.596 -> 39.60; total 248.00
    assert [d.amount for d in discounted.discounts] == [D("52.10")]
    assert (discounted.taxable, discounted.tax_total, discounted.total) == (D("208.40"), D("39.60"), D("248.00"))
    assert discounted.coupons_applied == ("launch20",)
    expired = invoice("business_eur", usage, coupons=[CouponGrant(launch.coupon, periods_used=3)])
    assert expired.discounts == () and expired.total == D("260.50")


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (10_000, D("1.40")),  # upper bound is inclusive: tier 1, 10,000 * 0.00014
        (10_001, D("6.10")),  # tier 2: 10,001 * 0.00011 = 1.10011 + 5 = 6.10011
        (0, D("0.00")),  # no usage, no tier flat fee
    ],
)
def test_volume_tier_boundaries(stored, expected):
    assert amounts(invoice("business_eur", {"storage_gb_hours": stored}))["storage"] == expected


@pytest.mark.parametrize(("gb", "packs"), [(0, 0), (1, 1), (100, 1), ("100.001", 2), (201, 3)])
def test_package_rounds_up(gb, packs):
    line = next(line for line in invoice("business_eur", {"bandwidth_gb": gb}).lines if line.charge_id == "bandwidth")
    assert line.amount == packs * D(5)


@pytest.mark.parametrize(
    ("volume", "count", "expected"),
    [
        (10_000, 200, D("350.00")),  # 2.9 % of 10,000 = 290 + 200 * 0.30 = 60
        (100, 2, D("10.00")),  # 2.90 + 0.60 = 3.50, raised to the 10.00 floor
        (200_000, 5_000, D("5000.00")),  # 5,800 + 1,500 = 7,300, capped at 5,000
        ("123.45", 3, D("10.00")),  # 3.58005 + 0.90 = 4.48005 -> floor 10.00
        ("1000.15", 31, D("38.30")),  # 29.00435 + 9.30 = 38.30435 -> 38.30
    ],
)
def test_percentage_with_fixed_fee_floor_and_cap(volume, count, expected):
    inv = invoice("payments", {"payment_volume": volume, "payment_count": count})
    assert inv.lines[0].amount == expected


def test_jpy_has_no_minor_unit_and_consumption_tax():
    inv = invoice("enterprise_jpy", {"api_calls": 6_000_000, "compute_seconds": 1234}, bill_to=TaxProfile("JP"))
    # api: 5,000,000 * 0.03 = 150,000 + 1,000,000 * 0.015 = 15,000 -> 165,000
    # compute (volume, tier 1): 1,234 * 0.004 = 4.936 -> 5
    # subtotal 150,000 + 165,000 + 5 = 315,005 (above the 300,000 commitment)
    assert amounts(inv) == {"platform_fee": D(150_000), "api_calls": D(165_000), "compute": D(5)}
    # tax 10 % = 31,500.5 -> 31,501; total 346,506
    assert (inv.subtotal, inv.tax_total, inv.total) == (D(315_005), D(31_501), D(346_506))
    assert inv.total.as_tuple().exponent == 0


def test_kwd_has_three_minor_units():
    inv = invoice("growth_kwd", {"storage_gb_hours": 1_234_567, "api_calls": 2_000_000})
    # storage 1,234,567 * 0.0000125 = 15.4320875 -> 15.432
    # api: 1,000,000 * 0.00009 = 90 + 1,000,000 * 0.00006 = 60 + flat 15 -> 165.000
    assert amounts(inv) == {"platform_fee": D("30.000"), "api_calls": D("165.000"), "storage": D("15.432")}
    assert inv.subtotal == D("210.432")


def test_stacked_canadian_taxes():
    inv = invoice("starter", {"api_calls": 250_000, "bandwidth_gb": "10.5"}, bill_to=TaxProfile("CA", "qc"))
    # GST 5 % of 89.05 = 4.4525 -> 4.45; QST 9.975 % = 8.8827... -> 8.88; total 102.38
    assert [(t.name, t.amount) for t in inv.taxes] == [("GST", D("4.45")), ("QST", D("8.88"))]
    assert inv.total == D("102.38")
    assert invoice("starter", {}, bill_to=TaxProfile("CA", "QC", tax_exempt=True)).taxes == ()


def test_fixed_coupon_then_prepaid_credits():
    welcome = CouponGrant(CATALOG.coupon("welcome50"))
    inv = invoice("starter", {"api_calls": 250_000, "bandwidth_gb": "10.5"}, bill_to=TaxProfile("US", "CA"), coupons=[welcome],
                  credit_balance=D("20"))
    # 89.05 - 50 = 39.05; tax 7.25 % = 2.831125 -> 2.83; total 41.88; 20 credits -> due 21.88
    assert (inv.taxable, inv.tax_total, inv.total) == (D("39.05"), D("2.83"), D("41.88"))
    assert (inv.credits_applied, inv.amount_due) == (D("20.00"), D("21.88"))
    rich = invoice("starter", {}, credit_balance=D("1000"))
    # the 29.00 fee is paid entirely by credits; nothing is due, never negative
    assert (rich.total, rich.credits_applied, rich.amount_due) == (D("29.00"), D("29.00"), D("0.00"))


def test_fixed_coupon_in_another_currency_is_an_error():
    with pytest.raises(ConfigError, match="coupon 'welcome50' is in USD but the invoice is in EUR"):
        invoice("business_eur", {}, coupons=[CouponGrant(CATALOG.coupon("welcome50"))])


def test_mid_period_plan_change_and_cancellation():
    change = datetime(2024, 2, 11, tzinfo=UTC)
    terms = [
        PlanTerm(CATALOG.plan("starter"), Period(FEB.start, change), {"api_calls": D(50_000)}),
        PlanTerm(CATALOG.plan("growth"), Period(change, FEB.end), {"api_calls": D(500_000)}),
    ]
    inv = price_invoice(FEB, terms)
    # starter 10/29 of the month: 29 * 10/29 = 10.00; 50,000 calls are within the free 100,000
    # growth 19/29: 99 * 19/29 = 64.8620... -> 64.86; 500,000 * 0.0003 = 150.00
    # growth commitment 250 * 19/29 = 163.79 < 214.86 spent: no true-up
    assert [(line.plan_id, line.charge_id, line.amount) for line in inv.lines if line.amount] == [
        ("starter", "platform_fee", D("10.00")),
        ("growth", "platform_fee", D("64.86")),
        ("growth", "api_calls", D("150.00")),
    ]
    assert inv.subtotal == D("224.86")

    canceled = invoice("starter", {}, active=Period(FEB.start, datetime(2024, 2, 15, 12, tzinfo=UTC)))
    # 14.5 of 29 days = exactly half: 29 / 2 = 14.50
    assert canceled.lines[0].amount == D("14.50") and canceled.lines[0].fraction == D("0.5")


def test_mixed_currencies_and_negative_usage_are_errors():
    with pytest.raises(ConfigError, match="share a currency: USD and EUR"):
        price_invoice(FEB, [PlanTerm(CATALOG.plan("starter"), FEB), PlanTerm(CATALOG.plan("business_eur"), FEB)])
    with pytest.raises(ConfigError, match="usage of meter 'api_calls' is negative"):
        invoice("starter", {"api_calls": -1})
