"""Billing intervals and timing: hand-computed invoices (golden) and the exactly-once rule for fees.

Golden invoices: monthly in arrears, monthly in advance, yearly in advance with monthly usage (on
the anniversary and on the calendar), monthly on the anniversary across short months. The
property: for any sequence of plan changes, on the calendar or the anniversary, the fee seconds the
monthly invoices bill add up, plan by plan, to the seconds of service, each second once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.invoicing import compose
from billing.core.invoicing.cycles import billing_point, cycle_fees, cycle_groups
from billing.core.invoicing.periods import parse_period
from billing.core.invoicing.timeline import SubscriptionChange, plan_spans
from billing.core.pricing import builtin_catalog, load_catalog
from billing.core.pricing.proration import Period, month_period

UTC = UTC
CATALOG = builtin_catalog()
US = compose.BillingCustomer("cus-1", "USD", "US")


def change(seq: int, when: datetime, plan: str, interval: str = "month", status: str = "active",
           start: datetime | None = None, end: datetime | None = None, time: str = "calendar") -> SubscriptionChange:
    return SubscriptionChange("sub-1", seq, plan, status, start or when, end, when, interval, time)


def invoice(month: str, changes: list[SubscriptionChange], usage: dict[str, Decimal], catalog=CATALOG, customer=US):
    """The invoice of ``month`` as the run prices it: the changes known when the month closed."""
    period = parse_period(month)
    known = [c for c in changes if c.effective_time < period.end]
    spans = plan_spans(known, period)
    def plan_of(product, interval):
        return catalog.plan_for(product, customer.currency, interval)
    return compose.price(period, customer, spans, [usage] + [{}] * (len(spans) - 1), catalog,
                         cycle_fees=cycle_fees(known, period, plan_of))


def lines(priced) -> list[tuple[str, str, Decimal]]:
    return [(line.plan_id, line.charge_id, line.amount) for line in priced.lines]


def test_monthly_in_arrears():
    """Starter, all of September: 29.00 fee; 150,000 calls - 100,000 free = 50,000 x 0.0004 = 20.00;
    12 GB - 10 free = 2 x 0.09 = 0.18. Total 49.18 (US, no tax)."""
    changes = [change(1, datetime(2025, 1, 10, 8, tzinfo=UTC), "starter")]
    priced = invoice("2026-09", changes, {"api_calls": Decimal(150_000), "bandwidth_gb": Decimal(12)})
    assert lines(priced) == [("starter", "platform_fee", Decimal("29.00")), ("starter", "api_calls", Decimal("20.00")),
                             ("starter", "bandwidth", Decimal("0.18"))]
    assert priced.total == Decimal("49.18")


ADVANCE = """
plans:
  - id: pro
    name: Pro
    currency: USD
    charges:
      - {id: fee, model: flat, amount: 30.00, pay_in_advance: true}
      - {id: calls, model: per_unit, meter: api_calls, unit_price: 0.01}
"""


def test_monthly_in_advance(tmp_path):
    """Pro (30.00 a month in advance, 0.01 a call) from 11 September 00:00. September's invoice bills
    the rest of September, 20 of 30 days = 20.00, and all of October in advance, 30.00, plus
    September's 1,000 calls in arrears, 10.00: 60.00. October's bills November, 30.00, and
    October's 500 calls, 5.00: 35.00."""
    (tmp_path / "pro.yaml").write_text(ADVANCE)
    catalog = load_catalog([tmp_path / "pro.yaml"])
    changes = [change(1, datetime(2026, 9, 11, tzinfo=UTC), "pro")]
    september = invoice("2026-09", changes, {"api_calls": Decimal(1000)}, catalog)
    assert lines(september) == [("pro", "calls", Decimal("10.00")), ("pro", "fee", Decimal("20.00")), ("pro", "fee", Decimal("30.00"))]
    assert [line.description for line in september.lines[1:]] == [
        "fee (2026-09-01 to 2026-10-01, in advance)", "fee (2026-10-01 to 2026-11-01, in advance)"]
    assert september.total == Decimal("60.00")
    october = invoice("2026-10", changes, {"api_calls": Decimal(500)}, catalog)
    assert lines(october) == [("pro", "calls", Decimal("5.00")), ("pro", "fee", Decimal("30.00"))]
    assert october.total == Decimal("35.00")


