"""Pure parts of coupons and prepaid credits held by customers: what one invoice gets, amounts to grant."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.core.errors import ConfigError
from billing.core.invoicing.grants import (
    Applied,
    Credit,
    Drawn,
    Held,
    coupon_for,
    credit_amount,
    credit_balance,
    credits_drawn,
    for_invoice,
)
from billing.core.invoicing.periods import invoice_id, parse_period
from billing.core.pricing import builtin_catalog, currency

CATALOG = builtin_catalog()
USD, JPY = currency("USD"), currency("JPY")
SEP, OCT, NOV, DEC = (parse_period(f"2026-{month}") for month in ("09", "10", "11", "12"))


def coupon(period, code: str) -> Applied:
    return Applied(invoice_id("a", period), period.start, "coupon", code, "USD", Decimal("10.00"))


def credit(period, amount: str, code: str = "USD", frozen: bool = False) -> Applied:
    return Applied(invoice_id("a", period), period.start, "credit", None, code, Decimal(amount), frozen)


def credits(*amounts: tuple[str, str], revoked: tuple[str, ...] = ()) -> Held:
    """Held credits ``(currency, amount)`` named g1, g2, ... oldest first; ``revoked``: their names."""
    return Held((), tuple(Credit(f"g{n}", code, Decimal(amount), f"g{n}" in revoked) for n, (code, amount) in enumerate(amounts, 1)))


def used(grants) -> list[tuple[str, int, bool]]:
    return [(g.coupon.id, g.periods_used, g.active) for g in grants.coupons]


def test_coupons_keep_redemption_order_and_count_the_earlier_invoices_but_the_period_own():
    held = Held(("partner10", "launch20"), {})
    applied = [coupon(SEP, "launch20"), coupon(OCT, "launch20"), coupon(OCT, "partner10")]
    assert used(for_invoice("a", "USD", held, applied, OCT, CATALOG)) == [("partner10", 0, True), ("launch20", 1, True)]
    assert used(for_invoice("a", "USD", held, applied, NOV, CATALOG)) == [("partner10", 1, True), ("launch20", 2, True)]
    assert used(for_invoice("a", "USD", held, applied, SEP, CATALOG)) == [("partner10", 0, True), ("launch20", 0, True)]
    assert used(for_invoice("a", "USD", held, applied, SEP, CATALOG)) == used(for_invoice("a", "USD", held, applied[1:], SEP, CATALOG))


def test_a_coupon_carried_by_its_whole_duration_elsewhere_is_used_up_even_for_an_earlier_period():
    held = Held(("launch20",))  # three periods
    later = [coupon(OCT, "launch20"), coupon(NOV, "launch20"), coupon(DEC, "launch20")]
    assert used(for_invoice("a", "USD", held, later, SEP, CATALOG)) == [("launch20", 3, False)]
    assert used(for_invoice("a", "USD", held, later, OCT, CATALOG)) == [("launch20", 0, True)]  # a re-run keeps its own


def test_credit_balance_is_granted_minus_what_other_invoices_consumed_in_that_currency():
    held = credits(("USD", "60"), ("EUR", "7"), ("USD", "40"))
    applied = [credit(SEP, "30.00"), credit(OCT, "45.50"), credit(DEC, "5", "EUR")]
    assert for_invoice("a", "USD", held, applied, OCT, CATALOG).credit_balance == Decimal("70.00")
    assert for_invoice("a", "USD", held, applied, NOV, CATALOG).credit_balance == Decimal("24.50")
    assert credit_balance(held, applied, "EUR") == 2
    assert credit_balance(held, applied, "GBP") == 0
    assert credit_balance(credits(("USD", "10")), [credit(SEP, "25")], "USD") == 0  # never negative


def test_credits_are_drawn_oldest_first_finalized_invoices_before_drafts():
    held = credits(("USD", "50"), ("USD", "30"), ("USD", "20"))
    applied = [credit(OCT, "15"), credit(SEP, "40", frozen=True)]
    assert credits_drawn(held, applied, "USD") == {"g1": Drawn(Decimal(50), Decimal(0)), "g2": Drawn(Decimal(5), Decimal(25)),
                                                   "g3": Drawn(Decimal(0), Decimal(20))}


def test_a_revoked_credit_keeps_what_finalized_invoices_took_and_its_remainder_is_withdrawn():
    applied = [credit(SEP, "30", frozen=True), credit(OCT, "45")]
    first_revoked = credits(("USD", "100"), ("USD", "50"), revoked=("g1",))
    assert credits_drawn(first_revoked, applied, "USD") == {"g1": Drawn(Decimal(30), Decimal(0)),
                                                            "g2": Drawn(Decimal(45), Decimal(5))}
    assert for_invoice("a", "USD", first_revoked, applied, OCT, CATALOG).credit_balance == 50  # the October draft re-run
    second_revoked = credits(("USD", "100"), ("USD", "50"), revoked=("g2",))
    assert credit_balance(second_revoked, applied, "USD") == 25
    assert credit_balance(first_revoked, [credit(SEP, "30")], "USD") == 20  # a draft keeps nothing of a revoked grant


MONTHS = [parse_period(f"2026-{month:02d}") for month in range(1, 13)]


@given(st.lists(st.tuples(st.sampled_from(MONTHS), st.decimals(min_value=0, max_value=1000, places=2)), max_size=12),
       st.decimals(min_value=0, max_value=5000, places=2))
def test_runs_in_any_order_never_consume_more_than_granted_nor_a_coupon_beyond_its_duration(runs, granted):
    """Each run prices its period with the grants the other invoices leave: re-runs and out-of-order months
    never consume more credit than granted, nor carry ``launch20`` on more than three invoices."""
    held = Held(("launch20",), (Credit("g1", "USD", granted),))
    applied: list[Applied] = []
    for period, total in runs:
        grants = for_invoice("a", "USD", held, applied, period, CATALOG)
        spent = max(Decimal(0), min(grants.credit_balance, total))
        applied = [a for a in applied if a.invoice_id != invoice_id("a", period)] + [credit(period, str(spent))]
        applied += [coupon(period, "launch20")] if grants.coupons[0].active else []
    assert sum(a.amount for a in applied if a.kind == "credit") <= granted
    assert sum(a.kind == "coupon" for a in applied) <= 3
    if len({period for period, _ in runs}) >= 3 and [p.start for p, _ in runs] == sorted(p.start for p, _ in runs):
        assert sum(a.kind == "coupon" for a in applied) == 3


def test_coupons_the_catalog_lacks_or_in_another_currency_are_errors():
    with pytest.raises(ConfigError, match="customer a: unknown coupon 'nope'; known: launch20, partner10, welcome50"):
        coupon_for("a", "USD", "nope", CATALOG)
    with pytest.raises(ConfigError, match="customer a: coupon 'welcome50' takes USD off but the customer is billed in EUR"):
        for_invoice("a", "EUR", Held(("welcome50",)), [], SEP, CATALOG)
    assert coupon_for("a", "USD", "welcome50", CATALOG).amount_off == 50


def test_credit_amounts_are_positive_with_the_currency_decimals():
    assert credit_amount("100", USD) == Decimal("100.00") and str(credit_amount(" 12.5 ", USD)) == "12.50"
    assert credit_amount(Decimal("1500"), JPY) == 1500
    for bad, message in (("-5", "must be positive"), ("0", "must be positive"), ("NaN", "must be positive"),
                         ("Infinity", "must be positive"), ("ten", "'ten' is not an amount"),
                         ("1.005", "more decimals than USD allows \\(2\\)"), ("1e18", "must be below")):
        with pytest.raises(ConfigError, match=message):
            credit_amount(bad, USD)
    with pytest.raises(ConfigError, match="more decimals than JPY allows \\(0\\)"):
        credit_amount("10.5", JPY)
