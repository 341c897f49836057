"""Percentage charges priced per transaction, billed from the warehouse's single usage events.

The plan of one simulated customer gets a payout charge (1.5 % + 0.25 per payout, each 0.50 to
20.00, the first 2 payouts of a month free); its payouts are written as raw ``usage_events`` rows
(with a duplicate, which the warehouse drops) and their hourly rollups, as the stream worker would.
Expected amounts are computed by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

from billing.core.contracts import LineKind
from billing.core.meters import DEFAULT_METERS, Aggregation, Meter, MeterSet
from billing.core.pricing import builtin_catalog
from billing.core.pricing.plans import PercentageCharge
from billing.invoicing.run import Invoicing
from billing.warehouse import facts
from producers.manifest import UsageTotal
from tests.integration.invoicing_data import ROLLUP_COLUMNS, SEPTEMBER, rollup_rows
from tests.integration.test_invoicing_run import SEPT, timelines

METERS = MeterSet([*DEFAULT_METERS, Meter(name="payout_volume", unit="USD", aggregation=Aggregation.SUM)])
PAYOUTS = PercentageCharge(id="payouts", model="percentage", meter="payout_volume", rate=D("1.5"), fixed_fee=D("0.25"),
                           per_transaction_min_amount=D("0.50"), per_transaction_max_amount=D(20), free_transactions=2)
DAY = timedelta(days=1)
PAYOUT_EVENTS = [  # (id, time, amount): the first two of September are free
    ("p-aug", SEPTEMBER - timedelta(minutes=30), D(1000)),  # August: not billed in September
    ("p1", SEPTEMBER + DAY + timedelta(hours=10), D(5000)),  # free
    ("p2", SEPTEMBER + 2 * DAY, D(5000)),  # free
    ("p3", SEPTEMBER + 4 * DAY, D("10.00")),  # 0.15 + 0.25 = 0.40 -> 0.50
    ("p4", SEPTEMBER + 5 * DAY + timedelta(hours=10), D(100)),  # 1.50 + 0.25 = 1.75
    ("p5", SEPTEMBER + 6 * DAY, D(2000)),  # 30.00 + 0.25 = 30.25 -> 20.00
    ("p-oct", SEPTEMBER + 30 * DAY, D(1000)),  # October
]


def insert_payouts(world, customer_id: str, events) -> None:
    rows = [[event_id, customer_id, "payout_volume", moment, amount, "", {}, "", "test", 0, offset]
            for offset, (event_id, moment, amount) in enumerate(events)]
    world.ch.insert(f"{world.db}.usage_events", rows, column_names=facts.COLUMNS["usage_events"])


def insert_rollups(world, customer_id: str, events, version: int = 1) -> None:
    hours: dict[datetime, D] = {}
    for _id, moment, amount in events:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        hours[hour] = hours.get(hour, D(0)) + amount
    totals = [UsageTotal(customer_id, "payout_volume", hour, value, 1) for hour, value in hours.items()]
    world.ch.insert(f"{world.db}.usage_rollups", rollup_rows(totals, METERS, version), column_names=ROLLUP_COLUMNS)


def payout_lines(invoice):
    return [(line.kind, line.quantity, line.amount) for line in invoice.line_items if line.meter == "payout_volume"]


def test_payouts_are_priced_one_by_one_with_free_ones_corrections_and_previews(world):
    customers, events = timelines(world)
    customer_id = next(c for c, evs in sorted(events.items())
                       if customers[c].currency == "USD" and all(e.effective_time < SEPTEMBER and e.end_time is None for e in evs))
    latest = max(events[customer_id], key=lambda e: e.sequence)
    catalog = builtin_catalog()
    plan = catalog.plan_for(latest.plan_id, "USD", latest.billing_interval.value)
    priced = plan.model_copy(update={"charges": [*plan.charges, PAYOUTS]})
    catalog.plans[plan.id] = catalog.offers[(plan.product_id, "USD", plan.interval)] = priced
    insert_payouts(world, customer_id, PAYOUT_EVENTS)
    insert_payouts(world, customer_id, [PAYOUT_EVENTS[4]])  # a replayed duplicate of p4
    insert_rollups(world, customer_id, PAYOUT_EVENTS)
    invoicing = Invoicing(world.settings, catalog=catalog, meters=METERS)

    preview = invoicing.preview(customer_id, now=SEPTEMBER + 5 * DAY + timedelta(hours=12))
    assert [(line.quantity, line.amount) for line in preview.priced.lines if line.meter == "payout_volume"] == [
        (D("10110.00"), D("2.25"))]  # p1..p4: 0.50 + 1.75

    september = next(i for i in invoicing.run_period("2026-09", now=SEPTEMBER + 31 * DAY, finalize=True).invoices
                     if i.customer_id == customer_id)
    assert payout_lines(september) == [(LineKind.USAGE, D("12110.00"), D("22.25"))]  # 0.50 + 1.75 + 20.00
    others = [i for i in invoicing.store.invoices(period=SEPT) if i.customer_id != customer_id]
    assert others and all(amount == quantity == 0 for i in others for _kind, quantity, amount in payout_lines(i))

    late = ("p6", SEPTEMBER + 19 * DAY, D(1500))  # 22.50 + 0.25 = 22.75 -> 20.00, after September was finalized
    insert_payouts(world, customer_id, [late])
    insert_rollups(world, customer_id, [*PAYOUT_EVENTS, late], version=2)
    october = next(i for i in invoicing.run_period("2026-10", now=SEPTEMBER + 62 * DAY).invoices if i.customer_id == customer_id)
    assert sorted(payout_lines(october)) == sorted([
        (LineKind.CORRECTION, D(1500), D("20.00")),
        (LineKind.USAGE, D(1000), D(0)),  # p-oct is October's first payout: free
    ])
