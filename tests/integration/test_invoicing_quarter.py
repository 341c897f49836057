"""A simulated quarter billed by the engine, month by month, against the real warehouse and broker.

Expectations come from the simulator's records and manifest (not from the engine's spans or SQL):
every customer x meter x closed month bills exactly the manifest's usage, no customer with a
billable subscription is skipped, monthly customers pay their fee every month and yearly customers
once a year (in the month their year starts), with usage every month. The payers then pay what was
finalized, reproducibly.

The ledger, on a customer of its own (hand-computed): a mid-year downgrade of a yearly plan paid in
advance gives the expected credit note and bills the new plan's rest of the year; invoices and
credit notes are numbered without gaps; a voided invoice re-billed ends with exactly one live
invoice of its month; re-billing an invoice that is not void is one clear error and writes nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.core.contracts import (
    BillingInterval,
    BillingTime,
    Customer,
    InvoiceStatus,
    LineKind,
    PaymentStatus,
    Segment,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)
from billing.core.invoicing.errors import InvalidTransition
from billing.core.meters import active_meters
from billing.core.pricing import builtin_catalog
from billing.core.pricing.proration import Period
from billing.core.webhooks.events import EventType, webhook_event
from billing.invoicing.run import Invoicing
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.warehouse import facts
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate
from producers.manifest import Manifest
from producers.payers import settle
from producers.paying import pay_period
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, read_records
from tests.integration.invoicing_data import business_records, load, on_anniversary, topic_messages

pytestmark = pytest.mark.integration

UTC = UTC
JULY = datetime(2026, 7, 1, tzinfo=UTC)
MONTHS = [Period(datetime(2026, m, 1, tzinfo=UTC), datetime(2026, m + 1, 1, tzinfo=UTC)) for m in (7, 8, 9)]
SEED = 29  # 30 customers: 6 yearly (2 of them start a year in the quarter), 7 plan changes, a cancellation
CATALOG = builtin_catalog()
PEAK = {"active_seats"}


@pytest.fixture(scope="module")
def quarter(settings, warehouse, kafka, tmp_path_factory):
    folder = tmp_path_factory.mktemp("quarter")
    config = SimulationConfig(customers=30, rate=None, events=30_000, start=JULY, days=92, seed=SEED)
    Simulator(config, active_meters(), FileSink(folder / "records.tsv"), manifest_dir=folder / "manifest").run()
    name = f"quarter_{uuid.uuid4().hex[:8]}"
    scoped = settings.model_copy(update={"clickhouse_database": name, "topic_invoices": f"billing.invoices.{name}"})
    migrate(scoped)
    admin = admin_client(settings.kafka_bootstrap)
    ensure_topics(admin, [TopicSpec(scoped.topic_invoices, 1, 1)])
    manifest = Manifest.load(folder / "manifest")
    load(client(scoped), name, folder / "records.tsv", manifest)
    invoicing = Invoicing(scoped)
    runs = [invoicing.run_period(f"{month.start:%Y-%m}", now=month.end + timedelta(hours=2), finalize=True) for month in MONTHS]
    yield invoicing, runs, folder, manifest
    client(settings).command(f"DROP DATABASE IF EXISTS {name}")
    admin.delete_topics([scoped.topic_invoices])


def timelines(folder):
    customers, events = business_records(folder / "records.tsv")
    by_customer = defaultdict(list)
    for event in events:
        by_customer[event.customer_id].append(event)
    return {c.id: c for c in customers}, {c: sorted(evs, key=lambda e: e.sequence) for c, evs in by_customer.items()}


def billable(events) -> tuple[datetime, datetime]:
    """When service that is billed starts (the trial's end) and ends (end of service, or far away)."""
    active = min(e.effective_time for e in events if e.status.value == "active").replace(microsecond=0)
    end = next((e.end_time for e in events if e.end_time), datetime(2100, 1, 1, tzinfo=UTC))
    return active, end


def plans_in(events, low: datetime, high: datetime) -> set[str]:
    """Products the subscription is on at some time in ``[low, high)``."""
    found = {max((e for e in events if e.effective_time <= low), key=lambda e: e.sequence).plan_id}
    return found | {e.plan_id for e in events if low < e.effective_time < high}


def test_every_customer_meter_and_month_bills_the_manifest_exactly(quarter):
    _, runs, folder, manifest = quarter
    customers, events = timelines(folder)
    hours = defaultdict(list)
    for total in manifest.usage("hour"):
        hours[(total.customer_id, total.meter)].append((total.window_start, total.value))
    compared = 0
    for month, run in zip(MONTHS, runs, strict=True):
        invoices = {inv.customer_id: inv for inv in run.invoices}
        due = {c for c, evs in events.items() if billable(evs)[0] < month.end and billable(evs)[1] > month.start}
        assert set(invoices) == due, "no customer with a billable subscription is skipped"
        assert run.not_billable == len(events) - len(due) == sum(run.not_billed.values())
        assert {code: billed.total for code, billed in run.billed.items()} == {
            code: sum(inv.total for inv in run.invoices if inv.currency == code) for code in {inv.currency for inv in run.invoices}}
        for customer_id in due:
            start, end = billable(events[customer_id])
            low, high = max(month.start, start), min(month.end, end)
            interval = events[customer_id][-1].billing_interval.value
            plans = [CATALOG.plan_for(p, customers[customer_id].currency, interval) for p in plans_in(events[customer_id], low, high)]
            billed = defaultdict(list)
            for line in invoices[customer_id].line_items:
                if line.kind is LineKind.USAGE:
                    billed[line.meter].append(line.quantity)
            for meter in set.intersection(*(set(p.meters) for p in plans)):
                values = [v for t, v in hours[(customer_id, meter)] if low <= t < high]
                if meter in PEAK:
                    assert max(billed[meter]) == max(values, default=Decimal(0)), (customer_id, meter, month)
                else:
                    assert sum(billed[meter]) == sum(values, Decimal(0)), (customer_id, meter, month)
                compared += 1
    assert compared > 3 * 25 * 2


def fee_months(events, interval: str) -> list[str]:
    """The months of the quarter whose invoice bills the subscription fee, from the records alone:
    every billable month for monthly plans on the calendar; otherwise, per cycle with service, the
    month of its start (or the trial's end) for yearly fees in advance, of its end (or the end of
    service) for monthly fees in arrears on the anniversary. Cycles are calendar years, or months and
    years from the start's day at 00:00 (the month's last day when it has none)."""
    start, end = billable(events)
    anniversary = events[-1].billing_time is BillingTime.ANNIVERSARY
    if interval == "month" and not anniversary:
        return [f"{m.start:%Y-%m}" for m in MONTHS if start < m.end and end > m.start]
    signed, step = events[0].start_time, 12 if interval == "year" else 1
    found = []
    for k in range(40):
        if anniversary:
            low, high = on_anniversary(signed, k * step), on_anniversary(signed, (k + 1) * step)
        else:
            low, high = datetime(signed.year + k, 1, 1, tzinfo=UTC), datetime(signed.year + k + 1, 1, 1, tzinfo=UTC)
        if low < end and high > start:
            point = max(low, start) if interval == "year" else min(high, end)
            found += [f"{m.start:%Y-%m}" for m in MONTHS if m.start < point <= m.end]
    return found


def test_monthly_customers_pay_the_fee_every_month_yearly_ones_once_a_year(quarter):
    invoicing, runs, folder, _ = quarter
    _, events = timelines(folder)
    fees = defaultdict(list)
    usage_months = defaultdict(set)
    for month, run in zip(MONTHS, runs, strict=True):
        for invoice in run.invoices:
            if any(line.kind is LineKind.SUBSCRIPTION and "after a plan change" not in line.description
                   for line in invoice.line_items):
                fees[invoice.customer_id].append(f"{month.start:%Y-%m}")
            if any(line.kind is LineKind.USAGE for line in invoice.line_items):
                usage_months[invoice.customer_id].add(f"{month.start:%Y-%m}")
    yearly = [c for c, evs in events.items() if evs[-1].billing_interval.value == "year"]
    assert len(yearly) == 6
    for customer_id, evs in events.items():
        interval = evs[-1].billing_interval.value
        assert fees[customer_id] == fee_months(evs, interval), (customer_id, interval)
    assert sum(len(fees[c]) for c in yearly) >= 2, "some yearly customers start a year in the quarter"
    for customer_id in yearly:
        start, end = billable(events[customer_id])
        assert usage_months[customer_id] == {f"{m.start:%Y-%m}" for m in MONTHS if start < m.end and end > m.start}
        assert all(line.description.endswith("in advance)") for inv in invoicing.store.invoices(customer=customer_id)
                   for line in inv.line_items if line.kind is LineKind.SUBSCRIPTION)


def test_payers_pay_what_was_finalized_reproducibly(quarter, settings):
    invoicing, runs, folder, _ = quarter
    until = datetime(2026, 10, 20, tzinfo=UTC)
    first = pay_period(invoicing.store.invoices(period=MONTHS[0]), SEED, until, FileSink(folder / "pay-1.tsv"),
                       invoicing.mark_paid, folder / "manifest")
    finalized = {inv.id: inv for inv in runs[0].invoices}
    expected = [e for inv in finalized.values() for e in settle(inv, SEED).events if e.event_time <= until]
    assert sorted(e.event_id for e in first.payments) == sorted(e.event_id for e in expected)
    assert len({p.invoice_id for p in first.payments}) > 20 and first.paid > 20
    assert {r.status for r in invoicing.store.invoices(period=MONTHS[0])} <= {InvoiceStatus.PAID, InvoiceStatus.FINALIZED}
    paid = {inv.id for inv in invoicing.store.invoices(period=MONTHS[0], status=InvoiceStatus.PAID)}
    assert paid == {e.invoice_id for e in expected if e.status is PaymentStatus.SUCCEEDED}
    again = pay_period(invoicing.store.invoices(period=MONTHS[0]), SEED, until, FileSink(folder / "pay-2.tsv"),
                       invoicing.mark_paid, folder / "manifest")
    assert (folder / "pay-1.tsv").read_bytes() == (folder / "pay-2.tsv").read_bytes() and again.newly_paid == 0
    rows = {r["id"]: r for r in Manifest.load(folder / "manifest").payments()}
    assert {tx: r["final_status"] for tx, r in rows.items()} == {
        tx: max((e for e in expected if e.id == tx), key=lambda e: e.sequence).status.value for tx in {e.id for e in expected}}
    assert sum(1 for _ in read_records(folder / "pay-1.tsv")) == len(expected)


JUNE_15 = datetime(2026, 6, 15, tzinfo=UTC)
DOWNGRADE = datetime(2026, 8, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ledger(settings, warehouse, kafka):
    """One customer on Growth yearly (990.00 a year in advance) on its anniversary from 15 June 2026, downgraded to
    Starter yearly (290.00) on 1 August; June to August billed and finalized."""
    name = f"ledger_{uuid.uuid4().hex[:8]}"
    scoped = settings.model_copy(update={"clickhouse_database": name, "topic_invoices": f"billing.invoices.{name}",
                                         "topic_credit_notes": f"billing.credit-notes.{name}"})
    migrate(scoped)
    admin = admin_client(settings.kafka_bootstrap)
    ensure_topics(admin, [TopicSpec(scoped.topic_invoices, 1, 1), TopicSpec(scoped.topic_credit_notes, 1, 1)])
    customer = Customer(id="cus-ledger", company_name="Ledger Ltd", email="ap@ledger.example", country="US", region="NA",
                        currency="USD", segment=Segment.SMB, signup_time=JUNE_15, updated_at=JUNE_15)
    common = {"subscription_id": "sub-ledger", "customer_id": customer.id, "billing_interval": BillingInterval.YEAR,
              "billing_time": BillingTime.ANNIVERSARY, "status": SubscriptionStatus.ACTIVE, "start_time": JUNE_15}
    events = [
        SubscriptionEvent(event_id="se-1", type=SubscriptionEventType.CREATED, sequence=1, plan_id="growth",
                          effective_time=JUNE_15, event_time=JUNE_15, **common),
        SubscriptionEvent(event_id="se-2", type=SubscriptionEventType.PLAN_CHANGED, sequence=2, plan_id="starter",
                          previous_plan_id="growth", effective_time=DOWNGRADE, event_time=DOWNGRADE, **common),
    ]
    ch = client(scoped, database=name)
    rows: facts.Rows = {}
    for model in (customer, *events):
        facts.merge(rows, facts.rows_for(model))
    for table, data in rows.items():
        ch.insert(f"{name}.{table}", data, column_names=facts.COLUMNS[table])
    invoicing = Invoicing(scoped)
    runs = [invoicing.run_period(month, now=datetime(2026, 12, 1, tzinfo=UTC), finalize=True)
            for month in ("2026-06", "2026-07", "2026-08")]
    yield invoicing, runs, ch
    client(settings).command(f"DROP DATABASE IF EXISTS {name}")
    admin.delete_topics([scoped.topic_invoices, scoped.topic_credit_notes])


def test_a_mid_year_downgrade_gives_the_expected_credit_note(ledger):
    """The year 15 June 2026 - 15 June 2027 (365 days) was billed in June: 990.00. On 1 August, 47 days
    used, 318 unused: Growth now costs 990 x 47/365 = 127.48, so 990.00 - 127.48 = 862.52 is credited
    on a credit note linked to June's invoice; August bills Starter for the 318 days, 290 x 318/365 = 252.66."""
    invoicing, runs, _ = ledger
    june, july, august = ([inv for inv in run.invoices] for run in runs)
    assert [(line.charge, line.amount) for line in june[0].line_items if line.kind is LineKind.SUBSCRIPTION] == [
        ("growth_yearly.platform_fee", Decimal("990.00"))]
    assert not [line for line in july[0].line_items if line.kind is LineKind.SUBSCRIPTION]
    assert [(line.charge, line.amount) for line in august[0].line_items if line.kind is LineKind.SUBSCRIPTION] == [
        ("starter_yearly.platform_fee", Decimal("252.66"))]
    [note] = invoicing.store.credit_notes(customer="cus-ledger")
    assert (note.id, note.number, note.invoice_id, note.total, note.currency) == (
        "cn-inv-cus-ledger-202606-202608", "INV-CN-000001", "inv-cus-ledger-202606", Decimal("862.52"), "USD")
    assert [(line.charge, line.amount, line.service_start) for line in note.lines] == [
        ("growth_yearly.platform_fee", Decimal("862.52"), JUNE_15)]
    assert note.lines[0].description == ("Unused Growth platform fee (yearly) of Growth (yearly) (2026-06-15 to 2027-06-15): "
                                         "318.00 of 365.00 days")
    assert [n.id for n in runs[2].credit_notes] == [note.id]
    again = invoicing.run_period("2026-08", now=datetime(2026, 12, 1, tzinfo=UTC), finalize=True)
    assert again.credit_notes == [] and again.frozen == 1, "a repeated run issues nothing twice"
    assert topic_messages(invoicing.settings, "credit_notes") == [(b"cus-ledger", note)], "published once, as recorded"
    assert note.lines[0].quantity == Decimal("0.871232877")  # 318 / 365 days, 9 decimals
    assert webhook_event(note).type is EventType.CREDIT_NOTE_ISSUED
    assert [inv.number for inv in invoicing.store.invoices(customer="cus-ledger")] == ["INV-000001", "INV-000002", "INV-000003"]


def test_a_voided_invoice_re_billed_ends_with_one_live_invoice(ledger):
    """September: a draft, finalized (INV-000004), voided, re-billed as ...-r1 and finalized (INV-000005),
    which draws the credit note's balance. Re-billing anything that is not a void invoice (not re-billed
    yet) is one error and writes nothing."""
    invoicing, _, ch = ledger
    now = datetime(2026, 12, 2, tzinfo=UTC)
    [draft] = invoicing.run_period("2026-09", now=now).invoices
    assert draft.number is None
    finalized = invoicing.change_status(draft.id, InvoiceStatus.FINALIZED, now=now)
    assert finalized.number == "INV-000004"
    invoicing.change_status(draft.id, InvoiceStatus.VOID, now=now, reason="wrong address")

    def written() -> int:
        return ch.query("SELECT count() FROM invoices").result_rows[0][0]

    before = written()
    with pytest.raises(InvalidTransition, match="it is finalized; only void invoices are re-billed"):
        invoicing.rebill("inv-cus-ledger-202608", now=now)
    assert written() == before
    [replacement] = invoicing.rebill(draft.id, now=now, finalize=True).invoices
    assert (replacement.id, replacement.replaces, replacement.number) == (f"{draft.id}-r1", draft.id, "INV-000005")
    assert invoicing.get(draft.id).replaced_by == replacement.id
    before = written()
    with pytest.raises(InvalidTransition, match="re-billed already"):
        invoicing.rebill(draft.id, now=now)
    with pytest.raises(InvalidTransition, match="it is finalized"):
        invoicing.rebill(replacement.id, now=now)
    assert written() == before
    rerun = invoicing.run_period("2026-09", now=now, finalize=True)
    assert [inv.id for inv in rerun.invoices] == [] and rerun.frozen == 1
    september = invoicing.store.invoices(customer="cus-ledger", period=Period(datetime(2026, 9, 1, tzinfo=UTC),
                                                                                datetime(2026, 10, 1, tzinfo=UTC)))
    assert [inv.id for inv in september if inv.status is not InvoiceStatus.VOID] == [replacement.id]
    numbers = sorted(inv.number for inv in invoicing.store.invoices(customer="cus-ledger"))
    assert numbers == [f"INV-{n:06d}" for n in range(1, 6)], "gap-free, never reused"
