"""Plan changes inside a cycle paid in advance: credit notes for the unused part, the prorated
difference billed (:mod:`billing.core.invoicing.prepaid`).

Golden: an upgrade and a downgrade in the middle of a yearly in-advance period, hand-computed. The
properties: for any sequence of plan changes, each known in the month it takes effect, on the
calendar or the anniversary of any start, the fee seconds billed on the invoices plus those settled
sum, plan by plan, to the seconds of service, each once; and no credit exceeds what was billed for
that plan's fee.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.invoicing import cycles as cycle_rules
from billing.core.invoicing.credit_notes import credit_notes
from billing.core.invoicing.cycles import REACH, cycle_fees
from billing.core.invoicing.prepaid import charge_lines, credit_description, credits, settle
from billing.core.invoicing.timeline import SubscriptionChange
from billing.core.pricing import load_catalog
from billing.core.pricing.engine import price_cycle_fee
from billing.core.pricing.proration import Period, cycle, month_period

PLANS = """
plans:
  - {id: basic, name: Basic, currency: USD, charges: [{id: fee, name: Fee, model: flat, amount: 30.00, pay_in_advance: true}]}
  - {id: pro, name: Pro, currency: USD, charges: [{id: fee, name: Fee, model: flat, amount: 90.00, pay_in_advance: true}]}
  - {id: basic_y, product: basic, name: Basic yearly, currency: USD, interval: year,
     charges: [{id: fee, name: Fee, model: flat, amount: 365.00, pay_in_advance: true}]}
  - {id: pro_y, product: pro, name: Pro yearly, currency: USD, interval: year,
     charges: [{id: fee, name: Fee, model: flat, amount: 730.00, pay_in_advance: true}]}
