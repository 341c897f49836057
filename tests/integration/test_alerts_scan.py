"""`billing alerts scan` against the real warehouse and broker: hourly rollups of four weeks, one
spike, one drop to zero and one threshold crossing are found (and nothing else), published on the
alerts topic and stored once; a second scan adds nothing; bad rules write nothing. Payment reminders
come from the stored invoices' state, once each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.cli.app import console
from billing.core.contracts import (
    AlertType,
    AnomalyDirection,
    BillingInterval,
    Customer,
    DueUnit,
    Invoice,
    InvoiceStatus,
    Segment,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
    parse_topic,
)
from billing.core.pricing.engine import TRUE_UP
from billing.core.pricing.proration import month_period
from billing.invoicing.run import Invoicing
from billing.invoicing.store import Store
from billing.settings import Settings, get_settings
from billing.warehouse import facts
from billing.warehouse.client import client
from tests.integration.api_fixtures import TopicTail, insert, scratch_settings
from tests.integration.cli_runner import billing_in_process

START = datetime(2026, 11, 2, tzinfo=UTC)
HOURS = 4 * 7 * 24
SPIKE = ("cus-spike", datetime(2026, 11, 25, 14, tzinfo=UTC))
DROP = ("cus-drop", datetime(2026, 11, 27, 3, tzinfo=UTC))
STEADY = "cus-steady"
RULES = """
rules:
  - {id: api-anomaly, kind: usage_anomaly, meter: api_calls, weeks: 3, min_history: 3}
  - {id: api-allowance, kind: usage_threshold, meter: api_calls, unit: percent, thresholds: [50, 90]}
"""


def usage(customer: str, hour: datetime) -> Decimal:
    """A daily profile, a few calls of week-to-week noise, and the injected spike and drop."""
    index = int((hour - START) / timedelta(hours=1))
    value = Decimal(100 + 10 * (hour.hour % 5) + (index // 168 * 5 + index) % 7 - 3)
    if (customer, hour) == SPIKE:
        return value * 5
    return Decimal(0) if (customer, hour) == DROP else value


def rollups() -> list[list]:
    """Hour rows of api_calls; the spiking customer's usage is split over two dimension groups."""
    rows = []
    for index in range(HOURS):
        hour = START + timedelta(hours=index)
        for customer in (SPIKE[0], DROP[0], STEADY):
            value = usage(customer, hour)
            parts = (value / 2, value / 2) if customer == SPIKE[0] else (value,)
            for region, part in zip(("eu", "us"), parts, strict=False):
                rows.append([customer, "api_calls", 3600, hour, f"region={region}", {"region": region}, "SUM", part, 1, 1, 1, hour])
    return rows


@pytest.fixture(scope="module")
def world(settings, warehouse, kafka, tmp_path_factory) -> Iterator[Settings]:
    """A scratch database and topics with the rollups, and the steady customer on the starter plan
    (100,000 included calls); the `billing` CLI runs in-process against them."""
    with scratch_settings(settings, tmp_path_factory) as scoped, pytest.MonkeyPatch.context() as patch:
        client(scoped).insert(f"{scoped.clickhouse_database}.usage_rollups", rollups(), column_names=facts.COLUMNS["usage_rollups"])
        joined = START - timedelta(days=30)
        insert(scoped, Customer(id=STEADY, company_name="Steady", email="s@steady.io", country="US", region="NA",
                                currency="USD", segment=Segment.SMB, signup_time=joined, updated_at=joined),
               SubscriptionEvent(event_id="se-1", subscription_id="sub-1", customer_id=STEADY, type=SubscriptionEventType.CREATED,
                                 sequence=1, plan_id="starter", billing_interval=BillingInterval.MONTH,
                                 status=SubscriptionStatus.ACTIVE, start_time=joined, effective_time=joined, event_time=joined))
        patch.setenv("BILLING_CLICKHOUSE_DATABASE", scoped.clickhouse_database)
        patch.setenv("BILLING_TOPIC_ALERTS", scoped.topic_alerts)
        patch.setattr(console, "_width", 300)
        get_settings.cache_clear()
        yield scoped
    get_settings.cache_clear()


def scan(*args: str, capsys) -> tuple[int, str, str]:
    """Run `billing alerts scan ARGS` in-process: (exit code, stdout, stderr)."""
    return billing_in_process("alerts", "scan", *args, capsys=capsys)


