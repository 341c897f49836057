"""Alert rules of one customer, kept in the warehouse and managed through the API and CLI.

A stored rule's document is a rule of a rules file (:mod:`billing.core.alerts.rules`, the one
definition) with ``customer_id`` instead of ``customers``: it watches exactly that customer. Its
``id`` is optional on create (default: ``rule-`` and 16 random hex digits) and unique among the
stored rules and the configured rules files.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from billing.core.alerts.errors import AlertRuleError, CustomerChange
from billing.core.alerts.rules import AnyRule, parse_rule
from billing.core.contracts import Id as CustomerId
from billing.core.contracts import clip
from billing.core.meters import MeterSet
from billing.core.pricing.catalog import PlanCatalog

_CUSTOMER_ID: TypeAdapter[str] = TypeAdapter(CustomerId)


@dataclass(frozen=True)
class StoredRule:
    """A customer's rule and its bookkeeping; ``version`` orders its changes (microseconds)."""

    rule: AnyRule
    customer_id: str
    created_at: datetime
    updated_at: datetime
    updated_by: str
    version: int

    @property
    def id(self) -> str:
        """The rule id."""
        return self.rule.id

    def view(self) -> dict[str, Any]:
        """The rule as JSON values: what create and update take (``customer_id`` instead of ``customers``, defaults
        filled in) and when and by whom it was created and last changed."""
        return {"id": self.rule.id, "customer_id": self.customer_id, **definition(self.rule),
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
                "updated_by": self.updated_by}


def definition(rule: AnyRule) -> dict[str, Any]:
    """The fields of ``rule`` as JSON values, without ``id`` and ``customers`` (stored beside them)."""
    return rule.model_dump(mode="json", exclude={"id", "customers"})


def new_rule_id() -> str:
    """A fresh id for a rule created without one."""
    return f"rule-{secrets.token_hex(8)}"


def customer_rule(document: Any, source: str, *, meters: MeterSet, catalog: PlanCatalog,
                  rule_id: str | None = None) -> tuple[str, AnyRule]:
    """``(customer id, rule)`` of a stored rule's document, validated as a rules file's rule watching that customer.

    ``rule_id`` is the id the rule must have (an update names it in its path; the document may repeat it);
    without one the document's ``id`` is used, or a new one.
    """
    if not isinstance(document, dict):
        raise AlertRuleError(f"{source}: expected a JSON object of the rule's fields and its customer_id, "
                             f"got {type(document).__name__}")
    fields = dict(document)
    if "customers" in fields:
        raise AlertRuleError(f"{source}: customers: a stored rule watches the one customer of customer_id; "
                             "customers lists belong in rules files")
    if "customer_id" not in fields:
        raise AlertRuleError(f"{source}: customer_id: Field required (the customer the rule watches)")
    try:
        customer_id = _CUSTOMER_ID.validate_python(fields.pop("customer_id"))
    except ValidationError as exc:
        raise AlertRuleError(f"{source}: customer_id: {exc.errors()[0]['msg']}") from None
    if rule_id is not None and fields.setdefault("id", rule_id) != rule_id:
        raise AlertRuleError(f"{source}: id: {clip(fields['id'])} differs from the rule id {rule_id!r} of the path; "
                             "leave id out or repeat it")
    fields.setdefault("id", new_rule_id())
    return customer_id, parse_rule({**fields, "customers": [customer_id]}, source, meters=meters, catalog=catalog)


def same_customer(rule_id: str, stored: str, given: str) -> None:
    """:class:`CustomerChange` unless an update of rule ``rule_id`` (of customer ``stored``) names that customer."""
    if given != stored:
        raise CustomerChange(f"rule {rule_id!r} watches customer {stored!r}; its customer cannot change to {given!r}: "
                             "delete it and create a rule for that customer")
