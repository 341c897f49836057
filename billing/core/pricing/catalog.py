"""Load catalog files (YAML or JSON) into a :class:`PlanCatalog`, with located error messages.

Errors name the file, the plan/charge/coupon (by id when it has one) and the field, e.g.
``plans/bad.yaml: plan 'pro' > charge 'api_calls' > tiers: gap: tier 2 starts at 150 ...``.
Numbers are read as exact decimals, never through binary floats.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from billing.core.errors import ConfigError
from billing.core.pricing.money import currency
from billing.core.pricing.plans import (
    CHARGE_MODELS,
    Catalog,
    Coupon,
    CurrencyVariants,
    PercentageCharge,
    Plan,
    TaxRule,
)

BUILTIN_DIR = Path(str(resources.files("billing.core") / "plans"))
"""The example plans shipped as package data."""
_SECTION_NOUNS = {"plans": "plan", "charges": "charge", "coupons": "coupon", "tax_rules": "tax rule", "tiers": "tier",
                  "currency_variants": "currency variant"}


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML floats as Decimal."""


_DecimalLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node).replace("_", ""))
)


@dataclass
class PlanCatalog:
    """Plans, coupons and tax rules by id, merged from one or more files.

    Plans are also indexed by (product, currency): :meth:`plan_for` is how a subscription's plan id
    and a customer's currency select the plan to bill.
    """

    plans: dict[str, Plan] = field(default_factory=dict)
    coupons: dict[str, Coupon] = field(default_factory=dict)
    tax_rules: list[TaxRule] = field(default_factory=list)
    variants: list[tuple[CurrencyVariants, str]] = field(default_factory=list)
    offers: dict[tuple[str, str, str], Plan] = field(default_factory=dict)
    """``(product, currency, interval) -> plan``: how subscriptions find their plan."""

    def plan(self, plan_id: str) -> Plan:
        """The plan with ``plan_id``; unknown ids raise :class:`ConfigError`."""
        try:
            return self.plans[plan_id]
        except KeyError:
            raise ConfigError(f"unknown plan {plan_id!r}; known: {', '.join(sorted(self.plans)) or 'none'}") from None

    def plan_for(self, product: str, code: str, interval: str = "month") -> Plan:
        """The plan billing subscriptions to ``product`` in currency ``code`` every ``interval``.

        Exactly the plan with that product (its ``product``, or its id), currency and interval; there
        is no silent fallback to another currency or interval. Unknown currencies and missing prices
        raise :class:`ConfigError` naming what the catalog does offer.
        """
        found = self.offers.get((product, code, interval))
        if found is not None:
            return found
        money = currency(code)
        offered = [plan for plan in self.plans.values() if plan.product_id == product]
        if not offered:
            products = sorted({plan.product_id for plan in self.plans.values()})
            raise ConfigError(f"unknown plan {product!r}; the catalog sells: {', '.join(products) or 'nothing'}")
        for plan in offered:
            if plan.currency == money.code and plan.interval == interval:
                return plan
        prices = ", ".join(sorted(f"{plan.currency} per {plan.interval}" for plan in offered))
        raise ConfigError(
            f"plan {product!r} has no {money.code} price per {interval} (priced in {prices}); add a plan with "
            f"product: {product}, currency: {money.code} and interval: {interval}, or a currency_variants rate"
        )

    def add(self, catalog: Catalog, source: str) -> None:
        """Merge ``catalog`` (read from ``source``); duplicate ids are errors."""
        for plan in catalog.plans:
            self._add_plan(plan, source)
        for coupon in catalog.coupons:
            if coupon.id in self.coupons:
                raise ConfigError(f"{source}: coupon {coupon.id!r} is defined twice")
            self.coupons[coupon.id] = coupon
        known_rules = {rule.id for rule in self.tax_rules}
        for rule in catalog.tax_rules:
            if rule.id in known_rules:
                raise ConfigError(f"{source}: tax rule {rule.id!r} is defined twice")
            self.tax_rules.append(rule)
        self.variants.extend((variant, source) for variant in catalog.currency_variants)

    def derive_variants(self) -> None:
        """Add the plans the ``currency_variants`` entries derive (once every file is merged)."""
        pending, self.variants = self.variants, []
        for variant, source in pending:
            if variant.plan not in self.plans:
                raise ConfigError(f"{source}: currency variants of unknown plan {variant.plan!r}")
            base = self.plans[variant.plan]
            for code, rate in variant.rates.items():
                self._add_plan(base.converted(code, rate), source)

    def _add_plan(self, plan: Plan, source: str) -> None:
        if plan.id in self.plans:
            raise ConfigError(f"{source}: plan {plan.id!r} is defined twice")
        offer = (plan.product_id, plan.currency, plan.interval)
        twin = self.offers.get(offer)
        if twin is not None:
            raise ConfigError(f"{source}: plan {plan.id!r} prices {plan.product_id!r} in {plan.currency} per {plan.interval}, "
                              f"as {twin.id!r} does already")
        self.plans[plan.id] = plan
        self.offers[offer] = plan

    @property
    def transaction_meters(self) -> frozenset[str]:
        """Meters some charge prices per transaction: billing reads their single events, not only sums."""
        return frozenset(charge.meter for plan in self.plans.values() for charge in plan.charges
                         if isinstance(charge, PercentageCharge) and charge.per_transaction)

    def coupon(self, coupon_id: str) -> Coupon:
        """The coupon with ``coupon_id``; unknown ids raise :class:`ConfigError`."""
        try:
            return self.coupons[coupon_id]
        except KeyError:
            raise ConfigError(f"unknown coupon {coupon_id!r}; known: {', '.join(sorted(self.coupons)) or 'none'}") from None



