"""Percentage charges priced per transaction: per-transaction floor and cap, free transactions,
period bounds on top. Golden vectors computed by hand, then properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.core.errors import ConfigError
from billing.core.invoicing.timeline import PlanSpan
from billing.core.invoicing.usage import span_transactions
from billing.core.pricing import PlanTerm, load_catalog, month_period, price_invoice
from billing.core.pricing import charges as models
from billing.core.pricing.plans import PercentageCharge, Plan

MAR = month_period(datetime(2026, 3, 1, tzinfo=UTC))
PAYOUTS_YAML = """
plans:
  - id: payouts
    name: Payouts
    currency: USD
    charges:
      - id: payouts
        model: percentage
        meter: payout_volume
        rate: 1.5
        fixed_fee: 0.25
        per_transaction_min_amount: 0.50
        per_transaction_max_amount: 20.00
        free_transactions: 100
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("plans") / "payouts.yaml"
    path.write_text(PAYOUTS_YAML)
    return load_catalog([path])


@pytest.fixture(scope="module")
def payouts(catalog) -> Plan:
    """The README's example: 1.5 % + 0.25 per payout, each 0.50 to 20.00, the first 100 of a month free."""
    return catalog.plan("payouts")


def line(plan: Plan, amounts, usage=None):
    amounts = [D(a) for a in amounts]
    meter = plan.charges[0].meter
    term = PlanTerm(plan, MAR, usage if usage is not None else {meter: sum(amounts, D(0))}, transactions={meter: amounts})
    return price_invoice(MAR, [term]).lines[0]


def charge(**fields) -> PercentageCharge:
    return PercentageCharge(id="c", model="percentage", meter="m", **fields)


def plan_of(charge_: PercentageCharge) -> Plan:
    return Plan(id="p", name="P", currency="USD", charges=[charge_])


def test_per_transaction_floor_cap_and_free_transactions_by_hand(payouts):
    paid = ["10.00", "100.00", "2000.00", "0.01", "1500.00"]
    result = line(payouts, ["10.00"] * 100 + paid)
    # the first 100 (1,000.00) are free; then per transaction 1.5 % + 0.25:
    #   10.00 -> 0.40 -> floor 0.50 | 100.00 -> 1.75 | 2,000.00 -> 30.25 -> cap 20.00
    #   0.01 -> 0.25015 -> floor 0.50 | 1,500.00 -> 22.75 -> cap 20.00        sum 42.75
    assert result.amount == result.exact == D("42.75")
    assert result.quantity == D("4610.01")
    assert [(s.units, s.amount) for s in result.steps] == [
        (D(100), D(0)),  # free transactions
        (D("3610.01"), D("54.150150")),  # 1.5 % of the paid volume
        (D(5), D("1.25")),  # 5 x 0.25
        (D(1), D("0.34985")),  # 2 raised: 0.10 + 0.24985
        (D(1), D("-13.00")),  # 2 capped: -10.25 - 2.75
    ]
    assert "2 transaction(s) raised" in result.steps[3].description
    assert "2 transaction(s) capped" in result.steps[4].description


def test_free_transactions_cost_nothing_not_even_the_floor(payouts):
    result = line(payouts, ["5000"] * 3)
    assert result.amount == 0 and result.quantity == D(15_000)


def test_period_bounds_apply_on_top_of_the_transaction_fees():
    capped = plan_of(charge(rate=2, fixed_fee="0.10", per_transaction_max_amount=1, free_transactions=1,
                            min_amount=1, max_amount="2.50"))
    # 500 free; three of 100: 2.10 each, capped at 1.00 -> 3.00; the period cap makes it 2.50
    assert line(capped, ["500", "100", "100", "100"]).amount == D("2.50")
    # 500 free; 5 -> 0.10 + 0.10 = 0.20, raised to the period minimum 1.00
    assert line(capped, ["500", "5"]).amount == D("1.00")
    # no transaction at all: the period minimum still applies, like the aggregated percentage charge
    assert line(capped, []).amount == D("1.00")


def test_the_first_transactions_are_free_in_event_order():
    two_free = plan_of(charge(rate=10, free_transactions=2, per_transaction_min_amount=0))
    assert line(two_free, ["1000", "1000", "1"]).amount == D("0.10")
    assert line(two_free, ["1", "1", "1000"]).amount == D("100.00")


def test_currency_variants_convert_the_per_transaction_bounds(payouts):
    eur = payouts.converted("EUR", D("0.9")).charges[0]
    assert (eur.per_transaction_min_amount, eur.per_transaction_max_amount, eur.fixed_fee) == (D("0.450"), D("18.000"), D("0.225"))
    assert eur.free_transactions == 100


def test_summed_usage_without_the_single_transactions_is_an_error(payouts):
    term = PlanTerm(payouts, MAR, {"payout_volume": D(10)})
    with pytest.raises(ConfigError, match="prices each transaction of meter 'payout_volume'"):
        price_invoice(MAR, [term])
    assert price_invoice(MAR, [PlanTerm(payouts, MAR, {})]).lines[0].amount == 0


