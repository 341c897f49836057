"""Currency variants: one product sold in many currencies, and how a subscription picks its plan."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.core.errors import ConfigError
from billing.core.pricing import builtin_catalog, currency, load_catalog
from billing.core.pricing.money import MINOR_UNITS
from producers.world import MARKETS, PLANS

CATALOG = builtin_catalog()


def test_every_simulated_plan_and_currency_has_a_price():
    for product in PLANS:
        for market in MARKETS:
            for interval in ("month", "year"):
                plan = CATALOG.plan_for(product, market.currency, interval)
                assert (plan.product_id, plan.currency, plan.interval) == (product, market.currency, interval)


def test_derived_variant_converts_every_price_exactly_and_keeps_quantities():
    base, jpy = CATALOG.plan("growth"), CATALOG.plan_for("growth", "JPY")
    assert jpy.id == "growth_jpy" and jpy.interval == base.interval
    assert jpy.minimum_commitment == base.minimum_commitment * 150
    fee, api = jpy.charges[0], jpy.charges[1]
    assert fee.amount == Decimal("14850.00")
    assert [t.unit_price for t in api.tiers] == [t.unit_price * 150 for t in base.charges[1].tiers]
    assert [t.flat_fee for t in api.tiers] == [Decimal(0), Decimal("7500.00"), Decimal("15000.00")]
    assert [t.up_to for t in api.tiers] == [t.up_to for t in base.charges[1].tiers]


def test_hand_written_price_list_wins_over_conversion():
    assert CATALOG.plan_for("business", "EUR").id == "business_eur"
    assert CATALOG.plan_for("enterprise", "JPY").id == "enterprise_jpy"
    assert CATALOG.plan_for("growth", "kwd").id == "growth_kwd"


@pytest.mark.parametrize(("product", "code", "message"), [
    ("business", "KWD", "plan 'business' has no KWD price per month (priced in AUD per month, AUD per year, BRL"),
    ("platinum", "USD", "unknown plan 'platinum'; the catalog sells: business, enterprise, growth"),
    ("starter", "XXX", "unknown currency 'XXX'"),
])
def test_missing_prices_are_clear_errors(product, code, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        CATALOG.plan_for(product, code)


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


PLAN = "plans:\n  - {id: pro, name: Pro, currency: USD, charges: [{id: fee, model: flat, amount: 10}]}\n"


def test_variant_errors_are_located(tmp_path):
    with pytest.raises(ConfigError, match="currency variants of unknown plan 'nope'"):
        load_catalog([_write(tmp_path, PLAN + "currency_variants:\n  - {plan: nope, rates: {EUR: 1}}\n")])
    with pytest.raises(ConfigError, match="currency variant 1 > rates: unknown currency 'ZZZ'"):
        load_catalog([_write(tmp_path, PLAN + "currency_variants:\n  - {plan: pro, rates: {ZZZ: 1}}\n")])
    twin = PLAN + "  - {id: pro_eu, product: pro, name: Pro, currency: EUR, charges: [{id: fee, model: flat, amount: 9}]}\n"
    with pytest.raises(ConfigError, match="plan 'pro_eur' prices 'pro' in EUR per month, as 'pro_eu' does already"):
        load_catalog([_write(tmp_path, twin + "currency_variants:\n  - {plan: pro, rates: {EUR: 0.9}}\n")])


def test_currencies_come_from_the_maintained_cldr_data():
    assert (currency("NGN").minor_units, currency("KWD").minor_units, currency("JPY").minor_units) == (2, 3, 0)
    assert len(MINOR_UNITS) > 150 and {"USD", "EUR", "INR", "BRL", "CLP", "UGX"} <= set(MINOR_UNITS)
    for retired_or_not_money in ("DEM", "XAU", "XXX", "XTS"):
        with pytest.raises(ConfigError, match=f"unknown currency '{retired_or_not_money}'"):
            currency(retired_or_not_money)
