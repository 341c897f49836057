"""Payment reminders: rules that fire N days before an open invoice is due and N days after, once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.core.alerts.errors import AlertRuleError, DuplicateThreshold, InvalidThreshold, UnreachableRule
from billing.core.alerts.events import payment_alerts
from billing.core.alerts.rules import PaymentDueRule, RuleSet, parse_rules
from billing.core.contracts import AlertEvent, AlertType, DueUnit, Invoice, InvoiceStatus, parse, to_bytes
from billing.core.meters import load_meters
from billing.core.pricing import builtin_catalog
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
    assert [r.id for r in ruleset.reminders()] == ["remind"] and [r.id for r in ruleset.of_meters()] == ["api"]
    assert [r.id for r in ruleset.watching("cus-1", "api_calls")] == ["api"]