def test_negative_transactions_are_refused(payouts):
    with pytest.raises(ConfigError, match="negative"):
        line(payouts, ["5", "-1"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"per_transaction_min_amount": 5, "per_transaction_max_amount": 1},
         "per_transaction_min_amount 5 is greater than per_transaction_max_amount 1"),
        ({"free_transactions": -3}, "free_transactions -3 is negative"),
        ({"free_transactions": 2, "count_meter": "n"}, "remove count_meter"),
        ({"per_transaction_max_amount": 1, "free_units": 10}, "use free_transactions"),
    ],
)
def test_nonsense_per_transaction_terms_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        charge(rate=1, **fields)


def test_the_catalog_knows_the_meters_priced_per_transaction(catalog):
    assert catalog.transaction_meters == {"payout_volume"}


def test_fixed_fee_needs_no_count_meter_when_each_event_is_a_transaction():
    assert charge(rate=1, fixed_fee="0.3", free_transactions=1).per_transaction
    assert not charge(rate=1).per_transaction


def test_events_go_to_the_span_their_hour_starts_in():
    change = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)  # a mid-hour plan change bills that hour on the old plan
    spans = [PlanSpan("s", "a", MAR.start, change), PlanSpan("s", "b", change, MAR.end)]
    events = [("m", change - timedelta(minutes=40), D(1)), ("m", change + timedelta(minutes=10), D(2)),
              ("m", change + timedelta(minutes=40), D(3)), ("m", MAR.end, D(9))]
    assert span_transactions(events, spans) == [{"m": [D(1), D(2)]}, {"m": [D(3)]}]


amounts_ = st.lists(st.decimals(min_value=0, max_value=10**5, places=2), max_size=40)
rates = st.decimals(min_value=0, max_value=100, places=2)
money = st.decimals(min_value=0, max_value=100, places=2)


@st.composite
def per_transaction_charges(draw):
    low, high = draw(st.none() | money), draw(st.none() | money)
    if low is not None and high is not None and low > high:
        low, high = high, low
    free = draw(st.integers(0, 10))
    if low is None and high is None and not free:
        low = D(0)  # a floor of 0 never binds: priced per transaction, like no bound at all
    period_low, period_high = draw(st.none() | money), draw(st.none() | st.decimals(min_value=100, max_value=10**4, places=2))
    return charge(rate=draw(rates), fixed_fee=draw(money), per_transaction_min_amount=low, per_transaction_max_amount=high,
                  free_transactions=free, min_amount=period_low, max_amount=period_high)


def clamp(fee, low, high):
    if low is not None and fee < low:
        return low
    if high is not None and fee > high:
        return high
    return fee


@given(per_transaction_charges(), amounts_)
def test_total_is_the_sum_of_clamped_fees_after_the_free_ones_then_the_period_bounds(c, amounts):
    fees = sum((clamp(a * c.rate / 100 + c.fixed_fee, c.per_transaction_min_amount, c.per_transaction_max_amount)
                for a in amounts[c.free_transactions:]), D(0))
    expected = clamp(fees, c.min_amount, c.max_amount)
    assert sum((s.amount for s in models.per_transaction(c, amounts)), D(0)) == expected


@given(per_transaction_charges(), amounts_)
def test_each_paid_transaction_costs_between_its_bounds(c, amounts):
    c = c.model_copy(update={"min_amount": None, "max_amount": None})
    total = sum((s.amount for s in models.per_transaction(c, amounts)), D(0))
    paid = len(amounts[c.free_transactions:])
    if c.per_transaction_min_amount is not None:
        assert total >= paid * c.per_transaction_min_amount
    if c.per_transaction_max_amount is not None:
        assert total <= paid * c.per_transaction_max_amount


@given(rates, money, amounts_)
def test_without_bounds_or_free_transactions_it_equals_the_summed_percentage_charge(rate, fee, amounts):
    single = charge(rate=rate, fixed_fee=fee, per_transaction_min_amount=0)  # fees are >= 0: the floor never binds
    summed = charge(rate=rate, fixed_fee=fee, count_meter="n")
    by_transaction = sum((s.amount for s in models.per_transaction(single, amounts)), D(0))
    by_sum = sum((s.amount for s in models.percentage(summed, sum(amounts, D(0)), D(len(amounts)))), D(0))
    assert by_transaction == by_sum


@given(per_transaction_charges(), amounts_, st.integers(0, 5))
def test_more_free_transactions_never_cost_more(c, amounts, extra):
    more = c.model_copy(update={"free_transactions": c.free_transactions + extra})
    assert (sum((s.amount for s in models.per_transaction(more, amounts)), D(0))
            <= sum((s.amount for s in models.per_transaction(c, amounts)), D(0)))