def read_document(path: Path) -> Any:
    """Parse one YAML or JSON file (by extension) with exact decimals."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            return json.loads(text, parse_float=Decimal)
        return yaml.load(text, Loader=_DecimalLoader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}".replace("\n", " ")) from None


def parse_catalog(document: Any, source: str) -> Catalog:
    """Validate a parsed document; every problem is listed, located, in one :class:`ConfigError`."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with plans, coupons and/or tax_rules (and currency_variants) at the top")
    try:
        return Catalog.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, document) for error in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_catalog(paths: Iterable[Path]) -> PlanCatalog:
    """Load and merge catalog files; a directory means every ``*.yaml``/``*.yml``/``*.json`` in it."""
    catalog = PlanCatalog()
    for path in data_files(paths):
        catalog.add(parse_catalog(read_document(path), str(path)), str(path))
    catalog.derive_variants()
    return catalog


def builtin_catalog() -> PlanCatalog:
    """The example plans shipped in ``billing/core/plans/``."""
    return load_catalog([BUILTIN_DIR])


def data_files(paths: Iterable[Path]) -> list[Path]:
    """The files ``paths`` name; a directory means every ``*.yaml``/``*.yml``/``*.json`` in it."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml", ".json"}))
        elif path.exists():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return files


def _describe(error: dict, document: Any) -> str:
    """Turn one pydantic error into ``plan 'pro' > charge 'api' > tiers[1].unit_price: message``."""
    parts: list[str] = []
    node: Any = document
    parent_key = ""
    loc = error["loc"]
    for position, key in enumerate(loc):
        if isinstance(node, dict) and key in node:
            parent_key, node = key, node[key]
            if not isinstance(node, list) or position == len(loc) - 1:
                parts.append(str(key))
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            item = node[key]
            noun = _SECTION_NOUNS.get(parent_key, parent_key)
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                parts.append(f"{noun} {item['id']!r}")
            else:
                parts.append(f"{noun} {key + 1}")
            node = item
        elif isinstance(key, str) and key not in CHARGE_MODELS:
            parts.append(key)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (typo?)"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown charge model; use one of: {', '.join(CHARGE_MODELS)}"
    return f"{' > '.join(parts) or 'top level'}: {message}"

