"""Payment reminders (N days before an open invoice is due, N days after), low prepaid credit
balances and spend thresholds: rules of invoice, credit and spend state, each threshold fired once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.core.alerts.errors import AlertRuleError, DuplicateThreshold, InvalidThreshold, UnreachableRule
from billing.core.alerts.events import credit_alerts, payment_alerts, spend_alerts
from billing.core.alerts.rules import CreditBalanceRule, PaymentDueRule, RuleSet, SpendThresholdRule, parse_rules
from billing.core.contracts import AlertEvent, AlertType, DueUnit, Invoice, InvoiceStatus, SpendUnit, parse, to_bytes
from billing.core.meters import load_meters
from billing.core.pricing import builtin_catalog
from billing.core.pricing.proration import month_period
from billing.core.webhooks.events import EventType, webhook_event
from billing.warehouse import facts

DUE = datetime(2026, 12, 15, tzinfo=UTC)
DAY = timedelta(days=1)


def rules(*documents: dict) -> list:
    return parse_rules({"rules": list(documents)}, "test", meters=load_meters(None), catalog=builtin_catalog())


def reminder(**fields) -> dict:
    return {"id": "remind", "kind": "payment_due", "days_before": [7, 1], "days_overdue": [7, 30], **fields}


RULE: PaymentDueRule = rules(reminder())[0]


def invoice(status: InvoiceStatus = InvoiceStatus.FINALIZED, **fields) -> Invoice:
    times = {"issued_at": DUE - 30 * DAY, "due_at": DUE, "number": "INV-000001"}
    if status is InvoiceStatus.PAID:
        times["paid_at"] = DUE - 2 * DAY
    fields = {"id": "inv-1", "customer_id": "cus-1", "period_start": datetime(2026, 11, 1, tzinfo=UTC),
              "period_end": datetime(2026, 12, 1, tzinfo=UTC), "currency": "EUR", "line_items": (), "subtotal": Decimal(0),
              "total": Decimal(0), "status": status, "event_time": DUE - 30 * DAY, **times, **fields}
    return Invoice(**fields)


def fired(now: datetime, open_invoice: Invoice | None = None) -> list[tuple[AlertType, Decimal]]:
    return [(alert.type, alert.data.threshold) for alert in payment_alerts(RULE, open_invoice or invoice(), now)]


def test_reminders_before_the_due_date_and_after_it():
    assert fired(DUE - 8 * DAY) == []
    assert fired(DUE - 7 * DAY) == [(AlertType.PAYMENT_DUE, 7)]
    assert fired(DUE - DAY) == [(AlertType.PAYMENT_DUE, 7), (AlertType.PAYMENT_DUE, 1)]
    assert fired(DUE) == [], "once due, a before-due reminder is stale and an overdue one not reached"
    assert fired(DUE + 7 * DAY) == [(AlertType.PAYMENT_OVERDUE, 7)]
    assert fired(DUE + 40 * DAY) == [(AlertType.PAYMENT_OVERDUE, 7), (AlertType.PAYMENT_OVERDUE, 30)]


def test_paid_void_and_other_customers_invoices_get_no_reminder():
    assert fired(DUE + 40 * DAY, invoice(InvoiceStatus.PAID)) == []
    other = rules(reminder(customers=["cus-2"]))[0]
    assert payment_alerts(other, invoice(), DUE + 40 * DAY) == []


def test_each_reminder_has_one_id_whenever_it_is_seen():
    early, late = payment_alerts(RULE, invoice(), DUE - DAY), payment_alerts(RULE, invoice(), DUE - 2 * 3600 * timedelta(seconds=1))
    assert [a.id for a in early] == [a.id for a in late] and [a.time for a in early] == [DUE - 7 * DAY, DUE - DAY]
    both_sevens = rules(reminder(days_before=[7], days_overdue=[7]))[0]
    ids = {a.id for a in payment_alerts(both_sevens, invoice(), DUE - DAY) + payment_alerts(both_sevens, invoice(), DUE + 8 * DAY)}
    assert len(ids) == 2, "7 days before and 7 days overdue are two alerts"
    rebilled = payment_alerts(RULE, invoice(id="inv-2"), DUE - DAY)
    assert not {a.id for a in rebilled} & {a.id for a in early}, "another invoice of the period has its own reminders"


def test_a_reminder_is_a_valid_event_row_and_webhook():
    alert = payment_alerts(RULE, invoice(), DUE + 8 * DAY)[0]
    data = alert.data
    assert data.meter is None and data.invoice_id == "inv-1" and data.currency == "EUR" and data.due_at == DUE
    assert data.unit is DueUnit.DAYS_OVERDUE and data.threshold == 7
    assert parse(AlertEvent, to_bytes(alert)) == alert
    row = facts.alert_rows(alert)["alerts"][0]
    assert dict(zip(facts.COLUMNS["alerts"], row, strict=True))["invoice_id"] == "inv-1"
    assert webhook_event(alert).type is EventType.PAYMENT_OVERDUE


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"days_before": [], "days_overdue": []}, UnreachableRule, "never fires"),
    ({"days_before": ["seven"]}, InvalidThreshold, "is not a number"),
    ({"days_overdue": [1.5]}, InvalidThreshold, "not a whole number of days"),
    ({"days_overdue": [0]}, InvalidThreshold, "not positive"),
    ({"days_before": [3, 3]}, DuplicateThreshold, "listed twice"),
    ({"meter": "api_calls"}, AlertRuleError, "unknown field"),
])
def test_bad_reminder_rules_are_one_clear_error_each(fields, error, message):
    with pytest.raises(error, match=message):
        rules(reminder(**fields))


def test_reminders_are_not_meter_rules():
    ruleset = RuleSet()
    ruleset.add(rules(reminder(), {"id": "api", "kind": "usage_threshold", "meter": "api_calls", "thresholds": [5]}), "test")
    assert [r.id for r in ruleset.of_kind(PaymentDueRule)] == ["remind"] and [r.id for r in ruleset.of_meters()] == ["api"]
    assert [r.id for r in ruleset.watching("cus-1", "api_calls")] == ["api"]


def test_a_low_credit_balance_fires_each_amount_it_is_below_once_a_month():
    rule: CreditBalanceRule = rules({"id": "low", "kind": "credit_balance", "below": [100, "20.5"]})[0]
    month = month_period(DUE)
    assert credit_alerts(rule, "cus-1", "EUR", Decimal(100), month, time=DUE) == []
    low = credit_alerts(rule, "cus-1", "EUR", Decimal(20), month, time=DUE)
    assert [(a.type, a.data.threshold, a.data.value, a.data.currency) for a in low] == [
        (AlertType.CREDIT_LOW, Decimal("20.5"), 20, "EUR"), (AlertType.CREDIT_LOW, 100, 20, "EUR")]
    later = credit_alerts(rule, "cus-1", "EUR", Decimal(3), month, time=DUE + DAY)
    assert [a.id for a in later] == [a.id for a in low], "once per month: the same ids whenever seen"
    assert not {a.id for a in credit_alerts(rule, "cus-1", "EUR", Decimal(3), month_period(DUE + 30 * DAY), time=DUE)} & {
        a.id for a in low}
    assert not {a.id for a in credit_alerts(rule, "cus-1", "USD", Decimal(3), month, time=DUE)} & {a.id for a in low}
    assert parse(AlertEvent, to_bytes(low[0])) == low[0] and webhook_event(low[0]).type is EventType.CREDIT_LOW


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"below": []}, UnreachableRule, "never fires"),
    ({"below": ["lots"]}, InvalidThreshold, "is not a number"),
    ({"below": [-5]}, InvalidThreshold, "not positive"),
    ({"below": [10, 10.0]}, DuplicateThreshold, "listed twice"),
])
def test_bad_credit_rules_are_one_clear_error_each(fields, error, message):
    with pytest.raises(error, match=message):
        rules({"id": "low", "kind": "credit_balance", **fields})


def test_spend_thresholds_fire_once_per_period_in_money_or_percent_of_the_minimum():
    amounts: SpendThresholdRule = rules({"id": "spend", "kind": "spend_threshold", "thresholds": [100, 500]})[0]
    month = month_period(DUE)
    fired_at = spend_alerts(amounts, "cus-1", month, Decimal("120.50"), "EUR", minimum=None, time=DUE)
    assert [(a.type, a.data.threshold, a.data.limit, a.data.value, a.data.unit) for a in fired_at] == [
        (AlertType.SPEND_THRESHOLD, 100, 100, Decimal("120.50"), SpendUnit.AMOUNT)]
    again = spend_alerts(amounts, "cus-1", month, Decimal(600), "EUR", minimum=None, time=DUE + DAY)
    assert fired_at[0].id in {a.id for a in again} and len(again) == 2, "each threshold keeps its id in the period"
    percent = rules({"id": "commit", "kind": "spend_threshold", "unit": "percent_of_minimum", "thresholds": [80, 100]})[0]
    assert [a.data.limit for a in spend_alerts(percent, "cus-1", month, Decimal(200), "EUR", minimum=Decimal(250),
                                               time=DUE)] == [200]
    assert spend_alerts(percent, "cus-1", month, Decimal(10**6), "EUR", minimum=None, time=DUE) == [], "no minimum: not watched"
    assert webhook_event(fired_at[0]).type is EventType.SPEND_THRESHOLD and parse(AlertEvent, to_bytes(fired_at[0])) == fired_at[0]


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"thresholds": []}, UnreachableRule, "never fires"),
    ({"thresholds": ["a lot"]}, InvalidThreshold, "is not a number"),
    ({"thresholds": [5, 5]}, DuplicateThreshold, "repeats"),
    ({"thresholds": [5], "unit": "dollars"}, AlertRuleError, "Input should be"),
])
def test_bad_spend_rules_are_one_clear_error_each(fields, error, message):
    with pytest.raises(error, match=message):
        rules({"id": "spend", "kind": "spend_threshold", **fields})


def test_a_percent_of_a_minimum_no_plan_has_can_never_fire():
    catalog = builtin_catalog()
    bare = type(catalog)({plan_id: plan.model_copy(update={"minimum_commitment": None}) for plan_id, plan in catalog.plans.items()})
    with pytest.raises(UnreachableRule, match="no plan has a minimum_commitment"):
        parse_rules({"rules": [{"id": "c", "kind": "spend_threshold", "unit": "percent_of_minimum", "thresholds": [80]}]},
                    "test", meters=load_meters(None), catalog=bare)
