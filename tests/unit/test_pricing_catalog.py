"""Bad plan files give one clear, located ConfigError each; good files load exactly."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml

from billing.core.errors import ConfigError
from billing.core.pricing import builtin_catalog, currency, load_catalog
from billing.core.pricing.plans import CHARGE_MODELS


def plan_with(charge: dict, **plan) -> dict:
    return {"plans": [{"id": "pro", "name": "Pro", "currency": "USD", "charges": [charge], **plan}]}


def tiered(*tiers) -> dict:
    return {"id": "api", "model": "graduated", "meter": "api_calls", "tiers": list(tiers)}


def load_yaml(tmp_path, document, name="plans.yaml"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return load_catalog([path])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (plan_with({"id": "fee", "model": "flat", "amount": 1}, currency="XYZ"), "plan 'pro' > currency: unknown currency 'XYZ'"),
        (plan_with({"id": "fee", "model": "flat", "amount": 1}, interval="week"),
         "plan 'pro' > interval: unknown interval 'week'; use one of: month, year"),
        (plan_with({"id": "api", "model": "per_unit", "meter": "api_calls", "unit_price": 1, "pay_in_advance": True}),
         "plan 'pro' > charge 'api': usage charges are billed monthly in arrears; pay_in_advance is only for flat fees"),
        (plan_with({"id": "fee", "model": "flat", "amount": 1}, interval="year", minimum_commitment=10),
         "plan 'pro': minimum_commitment is a monthly minimum; a yearly plan cannot have one"),
        (
            plan_with(tiered({"up_to": 100, "unit_price": 1}, {"from": 150, "unit_price": 1})),
            "plan 'pro' > charge 'api' > tiers: gap: tier 2 starts at 150 but the previous tier ends at 100",
        ),
        (
            plan_with(tiered({"up_to": 100, "unit_price": 1}, {"from": 50, "unit_price": 1})),
            "plan 'pro' > charge 'api' > tiers: overlap: tier 2 starts at 50 but the previous tier ends at 100",
        ),
        (
            plan_with(tiered({"up_to": 100, "unit_price": 1}, {"up_to": 100, "unit_price": 1}, {"unit_price": 1})),
            "tiers: tier 2: up_to 100 must be greater than its start 100",
        ),
        (plan_with(tiered({"unit_price": 1}, {"unit_price": 2})), "tier 1 is unbounded (up_to: null) but tier 2 follows it"),
        (plan_with(tiered({"up_to": 10, "unit_price": 1})), "the last tier must be unbounded (up_to: null); it ends at 10"),
        (
            plan_with(tiered({"up_to": 10, "unit_price": -1}, {"unit_price": 1})),
            "plan 'pro' > charge 'api' > tier 1 > unit_price: Input should be greater than or equal to 0",
        ),
        (plan_with({"id": "fee", "model": "flat", "amount": "-5"}), "charge 'fee' > amount: Input should be greater than or equal to 0"),
        (plan_with({"id": "x", "model": "per_unit", "meter": "m", "unit_prise": 1}), "charge 'x' > unit_prise: unknown field (typo?)"),
        (plan_with({"id": "x", "model": "tiered", "meter": "m"}), "charge 'x': unknown charge model; use one of: flat, per_unit"),
        (
            plan_with({"id": "x", "model": "package", "meter": "m", "package_size": 0, "package_price": 1}),
            "package_size: Input should be greater than 0",
        ),
        (
            plan_with({"id": "x", "model": "percentage", "meter": "m", "rate": 3, "fixed_fee": "0.3"}),
            "charge 'x': fixed_fee needs count_meter",
        ),
        (
            plan_with({"id": "x", "model": "percentage", "meter": "m", "rate": 3, "min_amount": 9, "max_amount": 5}),
            "min_amount 9 is greater than max_amount 5",
        ),
        (plan_with({"id": "x", "model": "percentage", "meter": "m", "rate": 101}), "rate: Input should be less than or equal to 100"),
        (
            plan_with({"id": "x", "model": "percentage", "meter": "m", "rate": 3, "per_transaction_min_amount": 2,
                       "per_transaction_max_amount": 1}),
            "charge 'x': per_transaction_min_amount 2 is greater than per_transaction_max_amount 1",
        ),
        (
            plan_with({"id": "x", "model": "percentage", "meter": "m", "rate": 3, "free_transactions": -1}),
            "charge 'x': free_transactions -1 is negative",
        ),
        (
            {"plans": [{"id": "pro", "name": "Pro", "currency": "USD", "charges": [{"id": "a", "model": "flat", "amount": 1}] * 2}]},
            "plan 'pro' > charges: duplicate charge id 'a'",
        ),
        (
            {"coupons": [{"id": "c", "percent_off": 10, "amount_off": 5, "currency": "USD"}]},
            "coupon 'c': set exactly one of percent_off or amount_off",
        ),
        ({"coupons": [{"id": "c", "amount_off": 5}]}, "coupon 'c': amount_off needs a currency"),
        (
            {"tax_rules": [{"id": "t", "name": "VAT", "country": "Germany", "rate": 19}]},
            "tax rule 't' > country: String should match pattern",
        ),
        ({"plan": []}, ".yaml: plan: unknown field (typo?)"),
        (["not", "a", "mapping"], "expected a mapping with plans, coupons and/or tax_rules"),
        ("plans: [unclosed", "not valid YAML"),
    ],
)
def test_bad_catalog_files_give_located_errors(tmp_path, document, message):
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path, document)
    assert str(caught.value).startswith(str(tmp_path / "plans.yaml") + ": ")
    assert message in str(caught.value)


def test_every_problem_is_listed_in_one_message(tmp_path):
    document = plan_with(tiered({"up_to": 10, "unit_price": -1}, {"from": 20, "unit_price": 1}), currency="ABC")
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path, document)
    assert str(caught.value).count("plan 'pro' > ") == 2
    assert "currency: unknown currency 'ABC'" in str(caught.value)
    assert "tier 1 > unit_price" in str(caught.value)


def test_duplicate_ids_across_files_and_missing_files(tmp_path):
    plan = plan_with({"id": "fee", "model": "flat", "amount": 1})
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(plan))
    (tmp_path / "b.json").write_text(json.dumps(plan))
    with pytest.raises(ConfigError, match=r"b\.json: plan 'pro' is defined twice"):
        load_catalog([tmp_path])
    with pytest.raises(ConfigError, match="no such file or directory"):
        load_catalog([tmp_path / "missing.yaml"])


def test_numbers_are_read_as_exact_decimals(tmp_path):
    charge = {"id": "api", "model": "per_unit", "meter": "api_calls", "unit_price": 0.1}
    yaml_plan = load_yaml(tmp_path, "plans:\n  - {id: pro, name: Pro, currency: usd, "
                                    "charges: [{id: api, model: per_unit, meter: api_calls, unit_price: 0.1}]}\n").plan("pro")
    (tmp_path / "p.json").write_text(json.dumps(plan_with(charge)))
    json_plan = load_catalog([tmp_path / "p.json"]).plan("pro")
    assert yaml_plan.charges[0].unit_price == json_plan.charges[0].unit_price == Decimal("0.1")
    assert yaml_plan.currency == "USD"


def test_builtin_catalog_covers_every_charge_model_and_several_currencies():
    catalog = builtin_catalog()
    models = {charge.model for plan in catalog.plans.values() for charge in plan.charges}
    assert models == set(CHARGE_MODELS)
    assert {plan.currency for plan in catalog.plans.values()} >= {"USD", "EUR", "JPY", "KWD"}
    assert any(plan.minimum_commitment for plan in catalog.plans.values())
    assert any(charge.free_units for plan in catalog.plans.values() for charge in plan.charges if hasattr(charge, "free_units"))
    with pytest.raises(ConfigError, match="unknown plan 'nope'; known: business, business_aud"):
        catalog.plan("nope")


@pytest.mark.parametrize(("code", "quantum", "rounded"),
                         [("USD", "0.01", "2.35"), ("JPY", "1", "2"), ("KWD", "0.001", "2.345"), ("eur", "0.01", "2.35")])
def test_currency_minor_units_and_half_up(code, quantum, rounded):
    money = currency(code)
    assert money.quantum == Decimal(quantum)
    assert money.round(Decimal("2.345")) == Decimal(rounded)


def test_ties_round_half_up_not_to_even():
    usd = currency("USD")
    assert usd.round(Decimal("0.125")) == Decimal("0.13")  # banker's rounding would give 0.12
    assert usd.round(Decimal("-0.005")) == Decimal("-0.01")
    assert usd.format(Decimal("1234.5")) == "1,234.50 USD"


def test_unknown_currency():
    with pytest.raises(ConfigError, match="unknown currency 'XXX'"):
        currency("XXX")
