"""`billing invoice run` against the real warehouse and broker, on a simulated month.

Expected values are recomputed here from the simulator's records and ground-truth manifest, not
from the invoicing code's spans or SQL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from billing.core.contracts import (
    BillingInterval,
    BillingTime,
    Customer,
    InvoiceStatus,
    LineKind,
    Segment,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)
from billing.core.errors import ConfigError
from billing.core.invoicing.errors import (
    InvalidTransition,
    NoSubscription,
    PeriodError,
    UnknownCustomer,
    UnknownInvoice,
)
from billing.core.pricing import Period, PlanTerm, TaxProfile, builtin_catalog, price_invoice
from billing.core.pricing.catalog import BUILTIN_DIR, load_catalog
from billing.core.pricing.engine import CycleFee
from billing.core.pricing.plans import FlatCharge
from billing.invoicing.run import Invoicing
from billing.warehouse import facts
from tests.integration.invoicing_data import SEPTEMBER, add_usage, business_records, count, on_anniversary

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
MID_OCTOBER, MID_NOVEMBER, DECEMBER_2 = (datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC),
                                         datetime(2026, 12, 2, tzinfo=UTC))
SEPT = Period(SEPTEMBER, OCTOBER)
CATALOG = builtin_catalog()
PEAK_METERS = {"active_seats"}


def timelines(world):
    """customer -> its subscription events, and customer -> Customer, from the simulator's records."""
    customers, events = business_records(world.records)
    by_customer = defaultdict(list)
    for event in events:
        by_customer[event.customer_id].append(event)
    return {c.id: c for c in customers}, by_customer


def manifest_usage(world, customer_id: str, start: datetime, end: datetime) -> dict[str, Decimal]:
    """Billed quantity per meter from the manifest's hours in [start, end): sums, peaks for seats."""
    usage: dict[str, Decimal] = {}
    for total in world.manifest.usage("hour"):
        if total.customer_id == customer_id and start <= total.window_start < end:
            if total.meter in PEAK_METERS:
                usage[total.meter] = max(usage.get(total.meter, Decimal(0)), total.value)
            else:
                usage[total.meter] = usage.get(total.meter, Decimal(0)) + total.value
    return usage


def arrears_cycle_fees(events, currency: str) -> list[CycleFee]:
    """The fee parts of a monthly anniversary subscription's cycle that ends in September (in arrears), one
    per plan it was on, from the later of the cycle's start and the trial's end."""
    start = events[0].start_time
    index = next(k for k in range(1, 120) if SEPTEMBER < on_anniversary(start, k) <= OCTOBER)
    cycle = Period(on_anniversary(start, index - 1), on_anniversary(start, index))
    active = min(e.effective_time for e in events if e.status.value == "active").replace(microsecond=0)
    points = sorted({max(cycle.start, active), cycle.end,
                     *(e.effective_time.replace(microsecond=0) for e in events if max(cycle.start, active) < e.effective_time < cycle.end)})
    parts: list[tuple[str, Period]] = []
    for low, high in pairwise(points):
        product = max((e for e in events if e.effective_time <= low), key=lambda e: e.sequence).plan_id
        if parts and parts[-1][0] == product:
            low = parts.pop()[1].start
        parts.append((product, Period(low, high)))
    return [CycleFee(plan, charge, cycle, part, False) for product, part in parts
            for plan in [CATALOG.plan_for(product, currency)] for charge in plan.charges if isinstance(charge, FlatCharge)]


def usage_lines(invoice) -> dict[str, Decimal]:
    return {line.meter: line.quantity for line in invoice.line_items if line.kind is LineKind.USAGE}