def test_yearly_in_advance_with_monthly_usage():
    """Starter yearly (290.00 a year in advance) on its anniversary, started 10 March 2025 08:00: its
    years run from 10 March 00:00. The first year is billed on March 2025's invoice for the time from 08:00:
    290 x (31,536,000 - 28,800) / 31,536,000 = 289.7351... = 289.74; the second, whole, on March
    2026's. Usage is billed every month: February 2026 bills only its 120,000 calls, 20,000 x 0.0004
    = 8.00."""
    started = datetime(2025, 3, 10, 8, tzinfo=UTC)
    changes = [change(1, started, "starter", "year", time="anniversary")]
    first = invoice("2025-03", changes, {})
    assert lines(first) == [("starter_yearly", "api_calls", Decimal("0.00")), ("starter_yearly", "bandwidth", Decimal("0.00")),
                            ("starter_yearly", "platform_fee", Decimal("289.74"))]
    february = invoice("2026-02", changes, {"api_calls": Decimal(120_000)})
    assert lines(february) == [("starter_yearly", "api_calls", Decimal("8.00")), ("starter_yearly", "bandwidth", Decimal("0.00"))]
    march = invoice("2026-03", changes, {"api_calls": Decimal(120_000)})
    assert lines(march) == [("starter_yearly", "api_calls", Decimal("8.00")), ("starter_yearly", "bandwidth", Decimal("0.00")),
                            ("starter_yearly", "platform_fee", Decimal("290.00"))]
    assert march.lines[-1].description == "Starter platform fee (yearly) (2026-03-10 to 2027-03-10, in advance)"
    billed = [invoice(month, changes, {}) for month in months(datetime(2025, 3, 1, tzinfo=UTC), 24)]
    assert [f"{priced.period.start:%Y-%m}" for priced in billed for line in priced.lines if line.charge_id == "platform_fee"] == [
        "2025-03", "2026-03"]


def fees(changes: list[SubscriptionChange], first: datetime, count: int, catalog=CATALOG) -> list[tuple[str, str, Decimal]]:
    """``(month, fee line description, amount)`` of the fee lines of ``count`` monthly invoices from ``first``."""
    return [(month, line.description, line.amount) for month in months(first, count)
            for line in invoice(month, changes, {}, catalog).lines if line.meter is None]


def test_yearly_on_the_anniversary_bills_from_the_start_date():
    """Starter yearly (290.00 in advance) on its anniversary, started 15 June 2026 10:00: its years run
    15 June to 14 June (15 June 00:00 to the next 15 June 00:00). June 2026's invoice bills the first
    for the time from 10:00, 290 x (31,536,000 - 36,000) / 31,536,000 = 289.6689... = 289.67; June
    2027's the second, whole; no other month bills a fee."""
    changes = [change(1, datetime(2026, 6, 15, 10, tzinfo=UTC), "starter", "year", time="anniversary")]
    assert fees(changes, datetime(2026, 6, 1, tzinfo=UTC), 13) == [
        ("2026-06", "Starter platform fee (yearly) (2026-06-15 to 2027-06-15, in advance)", Decimal("289.67")),
        ("2027-06", "Starter platform fee (yearly) (2027-06-15 to 2028-06-15, in advance)", Decimal("290.00"))]


def test_yearly_on_the_calendar_bills_calendar_years():
    """The same subscription on the calendar (the default): June 2026's invoice bills the rest of
    2026, 200 days - 10 h = 17,244,000 of 31,536,000 s: 290 x 0.546803... = 158.5730... = 158.57;
    December's bills 2027 in advance (its cycle starts 1 January), 290.00."""
    changes = [change(1, datetime(2026, 6, 15, 10, tzinfo=UTC), "starter", "year")]
    assert fees(changes, datetime(2026, 6, 1, tzinfo=UTC), 13) == [
        ("2026-06", "Starter platform fee (yearly) (2026-01-01 to 2027-01-01, in advance)", Decimal("158.57")),
        ("2026-12", "Starter platform fee (yearly) (2027-01-01 to 2028-01-01, in advance)", Decimal("290.00"))]


