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
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from billing.errors import ConfigError
from billing.pricing.plans import CHARGE_MODELS, Catalog, Coupon, Plan, TaxRule

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "plans"
_SECTION_NOUNS = {"plans": "plan", "charges": "charge", "coupons": "coupon", "tax_rules": "tax rule", "tiers": "tier"}


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML floats as Decimal."""


_DecimalLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node).replace("_", ""))
)


@dataclass
class PlanCatalog:
    """Plans, coupons and tax rules by id, merged from one or more files."""

    plans: dict[str, Plan] = field(default_factory=dict)
    coupons: dict[str, Coupon] = field(default_factory=dict)
    tax_rules: list[TaxRule] = field(default_factory=list)

    def plan(self, plan_id: str) -> Plan:
        """The plan with ``plan_id``; unknown ids raise :class:`ConfigError`."""
        try:
            return self.plans[plan_id]
        except KeyError:
            raise ConfigError(f"unknown plan {plan_id!r}; known: {', '.join(sorted(self.plans)) or 'none'}") from None

    def coupon(self, coupon_id: str) -> Coupon:
        """The coupon with ``coupon_id``; unknown ids raise :class:`ConfigError`."""
        try:
            return self.coupons[coupon_id]
        except KeyError:
            raise ConfigError(f"unknown coupon {coupon_id!r}; known: {', '.join(sorted(self.coupons)) or 'none'}") from None

    def add(self, catalog: Catalog, source: str) -> None:
        """Merge ``catalog`` (read from ``source``); duplicate ids are errors."""
        for kind, items, target in (("plan", catalog.plans, self.plans), ("coupon", catalog.coupons, self.coupons)):
            for item in items:
                if item.id in target:
                    raise ConfigError(f"{source}: {kind} {item.id!r} is defined twice")
                target[item.id] = item
        known_rules = {rule.id for rule in self.tax_rules}
        for rule in catalog.tax_rules:
            if rule.id in known_rules:
                raise ConfigError(f"{source}: tax rule {rule.id!r} is defined twice")
            self.tax_rules.append(rule)


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
        raise ConfigError(f"{source}: expected a mapping with plans, coupons and/or tax_rules at the top")
    try:
        return Catalog.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, document) for error in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_catalog(paths: Iterable[Path]) -> PlanCatalog:
    """Load and merge catalog files; a directory means every ``*.yaml``/``*.yml``/``*.json`` in it."""
    catalog = PlanCatalog()
    for path in _expand(paths):
        catalog.add(parse_catalog(read_document(path), str(path)), str(path))
    return catalog


def builtin_catalog() -> PlanCatalog:
    """The example plans shipped in ``billing/plans/``."""
    return load_catalog([BUILTIN_DIR])


def configured_catalog() -> PlanCatalog:
    """The catalog at ``BILLING_PLANS_DIR``, or the shipped example plans when it is unset."""
    from billing.settings import get_settings

    path = get_settings().plans_dir
    return load_catalog([path]) if path is not None else builtin_catalog()


def _expand(paths: Iterable[Path]) -> list[Path]:
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