def stored(settings: Settings) -> list[tuple]:
    return client(settings).query(f"SELECT alert_id, customer_id, type FROM {settings.clickhouse_database}.alerts FINAL "
                                  "ORDER BY alert_id").result_rows


def test_bad_rules_are_one_error_and_write_nothing(world, tmp_path, capsys):
    tail = TopicTail(world, world.topic_alerts)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: typo, kind: usage_anomaly, meter: api_cals}\n")
    for rules, message in ((tmp_path / "missing.yaml", "missing.yaml: no such file or directory"),
                           (bad, "rule 'typo' > meter: unknown meter 'api_cals'")):
        code, _, err = scan("--rules", str(rules), "--period", "2026-11", capsys=capsys)
        assert code != 0 and err.startswith("error: ") and "Traceback" not in err
        assert message in " ".join(err.split())
    code, _, err = scan("--since", "2026-11-30", "--until", "2026-11-23", capsys=capsys)
    assert code != 0 and "holds no complete hour" in err
    assert stored(world) == [] and tail.drain() == []
    tail.close()


def test_scan_finds_spike_drop_and_crossing_once(world, tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    tail = TopicTail(world, world.topic_alerts)
    window = ("--rules", str(rules), "--since", "2026-11-23T00:00:00Z", "--until", "2026-11-30T00:00:00Z")
    code, out, err = scan(*window, capsys=capsys)
    assert code == 0, err
    assert "ok: 3 new alert(s), 0 already known" in out

    messages = tail.drain()
    alerts = {(a.type, a.subject): a for a in (parse_topic("alerts", m.value()) for m in messages)}
    assert [m.key().decode() for m in messages] == [a.subject for a in (parse_topic("alerts", m.value()) for m in messages)]
    assert set(alerts) == {(AlertType.USAGE_ANOMALY, SPIKE[0]), (AlertType.USAGE_ANOMALY, DROP[0]),
                           (AlertType.USAGE_THRESHOLD, STEADY)}
    spike, drop = alerts[(AlertType.USAGE_ANOMALY, SPIKE[0])].data, alerts[(AlertType.USAGE_ANOMALY, DROP[0])].data
    assert (spike.period_start, spike.direction, spike.value) == (SPIKE[1], AnomalyDirection.SPIKE, usage(*SPIKE))
    assert (drop.period_start, drop.direction, drop.value) == (DROP[1], AnomalyDirection.DROP, 0)
    crossing = alerts[(AlertType.USAGE_THRESHOLD, STEADY)]
    hours = [START + timedelta(hours=i) for i in range(HOURS)]
    reached = next(h for i, h in enumerate(hours) if sum(usage(STEADY, x) for x in hours[:i + 1]) >= 50_000)
    assert (crossing.data.threshold, crossing.data.limit, crossing.time) == (50, 50_000, reached + timedelta(hours=1))
    assert crossing.data.period_start == datetime(2026, 11, 1, tzinfo=UTC)
    assert sorted((a.id, a.subject, a.type.value) for a in alerts.values()) == stored(world)

    code, out, err = scan(*window, capsys=capsys)
    assert code == 0, err
    assert "ok: 0 new alert(s), 3 already known" in out
    assert tail.drain() == [] and len(stored(world)) == 3
    tail.close()


def invoice(invoice_id: str, due: datetime, status: InvoiceStatus = InvoiceStatus.FINALIZED) -> Invoice:
    """An invoice of the steady customer for October, due at ``due``."""
    paid = {"paid_at": due - timedelta(days=1)} if status is InvoiceStatus.PAID else {}
    issued = datetime(2026, 11, 1, tzinfo=UTC)
    return Invoice(id=invoice_id, customer_id=STEADY, period_start=datetime(2026, 10, 1, tzinfo=UTC), period_end=issued,
                   currency="USD", line_items=(), subtotal=Decimal(0), total=Decimal(0), status=status, issued_at=issued,
                   due_at=due, number=f"INV-{invoice_id}", event_time=issued, **paid)


def test_payment_reminders_fire_once_each_from_invoice_state(world, tmp_path, capsys):
    rules = tmp_path / "reminders.yaml"
    rules.write_text("rules:\n  - {id: remind, kind: payment_due, days_before: [3], days_overdue: [1, 8]}\n")
    insert(world, invoice("inv-late", datetime(2026, 11, 20, tzinfo=UTC)), invoice("inv-soon", datetime(2026, 11, 23, tzinfo=UTC)),
           invoice("inv-paid", datetime(2026, 11, 20, tzinfo=UTC), InvoiceStatus.PAID))
    tail = TopicTail(world, world.topic_alerts)

    def reminders() -> list[tuple]:
        return [(a.data.invoice_id, a.data.unit, a.data.threshold)
                for a in sorted((parse_topic("alerts", m.value()) for m in tail.drain()), key=lambda a: a.time)]

    def stored_reminders() -> list[tuple]:
        return client(world).query(f"SELECT invoice_id, type, threshold FROM {world.clickhouse_database}.alerts FINAL "
                                   "WHERE type LIKE 'billing.payment.%' ORDER BY invoice_id, threshold").result_rows

    first = ("--rules", str(rules), "--since", "2026-11-21T00:00:00Z", "--until", "2026-11-22T00:00:00Z")
    code, out, err = scan(*first, capsys=capsys)
    assert code == 0, err
    assert "ok: 2 new alert(s), 0 already known" in out
    assert reminders() == [("inv-soon", DueUnit.DAYS_BEFORE_DUE, 3), ("inv-late", DueUnit.DAYS_OVERDUE, 1)]
    assert stored_reminders() == [("inv-late", "billing.payment.overdue", 1), ("inv-soon", "billing.payment.due", 3)]

    code, out, err = scan(*first, capsys=capsys)
    assert code == 0, err
    assert "ok: 0 new alert(s), 2 already known" in out and reminders() == []

    code, out, err = scan("--rules", str(rules), "--since", "2026-11-28T00:00:00Z", "--until", "2026-11-29T00:00:00Z",
                          capsys=capsys)
    assert code == 0, err
    assert reminders() == [("inv-soon", DueUnit.DAYS_OVERDUE, 1), ("inv-late", DueUnit.DAYS_OVERDUE, 8)]
    assert len(stored_reminders()) == 4
    tail.close()


def test_a_low_credit_balance_fires_once_a_month_and_unknown_customers_are_refused(world, tmp_path, capsys):
    Store(client(world), world.clickhouse_database).write_credit(STEADY, "grant-low", Decimal("50"), "USD",
                                                                 datetime(2026, 11, 3, tzinfo=UTC))
    rules = tmp_path / "credits.yaml"
    rules.write_text("rules:\n  - {id: low, kind: credit_balance, below: [100, 20]}\n")
    tail = TopicTail(world, world.topic_alerts)
    window = ("--rules", str(rules), "--since", "2026-11-29T00:00:00Z", "--until", "2026-11-30T00:00:00Z")
    for new, known in ((1, 0), (0, 1)):
        code, out, err = scan(*window, capsys=capsys)
        assert code == 0, err
        assert f"ok: {new} new alert(s), {known} already known" in out
    [alert] = [parse_topic("alerts", m.value()) for m in tail.drain()]
    assert (alert.type, alert.subject, alert.data.value, alert.data.threshold, alert.data.currency) == (
        AlertType.CREDIT_LOW, STEADY, 50, 100, "USD")
    before = len(stored(world))
    rules.write_text("rules:\n  - {id: low-x, kind: credit_balance, below: [100], customers: [cus-nobody]}\n")
    code, _, err = scan(*window, capsys=capsys)
    assert code != 0 and "cus-nobody" in err and "Traceback" not in err
    assert len(stored(world)) == before and tail.drain() == []
    tail.close()


def test_spend_so_far_is_the_invoicing_preview_and_fires_once(world, tmp_path, capsys):
    rules = tmp_path / "spend.yaml"
    rules.write_text("rules:\n  - {id: spend, kind: spend_threshold, thresholds: [10, 1000000]}\n")
    tail = TopicTail(world, world.topic_alerts)
    window = ("--rules", str(rules), "--since", "2026-11-29T00:00:00Z", "--until", "2026-11-30T00:00:00Z")
    for new, known in ((1, 0), (0, 1)):
        code, out, err = scan(*window, capsys=capsys)
        assert code == 0, err
        assert f"ok: {new} new alert(s), {known} already known" in out
    [alert] = [parse_topic("alerts", m.value()) for m in tail.drain()]
    preview = Invoicing(world).preview(STEADY, now=datetime(2026, 11, 30, tzinfo=UTC), period=month_period(START))
    assert preview.priced.lines and all(line.charge_id != TRUE_UP for line in preview.priced.lines)
    assert (alert.type, alert.subject, alert.data.threshold, alert.data.currency) == (AlertType.SPEND_THRESHOLD, STEADY, 10, "USD")
    assert alert.data.value == preview.priced.subtotal > 10
    tail.close()