def test_monthly_on_the_anniversary_across_short_months(tmp_path):
    """Started 31 January 2026 on the anniversary: the months run 31 Jan - 28 Feb (28 days; February
    has no 31st, so its last day), 28 Feb - 31 Mar (back to the 31st), 31 Mar - 30 Apr. Starter
    (29.00 in arrears) bills each month on the invoice of the calendar month it ends in: none in
    January, 29.00 each in February, March, April; usage stays per calendar month. Pro (30.00 in
    advance) from 31 January 12:00 bills, on January's invoice, the first month from 12:00:
    30 x (2,419,200 - 43,200) / 2,419,200 = 29.4642... = 29.46, then each month on the invoice of the
    month it starts in: 28 Feb in February, 31 Mar in March."""
    started = datetime(2026, 1, 31, tzinfo=UTC)
    arrears = [change(1, started, "starter", time="anniversary")]
    assert fees(arrears, started, 4) == [
        ("2026-02", "Starter platform fee (2026-01-31 to 2026-02-28, in arrears)", Decimal("29.00")),
        ("2026-03", "Starter platform fee (2026-02-28 to 2026-03-31, in arrears)", Decimal("29.00")),
        ("2026-04", "Starter platform fee (2026-03-31 to 2026-04-30, in arrears)", Decimal("29.00"))]
    february = invoice("2026-02", arrears, {"api_calls": Decimal(150_000)})
    assert lines(february)[0] == ("starter", "api_calls", Decimal("20.00"))
    (tmp_path / "pro.yaml").write_text(ADVANCE)
    catalog = load_catalog([tmp_path / "pro.yaml"])
    advance = [change(1, started + timedelta(hours=12), "pro", start=started + timedelta(hours=12), time="anniversary")]
    assert fees(advance, started, 3, catalog) == [
        ("2026-01", "fee (2026-01-31 to 2026-02-28, in advance)", Decimal("29.46")),
        ("2026-02", "fee (2026-02-28 to 2026-03-31, in advance)", Decimal("30.00")),
        ("2026-03", "fee (2026-03-31 to 2026-04-30, in advance)", Decimal("30.00"))]


def months(first: datetime, count: int) -> list[str]:
    """``count`` consecutive months from ``first``, as ``YYYY-MM``."""
    found, month = [], month_period(first)
    for _ in range(count):
        found.append(f"{month.start:%Y-%m}")
        month = month_period(month.end)
    return found


ARREARS = """
plans:
  - {id: small, name: Small, currency: USD, charges: [{id: fee, model: flat, amount: 10.00}]}
  - {id: big, name: Big, currency: USD, charges: [{id: fee, model: flat, amount: 70.00}]}
  - {id: small_y, product: small, name: Small yearly, currency: USD, interval: year, charges: [{id: fee, model: flat, amount: 100.00}]}
  - {id: big_y, product: big, name: Big yearly, currency: USD, interval: year, charges: [{id: fee, model: flat, amount: 700.00}]}
"""
START = datetime(2026, 1, 20, 7, 30, tzinfo=UTC)
SPAN_S = 300 * 86_400


@settings(max_examples=80, deadline=None)
@given(interval=st.sampled_from(["month", "year"]), time=st.sampled_from(["calendar", "anniversary"]),
       begin=st.sampled_from([START, datetime(2026, 1, 31, 7, 30, tzinfo=UTC), datetime(2027, 8, 31, tzinfo=UTC)]),
       moves=st.lists(st.tuples(st.integers(1, SPAN_S - 1), st.sampled_from(["small", "big"])), max_size=6),
       cancel=st.integers(1, SPAN_S))