def test_run_bills_every_subscription_and_reconciles_with_the_manifest(world):
    summary = Invoicing(world.settings).run_period("2026-09", now=MID_OCTOBER)
    customers, events = timelines(world)
    invoices = {inv.customer_id: inv for inv in summary.invoices}
    assert summary.created == len(invoices) == 30 and summary.not_billable == 0
    assert count(world.ch, world.db, "invoices") == 30

    steady = [c for c, evs in events.items() if all(e.effective_time < SEPTEMBER and e.end_time is None for e in evs)
              and max(evs, key=lambda e: e.sequence).status.value in ("active", "past_due")]
    assert len(steady) >= 20
    yearly_fees = anniversaries = 0
    for customer_id in steady:
        last = max(events[customer_id], key=lambda e: e.sequence)
        customer, plan_id, interval = customers[customer_id], last.plan_id, last.billing_interval.value
        usage = manifest_usage(world, customer_id, SEPTEMBER, OCTOBER)
        plan = CATALOG.plan_for(plan_id, customer.currency, interval)
        invoice = invoices[customer_id]
        billed = usage_lines(invoice)
        assert billed == {meter: usage.get(meter, Decimal(0)) for meter in billed}, customer_id
        assert set(billed) == {charge.meter for charge in plan.charges if hasattr(charge, "meter")}
        anniversary = last.billing_time is BillingTime.ANNIVERSARY
        fees = []
        if interval == "year" and anniversary:  # in advance, in the month its year starts (calendar years start in January)
            renewal = on_anniversary(last.start_time, 12 * (2026 - last.start_time.year))
            if SEPTEMBER < renewal <= OCTOBER:
                year = Period(renewal, on_anniversary(renewal, 12))
                fees = [CycleFee(plan, plan.charges[0], year, year, True)]
                yearly_fees += 1
        elif anniversary:  # in arrears: the month of service that ends in September, on the plans of its time
            fees = arrears_cycle_fees(events[customer_id], customer.currency)
            anniversaries += 1
        expected = price_invoice(SEPT, [PlanTerm(plan, SEPT, usage, fees_by_cycle=interval == "year" or anniversary,
                                                 anniversary=anniversary)],
                                 bill_to=TaxProfile(customer.country), tax_rules=CATALOG.tax_rules, cycle_fees=fees)
        assert (invoice.currency, invoice.subtotal, invoice.tax, invoice.total) == (
            customer.currency, expected.subtotal, expected.tax_total, expected.total), customer_id

    assert anniversaries, "some steady monthly customers are billed on their anniversary"
    calendar = {c: evs for c, evs in events.items() if evs[-1].billing_time is BillingTime.CALENDAR}  # months prorated
    september_changes = {c: [e for e in evs if e.type.value == "plan_changed" and e.effective_time >= SEPTEMBER]
                         for c, evs in calendar.items() if not any(e.end_time for e in evs)}
    for customer_id, changes in september_changes.items():
        if len(changes) > 1:  # every plan of the month billed for its own seconds, which add up to the month
            fees = [line for line in invoices[customer_id].line_items if line.kind is LineKind.SUBSCRIPTION]
            chain = [changes[0].previous_plan_id, *(e.plan_id for e in changes)]
            assert [line.charge.split(".")[0] for line in fees] == [
                CATALOG.plan_for(p, invoices[customer_id].currency).id for p in chain]
            assert sum(line.breakdown[0].quantity for line in fees) == 1
    changed = [c for c, changes in september_changes.items() if len(changes) == 1]
    assert changed
    checked = 0
    for customer_id in changed:
        change = september_changes[customer_id][0]
        invoice = invoices[customer_id]
        fees = [line for line in invoice.line_items if line.kind is LineKind.SUBSCRIPTION]
        assert [line.charge.split(".")[0] for line in fees] == [
            CATALOG.plan_for(change.previous_plan_id, invoice.currency).id, CATALOG.plan_for(change.plan_id, invoice.currency).id]
        switched = change.effective_time.replace(microsecond=0)  # spans start on whole seconds
        before = Decimal(int((switched - SEPTEMBER).total_seconds())) / Decimal(int((OCTOBER - SEPTEMBER).total_seconds()))
        assert fees[0].breakdown[0].quantity == before and fees[0].breakdown[0].quantity + fees[1].breakdown[0].quantity == 1
        both = set(CATALOG.plan(fees[0].charge.split(".")[0]).meters) & set(CATALOG.plan(fees[1].charge.split(".")[0]).meters)
        sums = defaultdict(Decimal)
        for line in invoice.line_items:
            if line.kind is LineKind.USAGE and line.meter in both - PEAK_METERS:
                sums[line.meter] += line.quantity
        month = manifest_usage(world, customer_id, SEPTEMBER, OCTOBER)
        assert all(sums[m] == month.get(m, Decimal(0)) for m in sums), customer_id  # both plans together bill the month
        checked += len(sums)
    assert checked

    canceled = [c for c, evs in calendar.items() if any(e.end_time and SEPTEMBER < e.end_time <= OCTOBER for e in evs)]
    assert canceled
    for customer_id in canceled:
        end = next(e.end_time for e in events[customer_id] if e.end_time)
        invoice = invoices[customer_id]
        expected = manifest_usage(world, customer_id, SEPTEMBER, end)
        assert usage_lines(invoice) == {m: expected.get(m, Decimal(0)) for m in usage_lines(invoice)}
        fee = next(line for line in invoice.line_items if line.kind is LineKind.SUBSCRIPTION)
        assert fee.breakdown[0].quantity == Decimal(int((end - SEPTEMBER).total_seconds())) / Decimal(30 * 86400)


