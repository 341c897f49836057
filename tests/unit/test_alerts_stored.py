"""Stored (per-customer) alert rules: validated by the one rule model, watching exactly their customer; the
stored document reads back as the same rule; every kind of bad document raises its own error."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.core.alerts.errors import AlertRuleError, CustomerChange, DuplicateThreshold, UnknownMeter, UnreachableRule
from billing.core.alerts.rules import UsageThresholdRule
from billing.core.alerts.stored import StoredRule, customer_rule, same_customer
from billing.core.meters import load_meters
from billing.core.pricing import builtin_catalog

METERS, CATALOG = load_meters(None), builtin_catalog()
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def parse(document, rule_id=None):
    return customer_rule(document, "rule", meters=METERS, catalog=CATALOG, rule_id=rule_id)


def test_a_stored_rule_watches_its_customer_only_and_gets_an_id():
    customer, rule = parse({"customer_id": "cus-1", "kind": "usage_threshold", "meter": "api_calls", "thresholds": [80, 50]})
    assert customer == "cus-1" and isinstance(rule, UsageThresholdRule)
    assert rule.customers == ("cus-1",) and rule.watches("cus-1") and not rule.watches("cus-2")
    assert rule.thresholds == (50, 80) and rule.id.startswith("rule-") and len(rule.id) == 21
    assert parse({"customer_id": "cus-1", "kind": "payment_due", "days_before": [3]}, rule_id="r1")[1].id == "r1"


@given(st.lists(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10) ** 12, places=3), min_size=1, max_size=8,
                unique=True))
def test_the_stored_document_reads_back_as_the_same_rule(thresholds):
    customer, rule = parse({"customer_id": "cus-1", "id": "r", "kind": "spend_threshold", "thresholds": thresholds})
    view = StoredRule(rule, customer, T0, T0, "cli", 1).view()
    fields = {name: value for name, value in view.items() if name not in ("created_at", "updated_at", "updated_by")}
    assert parse(fields) == (customer, rule)


@pytest.mark.parametrize(("document", "error", "message"), [
    ([1], AlertRuleError, "expected a JSON object"),
    ({"kind": "payment_due", "days_before": [1]}, AlertRuleError, "customer_id: Field required"),
    ({"customer_id": "c", "customers": ["c"], "kind": "payment_due", "days_before": [1]}, AlertRuleError, "customers lists"),
    ({"customer_id": "bad id", "kind": "payment_due", "days_before": [1]}, AlertRuleError, "customer_id: String should match"),
    ({"customer_id": "c", "kind": "usage_threshold", "meter": "gpu", "thresholds": [1]}, UnknownMeter, "unknown meter 'gpu'"),
    ({"customer_id": "c", "kind": "credit_balance", "below": [5, 5]}, DuplicateThreshold, "listed twice"),
    ({"customer_id": "c", "kind": "payment_due"}, UnreachableRule, "never fires"),
    ({"customer_id": "c", "kind": "payment_due", "days_before": [1], "x" * 5000: 1}, AlertRuleError, "characters): unknown field"),
    ({"customer_id": "c", "id": "other", "kind": "payment_due", "days_before": [1]}, AlertRuleError, "differs from the rule id"),
])
def test_each_bad_document_raises_its_own_error(document, error, message):
    with pytest.raises(error) as raised:
        parse(document, rule_id="r1")
    assert message in str(raised.value) and len(str(raised.value)) < 1000


def test_many_problems_are_counted_not_all_listed():
    with pytest.raises(AlertRuleError, match=r"and 80 more problem\(s\)$"):
        parse({"customer_id": "c", "kind": "payment_due", "days_before": [1], **{f"f{i}": i for i in range(100)}})


def test_an_update_keeps_the_customer():
    same_customer("r", "c", "c")
    with pytest.raises(CustomerChange, match="rule 'r' watches customer 'c'; its customer cannot change to 'd'"):
        same_customer("r", "c", "d")
