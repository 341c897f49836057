"""Property-based tests of the pricing engine (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.pricing import charges
from billing.core.pricing.adjustments import CouponGrant
from billing.core.pricing.engine import PlanTerm, price_invoice
from billing.core.pricing.money import MINOR_UNITS
from billing.core.pricing.plans import (
    Coupon,
    GraduatedCharge,
    PackageCharge,
    PercentageCharge,
    PerUnitCharge,
    Plan,
    VolumeCharge,
)
from billing.core.pricing.proration import Period, month_period

PERIOD = month_period(datetime(2024, 3, 1, tzinfo=UTC))

prices = st.decimals(min_value=0, max_value=100, places=4)
fees = st.decimals(min_value=0, max_value=50, places=2)
quantities = st.decimals(min_value=0, max_value=10**7, places=3)
counts = st.integers(min_value=0, max_value=10**5).map(Decimal)


@st.composite
def tier_lists(draw, max_tiers=5, integral=False):
    """Contiguous tiers: strictly increasing bounds, the last one unbounded."""
    widths = draw(st.lists(st.integers(min_value=1, max_value=400), min_size=0, max_size=max_tiers - 1))
    bounds, total = [], 0
    for width in widths:
        total += width
        bounds.append(total)
    return [
        {"up_to": bound, "unit_price": draw(st.integers(0, 20).map(Decimal) if integral else prices), "flat_fee": draw(fees)}
        for bound in [*bounds, None]
    ]


def graduated(tiers, free=0):
    return GraduatedCharge(id="c", model="graduated", meter="m", tiers=tiers, free_units=free)


def total(steps):
    return sum((step.amount for step in steps), Decimal(0))


@st.composite
def usage_charges(draw):
    """Any usage charge except volume (whose total may drop at a tier bound, by design)."""
    kind = draw(st.sampled_from(["per_unit", "graduated", "package", "percentage"]))
    free = draw(st.decimals(min_value=0, max_value=1000, places=0))
    if kind == "per_unit":
        return PerUnitCharge(id="c", model=kind, meter="m", unit_price=draw(prices), free_units=free)
    if kind == "graduated":
        return graduated(draw(tier_lists()), free)
    if kind == "package":
        size = draw(st.decimals(min_value=1, max_value=1000, places=0))
        return PackageCharge(id="c", model=kind, meter="m", package_size=size, package_price=draw(fees), free_units=free)
    low = draw(st.none() | fees)
    high = draw(st.none() | st.decimals(min_value=50, max_value=10**5, places=2))
    return PercentageCharge(
        id="c", model=kind, meter="m", count_meter="n", rate=draw(st.decimals(0, 100, places=2)),
        fixed_fee=draw(fees), min_amount=low, max_amount=high, free_units=free,
    )


@given(tier_lists(), quantities, st.decimals(min_value=0, max_value=500, places=0))
def test_graduated_total_is_the_sum_over_tiers(tiers, quantity, free):
    charge = graduated(tiers, free)
    steps = charges.graduated(charge, quantity)
    billable = max(Decimal(0), quantity - free)
    tier_steps = [step for step in steps if step.tier_from is not None]
    assert sum((step.units for step in tier_steps), Decimal(0)) == billable
    for step, tier in zip(tier_steps, charge.tiers, strict=False):
        assert step.amount == step.units * tier.unit_price + tier.flat_fee
        assert step.tier_from == tier.from_ and step.units > 0
    assert total(steps) == sum((s.amount for s in tier_steps), Decimal(0))


@given(tier_lists(max_tiers=4, integral=True), st.integers(min_value=0, max_value=1500))
@settings(max_examples=60)
def test_graduated_equals_pricing_each_unit_by_its_tier(tiers, quantity):
    """An independent formulation: unit n costs the price of the tier containing n."""
    charge = graduated(tiers)
    expected, reached = Decimal(0), set()
    for unit in range(1, quantity + 1):
        number = next(i for i, t in enumerate(charge.tiers) if t.up_to is None or unit <= t.up_to)
        expected += charge.tiers[number].unit_price
        reached.add(number)
    expected += sum((charge.tiers[i].flat_fee for i in reached), Decimal(0))
    assert total(charges.graduated(charge, Decimal(quantity))) == expected


@given(usage_charges(), quantities, quantities, counts, counts)
def test_totals_are_monotonic_in_usage(charge, q1, q2, n1, n2):
    low, high = sorted((q1, q2))
    few, many = sorted((n1, n2))
    assert total(charges.usage_steps(charge, {"m": low, "n": few})[1]) <= total(charges.usage_steps(charge, {"m": high, "n": many})[1])


@given(prices, fees, quantities)
def test_volume_and_graduated_agree_on_a_single_tier(price, fee, quantity):
    tier = [{"up_to": None, "unit_price": price, "flat_fee": fee}]
    volume = VolumeCharge(id="c", model="volume", meter="m", tiers=tier)
    assert total(charges.volume(volume, quantity)) == total(charges.graduated(graduated(tier), quantity))


@given(st.decimals(min_value=1, max_value=1000, places=2), fees, quantities)
def test_package_rounds_up(size, price, quantity):
    charge = PackageCharge(id="c", model="package", meter="m", package_size=size, package_price=price)
    step = charges.package(charge, quantity)[-1]
    packages = step.units
    assert packages == packages.to_integral_value()
    assert packages * size >= quantity
    assert (packages - 1) * size < quantity or packages == 0
    assert step.amount == packages * price


def plan_for(charge, code):
    return Plan(id="p", name="P", currency=code, charges=[charge])


@given(usage_charges(), st.sampled_from(sorted(MINOR_UNITS)), quantities, counts)
def test_rounding_never_moves_a_line_by_more_than_half_a_minor_unit(charge, code, quantity, count):
    plan = plan_for(charge, code)
    inv = price_invoice(PERIOD, [PlanTerm(plan, PERIOD, {"m": quantity, "n": count})])
    for line in inv.lines:
        assert abs(line.amount - line.exact) <= plan.money.quantum / 2
        assert line.amount == plan.money.round(line.amount)
    assert inv.subtotal == sum((line.amount for line in inv.lines), Decimal(0))


@given(
    usage_charges(),
    quantities,
    counts,
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.lists(st.sampled_from(["percent", "fixed"]), max_size=3),
)
def test_discounts_and_credits_never_make_a_total_negative(charge, quantity, count, balance, coupon_kinds):
    coupons = [
        CouponGrant(Coupon(id=f"c{i}", percent_off=Decimal(60)) if kind == "percent"
                    else Coupon(id=f"c{i}", amount_off=Decimal(75), currency="USD"))
        for i, kind in enumerate(coupon_kinds)
    ]
    inv = price_invoice(PERIOD, [PlanTerm(plan_for(charge, "USD"), PERIOD, {"m": quantity, "n": count})], coupons=coupons,
                        credit_balance=balance)
    assert 0 <= inv.taxable <= inv.subtotal
    assert 0 <= inv.credits_applied <= balance
    assert inv.amount_due >= 0
    assert inv.amount_due == inv.total - inv.credits_applied


@given(st.integers(min_value=0, max_value=PERIOD.seconds))
def test_proration_of_adjacent_segments_adds_up_to_the_whole_period(offset):
    split = PERIOD.start + timedelta(seconds=offset)
    before = PERIOD.fraction(Period(PERIOD.start, split)) if offset else Decimal(0)
    after = PERIOD.fraction(Period(split, PERIOD.end)) if offset < PERIOD.seconds else Decimal(0)
    assert abs(before + after - 1) <= Decimal("1e-27")  # exact up to Decimal's 28-digit precision