def test_rerun_creates_no_duplicates_and_never_changes_finalized_invoices(world):
    invoicing = Invoicing(world.settings)
    invoicing.run_period("2026-09", now=MID_OCTOBER)
    again = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=1))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 30)
    assert count(world.ch, world.db, "invoices") == 30  # unchanged drafts are not even rewritten

    drafts = {inv.customer_id: inv for inv in invoicing.store.invoices(period=SEPT)}
    grower = next(inv for inv in drafts.values() if any(line.kind is LineKind.COMMITMENT for line in inv.line_items))
    add_usage(world.ch, world.db, grower.customer_id, "api_calls", SEPTEMBER + timedelta(days=2), Decimal(9_000_000), version=2)
    changed = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(minutes=90))
    assert (changed.updated, changed.unchanged) == (1, 29)
    shrunk = invoicing.get(grower.id)
    assert len(shrunk.line_items) == len(grower.line_items) - 1  # the commitment true-up is gone...
    assert not any(line.kind is LineKind.COMMITMENT for line in shrunk.line_items)
    assert count(world.ch, world.db, "invoice_lines", f"invoice_id = '{grower.id}'") == len(shrunk.line_items)  # ...not left behind
    assert count(world.ch, world.db, "invoice_spans", f"invoice_id = '{grower.id}'") == 1

    final = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=2), finalize=True)
    assert final.finalized == 30
    before = invoicing.store.invoices(period=SEPT)
    assert {inv.status for inv in before} == {InvoiceStatus.FINALIZED}
    lines_before = count(world.ch, world.db, "invoice_lines")

    customer = before[0].customer_id
    add_usage(world.ch, world.db, customer, "api_calls", SEPTEMBER + timedelta(days=3, hours=5), Decimal(777_777), version=2)
    rerun = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=3), finalize=True)
    assert (rerun.frozen, rerun.created, rerun.updated, rerun.finalized) == (30, 0, 0, 0)
    assert invoicing.store.invoices(period=SEPT) == before
    assert count(world.ch, world.db, "invoices") == 61 and count(world.ch, world.db, "invoice_lines") == lines_before
    assert world.ch.query(f"SELECT uniqExact(invoice_id) FROM {world.db}.invoices").result_rows[0][0] == 30


def test_late_usage_becomes_a_correction_on_the_next_invoice(world):
    invoicing = Invoicing(world.settings)
    september = {inv.customer_id: inv for inv in invoicing.run_period("2026-09", now=MID_OCTOBER, finalize=True).invoices}
    customers, events = timelines(world)
    customer_id = next(c for c, evs in sorted(events.items()) if all(e.effective_time < SEPTEMBER and e.end_time is None for e in evs)
                       and max(evs, key=lambda e: e.sequence).plan_id in ("starter", "growth"))
    hour = SEPTEMBER + timedelta(days=9, hours=12)
    old = world.manifest.usage_totals("hour").get((customer_id, "api_calls", hour), Decimal(0))
    late = Decimal(2_500_000)
    add_usage(world.ch, world.db, customer_id, "api_calls", hour, old + late, version=2)

    october = {inv.customer_id: inv for inv in invoicing.run_period("2026-10", now=MID_NOVEMBER).invoices}
    assert invoicing.store.invoices(period=SEPT) == sorted(september.values(), key=lambda i: i.customer_id)
    corrections = [line for line in october[customer_id].line_items if line.kind is LineKind.CORRECTION]
    plan = CATALOG.plan_for(max(events[customer_id], key=lambda e: e.sequence).plan_id, customers[customer_id].currency)
    assert [(c.charge, c.meter, c.quantity) for c in corrections] == [(f"{plan.id}.api_calls@2026-09", "api_calls", late)]
    usage = manifest_usage(world, customer_id, SEPTEMBER, OCTOBER)
    repriced = price_invoice(SEPT, [PlanTerm(plan, SEPT, {**usage, "api_calls": usage.get("api_calls", Decimal(0)) + late})])
    billed = sum(line.amount for line in september[customer_id].line_items)
    assert corrections[0].amount == repriced.subtotal - billed != 0
    assert all(not any(line.kind is LineKind.CORRECTION for line in inv.line_items)
               for c, inv in october.items() if c != customer_id)

    rerun = invoicing.run_period("2026-10", now=MID_NOVEMBER + timedelta(hours=1), finalize=True)
    again = next(inv for inv in rerun.invoices if inv.customer_id == customer_id)
    assert [line for line in again.line_items if line.kind is LineKind.CORRECTION] == corrections
    november = invoicing.run_period("2026-11", now=DECEMBER_2)
    assert november.corrections == 0


