"""Fees billed once per billing cycle: which of them a month's invoice bills.

A plan's fees are billed per *cycle* when the plan is yearly, the fee is paid in advance or the
subscription is billed on its anniversary (:meth:`~billing.core.pricing.plans.Plan.by_cycle`);
monthly fees in arrears on the calendar are prorated over the month's plan spans instead
(:mod:`~billing.core.invoicing.timeline`). Cycles follow the subscription's billing time
(:func:`~billing.core.pricing.proration.cycle`): calendar months and years, or months and years
from the anniversary of its start (31 January, 28/29 February, 31 March, ...).

Each cycle of a subscription is billed on exactly one monthly invoice, the one of the month ``M``
with ``M.start < point <= M.end``:

- **in advance**: ``point`` is when service on the cycle begins (its start, or later when the
  subscription starts or leaves its trial inside it). The invoice of the month that ends at the
  cycle's start bills it, so a monthly fee in advance for December is on November's invoice, and a
  yearly fee is billed once a year. What is billed is the cycle as known then: the plans the
  subscription is on from ``point`` to the end of the cycle (or to its known end of service);
- **in arrears**: ``point`` is when service on the cycle ends (the cycle's end, or the end of
  service). The cycle's plan spans are billed together then.

Every span of service inside a cycle is billed on its own plan for its own seconds, so the seconds
billed for a cycle are its seconds of service, once. Changes that become known after a cycle was
billed in advance (an upgrade, a downgrade, a cancellation with an earlier end) are settled by
:mod:`~billing.core.invoicing.prepaid`: a credit note for the unused part, the new plan's prorated
fee on the invoice of the month the change became known.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from billing.core.invoicing.timeline import SubscriptionChange, plan_spans
from billing.core.pricing.engine import CycleFee
from billing.core.pricing.plans import Plan
from billing.core.pricing.proration import Period, cycle

REACH = timedelta(days=400)
"""How far before and after the month :func:`cycle_groups` reads the timeline by default: a yearly cycle
billed this month starts or ends within it. Callers pass the narrower :func:`cycle_window` instead."""


MOMENT = timedelta(microseconds=1)
"""The smallest step of time: a cycle that starts at the month's end still meets the month."""

Group = tuple[str, Period, bool]
"""``(subscription id, cycle, in advance)``: the fees of one cycle billed together."""


def cycle_window(changes: Sequence[SubscriptionChange], low: datetime, high: datetime) -> Period:
    """The smallest range holding every billing cycle, of every subscription ``changes`` describe, that
    contains a moment of ``[low, high]``: a cycle's length, interval and anniversary come from one
    change (its ``billing_interval``, ``billing_time`` and ``start_time``), so the cycles containing
    ``low`` and ``high`` of each such combination bound them."""
    terms = {(c.billing_interval, c.start_time, c.billing_time) for c in changes}
    return Period(min(cycle(interval, anchor, low, time).start for interval, anchor, time in terms),
                  max(cycle(interval, anchor, high, time).end for interval, anchor, time in terms))


def cycle_groups(changes: Sequence[SubscriptionChange], period: Period, plan_of: Callable[[str, str], Plan], *,
                 touching: bool = False, meeting: tuple[datetime, datetime] | None = None) -> dict[Group, list[CycleFee]]:
    """Every per-cycle fee part near ``period`` as ``changes`` describe the subscriptions, grouped by the
    cycle they belong to; with ``touching``, only the cycles that meet ``period`` (bounds included),
    each still with every part of it.

    Near: within :data:`REACH`, or with ``meeting=(low, high)`` within the :func:`cycle_window` of
    ``[low, high]``. Plan spans are cut at those bounds, so a cycle reaching beyond them gets only
    its parts inside: callers name moments whose cycles hold every part they read."""
    groups: dict[Group, list[CycleFee]] = defaultdict(list)
    plans = {(c.plan_id, c.billing_interval, c.billing_time) for c in changes}
    if not any(plan_of(product, interval).by_cycle(charge, billing_time == "anniversary")
               for product, interval, billing_time in plans for charge in plan_of(product, interval).charges):
        return groups
    window = cycle_window(changes, *meeting) if meeting else Period(period.start - REACH, period.end + REACH)
    for span in plan_spans(changes, window):
        plan = plan_of(span.plan_id, span.interval)
        charges = [charge for charge in plan.charges if plan.by_cycle(charge, span.anniversary)]
        if not charges:
            continue
        anchor = span.anchor or span.start
        first = max(span.start, period.start) if touching else span.start
        last = min(span.end, period.end + MOMENT) if touching else span.end
        current = cycle(plan.interval, anchor, first, span.billing_time)
        while current.start < last:
            part = Period(max(current.start, span.start), min(current.end, span.end))
            for charge in charges:
                groups[(span.subscription_id, current, charge.pay_in_advance)].append(
                    CycleFee(plan, charge, current, part, charge.pay_in_advance))
            current = cycle(plan.interval, anchor, current.end, span.billing_time)
    return groups


def billing_point(fees: Sequence[CycleFee], in_advance: bool) -> datetime:
    """When the cycle of ``fees`` is billed: the invoice of the month ``M`` with ``M.start < point <= M.end``."""
    return min(f.part.start for f in fees) if in_advance else max(f.part.end for f in fees)


def cycle_fees(changes: Sequence[SubscriptionChange], period: Period, plan_of: Callable[[str, str], Plan]) -> list[CycleFee]:
    """The per-cycle fees the invoice of ``period`` bills, from one customer's subscription ``changes``
    (every change known when the period is billed; later ones are taken as not happening).
    ``plan_of(product, interval)`` is the catalog plan the customer is billed on."""
    billed: list[CycleFee] = []
    meeting = (period.start, period.end)  # every cycle that meets the month, whole
    for (_, _, in_advance), fees in cycle_groups(changes, period, plan_of, touching=True, meeting=meeting).items():
        if period.start < billing_point(fees, in_advance) <= period.end:
            billed.extend(fees)
    return sorted(billed, key=lambda f: (f.cycle.start, f.part.start, f.plan.id, f.charge.id))