"""
YEAR = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
SIGNED = datetime(2025, 12, 15, tzinfo=UTC)
"""When the subscriptions below were signed, for service from 1 January."""


def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("plans") / "plans.yaml"
    path.write_text(PLANS)
    return load_catalog([path])


def change(seq: int, when: datetime, plan: str, interval: str = "year", status: str = "active",
           end: datetime | None = None, start: datetime = YEAR.start, time: str = "calendar") -> SubscriptionChange:
    return SubscriptionChange("sub-1", seq, plan, status, start, end, when, interval, time)


def month(text: str) -> Period:
    return month_period(datetime.fromisoformat(f"{text}-01T00:00:00+00:00"))


def known(changes, period):
    return [c for c in changes if c.effective_time < period.end]


def test_upgrade_in_the_middle_of_a_yearly_period(tmp_path_factory):
    """Basic yearly (365.00 in advance) from 1 January 2026, billed on December 2025's invoice.
    Upgraded to Pro yearly (730.00) on 1 July: 181 days used, 184 unused. July's settlement credits
    Basic 365 x 184/365 = 184.00 (credit note on December's invoice) and bills Pro for the rest of
    the year, 730 x 184/365 = 368.00: the prorated difference, 184.00."""
    plans = catalog(tmp_path_factory)
    changes = [change(1, SIGNED, "basic"), change(2, datetime(2026, 7, 1, tzinfo=UTC), "pro")]
    def plan_of(product, interval):
        return plans.plan_for(product, "USD", interval)
    assert [price_cycle_fee(f).amount for f in cycle_fees(known(changes, month("2025-12")), month("2025-12"), plan_of)] == [
        Decimal("365.00")]
    for quiet in ("2026-01", "2026-06", "2026-08"):
        assert settle(known(changes, month(quiet)), month(quiet), plan_of) == []
    july = settle(known(changes, month("2026-07")), month("2026-07"), plan_of)
    [credit] = credits(july)
    assert (credit.plan.id, credit.delta, credit.billed_on) == ("basic_y", Decimal("-184.00"), month("2025-12"))
    assert credit_description(credit) == "Unused Fee of Basic yearly (2026-01-01 to 2027-01-01): 184.00 of 365.00 days"
    [line] = charge_lines(july)
    assert (line.plan_id, line.charge_id, line.amount) == ("pro_y", "fee", Decimal("368.00"))
    assert line.description == "Fee of Pro yearly after a plan change, 184.00 of 365.00 days (2026-01-01 to 2027-01-01, in advance)"
    assert sum(c.delta for c in july) == Decimal("184.00")


def test_downgrade_in_the_middle_of_a_yearly_period(tmp_path_factory):
    """Pro yearly (730.00 in advance) from 1 January 2026, downgraded to Basic yearly on 1 October:
    273 days used, 92 unused. October credits Pro 730 x 92/365 = 184.00 and bills Basic
    365 x 92/365 = 92.00: 92.00 back to the customer."""
    plans = catalog(tmp_path_factory)
    changes = [change(1, SIGNED, "pro"), change(2, datetime(2026, 10, 1, tzinfo=UTC), "basic")]
    def plan_of(product, interval):
        return plans.plan_for(product, "USD", interval)
    october = settle(known(changes, month("2026-10")), month("2026-10"), plan_of)
    assert [(c.plan.id, c.seconds_before, c.seconds_now, c.amount_before, c.amount_now) for c in october] == [
        ("basic_y", 0, 92 * 86_400, Decimal(0), Decimal("92.00")),
        ("pro_y", 365 * 86_400, 273 * 86_400, Decimal("730.00"), Decimal("546.00"))]
    assert [c.delta for c in credits(october)] == [Decimal("-184.00")]
    assert [line.amount for line in charge_lines(october)] == [Decimal("92.00")]


def test_a_cancellation_credits_the_unused_months(tmp_path_factory):
    """Basic yearly canceled on 1 March with service ending then: 306 of 365 days unused, 306.00."""
    plans = catalog(tmp_path_factory)
    end = datetime(2026, 3, 1, tzinfo=UTC)
    changes = [change(1, SIGNED, "basic"), change(2, end, "basic", status="canceled", end=end)]
    def plan_of(product, interval):
        return plans.plan_for(product, "USD", interval)
    march = settle(known(changes, month("2026-03")), month("2026-03"), plan_of)
    assert [(c.delta, c.days) for c in march] == [(Decimal("-306.00"), "306.00 of 365.00 days")]
    assert charge_lines(march) == []
    [note] = credit_notes("cus-1", "USD", march, month("2026-03"), end, iter(["CN-1"]))
    assert (note.id, note.number, note.invoice_id, note.total) == ("cn-inv-cus-1-202512-202603", "CN-1", "inv-cus-1-202512",
                                                                   Decimal("306.00"))
    assert note.lines[0].quantity == Decimal("0.838356164"), "306 / 365 of the cycle, at the contract's 9 decimals"
    assert credit_notes("cus-1", "USD", march, month("2026-03"), end, iter([]), frozenset({note.id})) == []


def test_a_cycle_known_only_once_it_began_is_billed_the_month_after(tmp_path_factory):
    """Basic yearly starting (and recorded) at 1 January 00:00: December's run did not know it and
    January's invoice is not the one of its billing point, so January settles it: the whole year."""
    plans = catalog(tmp_path_factory)
    changes = [change(1, YEAR.start, "basic")]
    def plan_of(product, interval):
        return plans.plan_for(product, "USD", interval)
    assert cycle_fees(known(changes, month("2026-01")), month("2026-01"), plan_of) == []
    [line] = charge_lines(settle(known(changes, month("2026-01")), month("2026-01"), plan_of))
    assert (line.amount, line.description) == (Decimal("365.00"), "Fee of Basic yearly not billed before: known after the "
                                               "cycle was due, 365.00 of 365.00 days (2026-01-01 to 2027-01-01, in advance)")


SPAN_S = 330 * 86_400


@settings(max_examples=60, deadline=None)
@given(interval=st.sampled_from(["month", "year"]), time=st.sampled_from(["calendar", "anniversary"]),
       begin=st.sampled_from([YEAR.start, datetime(2026, 1, 31, 7, 30, tzinfo=UTC), datetime(2026, 8, 29, tzinfo=UTC)]),
       moves=st.lists(st.tuples(st.integers(1, SPAN_S - 1), st.sampled_from(["basic", "pro"])), max_size=6),
       cancel=st.one_of(st.none(), st.integers(1, SPAN_S)), early=st.booleans())
def test_fee_seconds_are_billed_once_and_credits_never_exceed_what_was_prepaid(tmp_path_factory, interval, time, begin,
                                                                               moves, cancel, early):
    """Service from ``begin`` (signed 17 days before when ``early``) to a cancellation or, without one,
    to ``horizon``, the end of the cycle the last move can fall in (cycles from ``horizon`` on are not counted).
    Each month settles the same when every cycle within reach is read instead of those meeting its start."""
    plans = catalog(tmp_path_factory)
    def plan_of(product, interval_):
        return plans.plan_for(product, "USD", interval_)
    def at(seq, when, plan, status="active", end=None):
        return change(seq, when, plan, interval, status, end, begin, time)
    changes = [at(1, begin - timedelta(days=17) if early else begin, "basic")]
    for seq, (offset, plan) in enumerate(sorted(moves), start=2):
        changes.append(at(seq, begin + timedelta(seconds=offset), plan))
    horizon = cycle(interval, begin, begin + timedelta(seconds=SPAN_S), time).end
    end = horizon if cancel is None else begin + timedelta(seconds=cancel)
    changes = [c for c in changes if c.effective_time < end]
    if cancel is not None:
        changes.append(at(len(changes) + 1, end, changes[-1].plan_id, "canceled", end))
    served: dict[str, int] = defaultdict(int)
    for low, high in pairwise(sorted({begin, end, *(c.effective_time for c in changes if c.effective_time > begin)})):
        plan = max((c for c in changes if c.effective_time <= low), key=lambda c: c.sequence).plan_id
        served[plan_of(plan, interval).id] += int((high - low).total_seconds())
    billed_s: dict[str, int] = defaultdict(int)
    prepaid: dict[tuple, Decimal] = defaultdict(Decimal)
    period = month_period(begin - timedelta(days=17))
    while period.start < horizon:  # every cycle that starts before the horizon is billed by then
        now = known(changes, period)
        for fee in cycle_fees(now, period, plan_of):
            if fee.cycle.start < horizon:
                billed_s[fee.plan.id] += fee.part.seconds
                prepaid[(fee.cycle, fee.plan.id)] += price_cycle_fee(fee).amount
        settlements = settle(now, period, plan_of)
        with patch.object(cycle_rules, "cycle_window", lambda _changes, low, high: Period(low - REACH, high + REACH)):
            assert settlements == settle(now, period, plan_of), "the cycles meeting the month's start settle it all"
        for settled in settlements:
            key = (settled.cycle, settled.plan.id)
            billed_s[settled.plan.id] += settled.seconds_now - settled.seconds_before
            if settled.delta < 0:
                assert -settled.delta <= prepaid[key], "a credit exceeds what was prepaid"
            prepaid[key] += settled.delta
        period = month_period(period.end)
    assert {p: s for p, s in billed_s.items() if s} == {p: s for p, s in served.items() if s}
    assert all(amount >= 0 for amount in prepaid.values())