def test_fee_seconds_billed_are_the_seconds_of_service_exactly_once(tmp_path_factory, interval, time, begin, moves, cancel):
    path = tmp_path_factory.mktemp("plans") / "plans.yaml"
    path.write_text(ARREARS)
    catalog = load_catalog([path])
    changes = [change(1, begin, "small", interval, time=time)]
    for seq, (offset, plan) in enumerate(sorted(moves), start=2):
        changes.append(change(seq, begin + timedelta(seconds=offset), plan, interval, start=begin, time=time))
    end = begin + timedelta(seconds=cancel)  # canceled then, effective at once
    changes = [c for c in changes if c.effective_time < end]
    changes.append(change(len(changes) + 1, end, changes[-1].plan_id, interval, "canceled", begin, end, time))
    served: dict[str, int] = {}
    points = sorted({begin, end, *(c.effective_time for c in changes if c.effective_time < end)})
    for low, high in pairwise(points):
        plan = max((c for c in changes if c.effective_time <= low), key=lambda c: c.sequence).plan_id
        served[plan] = served.get(plan, 0) + int((high - low).total_seconds())
    billed: dict[str, int] = {}
    month = month_period(begin)
    while month.start < end + timedelta(days=400):
        if not plan_spans(changes, month):  # nothing billable: the run bills no invoice
            month = month_period(month.end)
            continue
        priced = invoice(f"{month.start:%Y-%m}", changes, {}, catalog)
        for line in priced.lines:
            product = catalog.plan(line.plan_id).product_id
            billed[product] = billed.get(product, 0) + line.active.seconds
        month = month_period(month.end)
    assert billed == {plan: seconds for plan, seconds in served.items() if seconds}


def test_a_yearly_plan_in_arrears_bills_its_year_in_the_month_it_ends(tmp_path):
    """Small yearly in arrears on its anniversary from 20 January 2026 07:30: the year (from 20 January 00:00) is billed
    on January 2027's invoice for its 31,536,000 - 27,000 seconds of service: 100 x 0.99914... = 99.91."""
    (tmp_path / "plans.yaml").write_text(ARREARS)
    catalog = load_catalog([tmp_path / "plans.yaml"])
    changes = [change(1, START, "small", "year", time="anniversary")]
    billed = {month: invoice(month, changes, {}, catalog) for month in months(START, 13)}
    assert {month: lines(priced) for month, priced in billed.items() if priced.lines} == {
        "2027-01": [("small_y", "fee", Decimal("99.91"))]}
    assert billed["2027-01"].lines[0].active == Period(START, datetime(2027, 1, 20, tzinfo=UTC))


MIXED = ARREARS + """
  - {id: pro, name: Pro, currency: USD, charges: [{id: fee, model: flat, amount: 30.00, pay_in_advance: true}]}
  - {id: pro_y, product: pro, name: Pro yearly, currency: USD, interval: year,
     charges: [{id: fee, model: flat, amount: 300.00, pay_in_advance: true}]}
"""


@settings(max_examples=60, deadline=None)
@given(interval=st.sampled_from(["month", "year"]), time=st.sampled_from(["calendar", "anniversary"]),
       begin=st.sampled_from([START, datetime(2026, 1, 31, 7, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)]),
       moves=st.lists(st.tuples(st.integers(1, SPAN_S - 1), st.sampled_from(["small", "big", "pro"])), max_size=5),
       cancel=st.integers(1, 2 * SPAN_S))
def test_the_cycles_meeting_a_month_bill_what_every_cycle_would(tmp_path_factory, interval, time, begin, moves, cancel):
    """The invoice run reads only the cycles that meet the month (``touching``); every month bills the same
    fees as when every cycle within reach is grouped and filtered by its billing point."""
    path = tmp_path_factory.mktemp("plans") / "plans.yaml"
    path.write_text(MIXED)
    catalog = load_catalog([path])
    changes = [change(seq, begin + timedelta(seconds=offset), plan, interval, start=begin, time=time)
               for seq, (offset, plan) in enumerate(sorted(moves), start=2)]
    changes = [change(1, begin, "pro", interval, time=time), *changes]
    end = begin + timedelta(seconds=cancel)
    changes = [c for c in changes if c.effective_time < end]
    changes.append(change(len(changes) + 1, end, changes[-1].plan_id, interval, "canceled", begin, end, time))
    def plan_of(product, interval_):
        return catalog.plan_for(product, "USD", interval_)
    month = month_period(begin - timedelta(days=40))
    while month.start < end + timedelta(days=400):
        known = [c for c in changes if c.effective_time < month.end]
        every = [fee for (_, _, ahead), fees in cycle_groups(known, month, plan_of).items()
                 if month.start < billing_point(fees, ahead) <= month.end for fee in fees]
        assert cycle_fees(known, month, plan_of) == sorted(every, key=lambda f: (f.cycle.start, f.part.start, f.plan.id, f.charge.id))
        month = month_period(month.end)