PREPAID = """
plans:
  - id: prepaid
    name: Prepaid
    currency: USD
    interval: month
    charges:
      - {id: fee, name: Prepaid fee, model: flat, amount: 31.00, pay_in_advance: true}
      - {id: calls, name: API calls, model: per_unit, meter: api_calls, unit_price: 0.01}
"""


def anniversary_customer(customer_id: str, plan_id: str, interval: BillingInterval, start: datetime) -> list:
    """A US customer whose one subscription, billed on its anniversary, starts at ``start``."""
    customer = Customer(id=customer_id, company_name=customer_id, email=f"ap@{customer_id}.example", country="US",
                        region="NA", currency="USD", segment=Segment.SMB, signup_time=start, updated_at=start)
    return [customer, SubscriptionEvent(
        event_id=f"se-{customer_id}", subscription_id=f"sub-{customer_id}", customer_id=customer_id,
        type=SubscriptionEventType.CREATED, sequence=1, plan_id=plan_id, billing_interval=interval,
        billing_time=BillingTime.ANNIVERSARY, status=SubscriptionStatus.ACTIVE, start_time=start, effective_time=start,
        event_time=start)]


def test_anniversary_fees_are_billed_once_per_cycle_and_usage_by_calendar_month(world, tmp_path):
    """Two customers on their anniversary, billed and finalized month by month, January to October 2026.
    Prepaid (31.00 a month in advance, 0.01 a call) from 31 January 00:00: its months run from the
    31st, or the month's last day when it has none (28 February, 30 April, ...); each is billed whole
    on the invoice of the month it starts in, one per invoice, each day once. Starter yearly (290.00
    in advance) from 15 June 10:00: June bills 15 June 2026 - 15 June 2027 from 10:00,
    290 x (31,536,000 - 36,000) / 31,536,000 = 289.67, and no later month bills a fee. Usage is billed
    by calendar month: 1,000 calls at 23:00 on every month's last day and 500 at 00:00 on the 1st fall
    on the invoice of their month, whatever cycle they are in. Late usage of a finalized month is
    corrected as usage only, never as a fee."""
    (tmp_path / "prepaid.yaml").write_text(PREPAID)
    invoicing = Invoicing(world.settings, catalog=load_catalog([BUILTIN_DIR, tmp_path / "prepaid.yaml"]))
    monthly, yearly = "cus-anniv-m", "cus-anniv-y"
    rows: facts.Rows = {}
    for model in (*anniversary_customer(monthly, "prepaid", BillingInterval.MONTH, datetime(2026, 1, 31, tzinfo=UTC)),
                  *anniversary_customer(yearly, "starter", BillingInterval.YEAR, datetime(2026, 6, 15, 10, tzinfo=UTC))):
        facts.merge(rows, facts.rows_for(model))
    for table, data in rows.items():
        world.ch.insert(f"{world.db}.{table}", data, column_names=facts.COLUMNS[table])
    months = [Period(datetime(2026, m, 1, tzinfo=UTC), datetime(2026 + m // 12, m % 12 + 1, 1, tzinfo=UTC)) for m in range(1, 11)]
    for month in months:
        for customer_id, since in ((monthly, datetime(2026, 2, 1, tzinfo=UTC)), (yearly, datetime(2026, 7, 1, tzinfo=UTC))):
            add_usage(world.ch, world.db, customer_id, "api_calls", month.end - timedelta(hours=1), Decimal(1000), version=1)
            if month.start >= since:
                add_usage(world.ch, world.db, customer_id, "api_calls", month.start, Decimal(500), version=1)

    billed = {}
    for month in months[:-1]:
        for customer_id in (monthly, yearly):
            for invoice in invoicing.run_period(f"{month.start:%Y-%m}", now=DECEMBER_2, finalize=True, customer=customer_id).invoices:
                billed[(customer_id, f"{month.start:%Y-%m}")] = invoice
    add_usage(world.ch, world.db, monthly, "api_calls", datetime(2026, 8, 31, 23, tzinfo=UTC), Decimal(1200), version=2)
    for customer_id in (monthly, yearly):
        [billed[(customer_id, "2026-10")]] = invoicing.run_period("2026-10", now=DECEMBER_2, finalize=True,
                                                                 customer=customer_id).invoices

    def lines(customer_id: str, kind: LineKind) -> list[tuple[str, str, Decimal, Decimal]]:
        return [(month, line.description, line.quantity, line.amount) for (owner, month), inv in sorted(billed.items())
                if owner == customer_id for line in inv.line_items if line.kind is kind]

    def calls(customer_id: str) -> list[tuple[str, Decimal]]:
        return [(month, line.quantity) for (owner, month), inv in sorted(billed.items()) if owner == customer_id
                for line in inv.line_items if line.kind is LineKind.USAGE and line.meter == "api_calls"]

    ends = ["01-31", "02-28", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30", "10-31", "11-30"]
    assert lines(monthly, LineKind.SUBSCRIPTION) == [
        (f"2026-{m:02d}", f"Prepaid fee (2026-{begin} to 2026-{end}, in advance)", Decimal(1), Decimal("31.00"))
        for m, begin, end in zip(range(1, 11), ends, ends[1:], strict=False)]
    assert lines(yearly, LineKind.SUBSCRIPTION) == [
        ("2026-06", "Starter platform fee (yearly) (2026-06-15 to 2027-06-15, in advance)", Decimal(1), Decimal("289.67"))]
    assert calls(monthly) == [("2026-01", Decimal(1000)), *((f"2026-{m:02d}", Decimal(1500)) for m in range(2, 11))]
    assert calls(yearly) == [("2026-06", Decimal(1000)), *((f"2026-{m:02d}", Decimal(1500)) for m in range(7, 11))]
    assert [(month, quantity, amount) for month, _, quantity, amount in lines(monthly, LineKind.CORRECTION)] == [
        ("2026-10", Decimal(200), Decimal("2.00"))]
    assert not lines(yearly, LineKind.CORRECTION)
    assert invoicing.store.credit_notes(customer=monthly) == invoicing.store.credit_notes(customer=yearly) == []


def test_bad_input_is_one_clear_error_and_writes_nothing(world, tmp_path):
    bad_plans = tmp_path / "plans.yaml"
    bad_plans.write_text("plans:\n  - {id: starter, name: S, currency: USD, charges: [{id: fee, model: flat, amount: 1O}]}\n")
    with pytest.raises(ConfigError, match="plans.yaml: plan 'starter' > charge 'fee' > amount"):
        Invoicing(world.settings.model_copy(update={"plans_dir": bad_plans}))
    invoicing = Invoicing(world.settings)
    with pytest.raises(PeriodError, match="in the future"):
        invoicing.run_period("2027-02", now=MID_OCTOBER)
    with pytest.raises(PeriodError, match="still open .*`billing invoice preview"):
        invoicing.run_period("2026-10", now=MID_OCTOBER)
    with pytest.raises(PeriodError, match="not a month"):
        invoicing.run_period("Sept", now=MID_OCTOBER)

    customers, _ = timelines(world)
    odd = next(iter(customers.values()))
    moved = odd.model_copy(update={"currency": "XXX", "updated_at": odd.updated_at + timedelta(days=1)})
    rows = facts.customer_rows(moved)["customers"]
    world.ch.insert(f"{world.db}.customers", rows, column_names=facts.COLUMNS["customers"])
    with pytest.raises(ConfigError, match=f"customer {odd.id}: unknown currency 'XXX'.*nothing was written"):
        invoicing.run_period("2026-09", now=MID_OCTOBER)
    assert count(world.ch, world.db, "invoices") == count(world.ch, world.db, "invoice_spans") == 0
    world.ch.insert(f"{world.db}.customers",
                    facts.customer_rows(odd.model_copy(update={"updated_at": moved.updated_at + timedelta(days=1)}))["customers"],
                    column_names=facts.COLUMNS["customers"])

    lonely = odd.model_copy(update={"id": "cus-lonely"})
    world.ch.insert(f"{world.db}.customers", facts.customer_rows(lonely)["customers"], column_names=facts.COLUMNS["customers"])
    with pytest.raises(NoSubscription, match="cus-lonely has no billable subscription"):
        invoicing.preview("cus-lonely", now=MID_OCTOBER)
    with pytest.raises(UnknownCustomer, match="no customer 'cus-nobody'"):
        invoicing.preview("cus-nobody", now=MID_OCTOBER)
    with pytest.raises(UnknownInvoice, match="no invoice 'inv-nope'"):
        invoicing.change_status("inv-nope", InvoiceStatus.FINALIZED, now=MID_OCTOBER)

    drafts = invoicing.run_period("2026-09", now=MID_OCTOBER).invoices
    target = drafts[0].id
    with pytest.raises(InvalidTransition, match="cannot pay .* it is draft; finalize it first"):
        invoicing.change_status(target, InvoiceStatus.PAID, now=MID_OCTOBER)
    invoicing.change_status(target, InvoiceStatus.VOID, now=MID_OCTOBER + timedelta(minutes=1))
    versions = count(world.ch, world.db, "invoices", f"invoice_id = '{target}'")
    with pytest.raises(InvalidTransition, match="cannot finalize .* it is void"):
        invoicing.change_status(target, InvoiceStatus.FINALIZED, now=MID_OCTOBER + timedelta(minutes=2))
    assert count(world.ch, world.db, "invoices", f"invoice_id = '{target}'") == versions == 2
    assert invoicing.get(target).status is InvoiceStatus.VOID
    rerun = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(minutes=3))
    assert rerun.frozen == 1 and invoicing.get(target).status is InvoiceStatus.VOID


def test_preview_shows_the_running_total_of_the_open_month(world):
    invoicing = Invoicing(world.settings)
    customers, events = timelines(world)
    customer_id = next(c for c, evs in sorted(events.items()) if all(e.effective_time < SEPTEMBER and e.end_time is None for e in evs))
    now = SEPTEMBER + timedelta(days=12, hours=6, minutes=30)
    preview = invoicing.preview(customer_id, now=now)
    usage = manifest_usage(world, customer_id, SEPTEMBER, now)
    assert {line.meter: line.quantity for line in preview.priced.lines if line.meter} == {
        m: usage.get(m, Decimal(0)) for m in {line.meter for line in preview.priced.lines if line.meter}}
    fee = next(line for line in preview.priced.lines if line.model == "flat")
    assert fee.fraction == Decimal(int((now - SEPTEMBER).total_seconds())) / Decimal(30 * 86400)
    assert preview.invoice.status is InvoiceStatus.DRAFT and count(world.ch, world.db, "invoices") == 0


def test_tax_region_and_exemption_come_from_the_customer(world):
    customers, events = timelines(world)
    steady = [c for c, evs in sorted(events.items()) if all(e.effective_time < SEPTEMBER and e.end_time is None for e in evs)]
    us = next(customers[c] for c in steady if customers[c].country == "US")
    eu = next(customers[c] for c in steady if customers[c].country in ("DE", "FR", "NL", "ES"))
    later = timedelta(days=400)
    for changed in (us.model_copy(update={"tax_region": "NY", "updated_at": us.updated_at + later}),
                    eu.model_copy(update={"tax_exempt": True, "updated_at": eu.updated_at + later})):
        world.ch.insert(f"{world.db}.customers", facts.customer_rows(changed)["customers"], column_names=facts.COLUMNS["customers"])
    invoices = {inv.customer_id: inv for inv in Invoicing(world.settings).run_period("2026-09", now=MID_OCTOBER).invoices}
    assert invoices[us.id].tax_rate == Decimal("0.04") and invoices[us.id].tax == (
        invoices[us.id].subtotal * Decimal("0.04")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert invoices[eu.id].tax == 0 and invoices[eu.id].total == invoices[eu.id].subtotal
    assert any(inv.tax > 0 for c, inv in invoices.items() if customers[c].country in ("DE", "FR", "NL", "ES") and c != eu.id)


def test_id_lists_longer_than_a_url_are_read_and_deleted_in_one_query(world):
    invoicing = Invoicing(world.settings)
    invoicing.run_period("2026-09", now=MID_OCTOBER)
    stored = invoicing.store.invoices(period=SEPT)
    unknown = [f"inv-unknown-{i:06d}" for i in range(20_000)]
    ids = unknown[:10_000] + [inv.id for inv in reversed(stored)] + unknown[10_000:]
    assert invoicing.store.invoices(ids=ids) == stored
    customer_ids = [inv.customer_id for inv in stored]
    assert set(invoicing.store.customers(customer_ids + unknown)) == set(customer_ids)
    lines = count(world.ch, world.db, "invoice_lines")
    invoicing.store.forget_lines(unknown)
    invoicing.store.forget_spans(unknown, before=MID_NOVEMBER)
    assert count(world.ch, world.db, "invoice_lines") == lines > 0
    assert invoicing.store.invoices(ids=[]) == []
