"""Taxes by country and region.

Every rule of the customer's country that has no region, plus every rule of the customer's
region, applies, each as its own tax line (so Canada's GST and a province's PST stack). Tax is
computed on the subtotal after discounts and rounded half-up per tax line. Tax-exempt customers
(e.g. reverse-charge B2B) get no tax lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.core.pricing.money import Currency
from billing.core.pricing.plans import TaxRule

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One tax on the invoice: ``round(taxable * rate / 100)``."""

    rule_id: str
    name: str
    rate: Decimal
    taxable: Decimal
    amount: Decimal


def applicable_rules(rules: Iterable[TaxRule], country: str | None, region: str | None) -> list[TaxRule]:
    """Rules for ``country`` without a region, plus those for ``country``'s ``region``."""
    if not country:
        return []
    country = country.upper()
    region_key = region.casefold() if region else None
    return [
        rule
        for rule in rules
        if rule.country == country and (rule.region is None or rule.region.casefold() == region_key)
    ]


def compute_taxes(rules: Iterable[TaxRule], taxable: Decimal, money: Currency) -> list[TaxLine]:
    """One rounded tax line per rule."""
    return [
        TaxLine(rule.id, rule.name, rule.rate, taxable, money.round(taxable * rule.rate / HUNDRED))
        for rule in rules
    ]
