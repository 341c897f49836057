"""Settling fees paid in advance when the plan changes inside their cycle (pure).

A cycle billed in advance is billed as it was known then (:mod:`~billing.core.invoicing.cycles`).
When a later month brings a change that reaches into it (an upgrade, a downgrade, a cancellation
that ends service earlier, or a change undone), the invoice run of that month ``P`` compares, for
every cycle billed in advance before ``P``, each plan's fee as known at the start of ``P`` (what the
invoices billed so far, net of earlier settlements) with the fee as known at its end:

- a plan's fee that shrinks (its seconds of service in the cycle went down) is credited: the
  difference goes on a **credit note** linked to the invoice that billed the cycle;
- a plan's fee that grows (the new plan of an upgrade or downgrade, for the rest of the cycle) is
  billed on ``P``'s invoice, so an upgrade bills the prorated difference. So is a cycle that no
  invoice billed because the subscription became known only after the invoice due to bill it
  (one that starts at 00:00 on the 1st, recorded then: its cycle's billing point is the end of
  the previous month, whose run did not know it).

Amounts are priced like the invoice lines (:func:`~billing.core.pricing.engine.price_cycle_fee`,
each part rounded), so the settlements telescope: after any sequence of changes, the fee seconds
billed on invoices plus those settled add up, plan by plan, to the seconds of service, each second
once, and no credit exceeds what was billed for that plan's fee in that cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from billing.core.invoicing.cycles import billing_point, cycle_groups
from billing.core.invoicing.timeline import SubscriptionChange
from billing.core.pricing.charges import Step
from billing.core.pricing.engine import Line, price_cycle_fee
from billing.core.pricing.plans import FlatCharge, Plan
from billing.core.pricing.proration import Period, month_period

ZERO = Decimal(0)
DAY = 86_400


@dataclass(frozen=True, slots=True)
class PrepaidChange:
    """How one plan's prepaid fee in one cycle changed with what became known during a month."""

    subscription_id: str
    plan: Plan
    charge: FlatCharge
    cycle: Period
    billed_on: Period
    """The month whose invoice billed the cycle in advance."""
    seconds_before: int
    seconds_now: int
    amount_before: Decimal
    amount_now: Decimal
    late: bool = False
    """Nothing of the cycle was billed before: the subscription became known only after the invoice
    that bills the cycle in advance (e.g. one starting at 00:00 on the 1st, recorded then)."""

    @property
    def delta(self) -> Decimal:
        """Positive: billed on the month's invoice; negative: credited."""
        return self.amount_now - self.amount_before

    @property
    def days(self) -> str:
        return f"{abs(self.seconds_now - self.seconds_before) / DAY:.2f} of {self.cycle.seconds / DAY:.2f} days"


@dataclass(frozen=True, slots=True)
class _Billed:
    plan: Plan
    charge: FlatCharge
    billed_on: Period
    seconds: int
    amount: Decimal


Key = tuple[str, Period, str, str]
"""``(subscription id, cycle, plan id, charge id)``."""


def settle(changes: Sequence[SubscriptionChange], period: Period, plan_of: Callable[[str, str], Plan]) -> list[PrepaidChange]:
    """The prepaid fees of cycles billed before ``period`` that changed with the subscription events
    effective in ``period`` (``changes``: every event of one customer known when ``period`` is billed).

    Only the cycles containing ``period.start`` are compared (and only their plan spans read, see
    :func:`~billing.core.invoicing.cycles.cycle_window`): a cycle billed before ``period`` starts by
    then, and one that ends by then was served before any event of ``period`` took effect, so its fees
    are the same as known at the start and at the end."""
    if not any(period.start <= c.effective_time < period.end for c in changes):
        return []
    before = _billed_ahead([c for c in changes if c.effective_time < period.start], period, plan_of)
    now = _billed_ahead([c for c in changes if c.effective_time < period.end], period, plan_of)
    found = []
    cycles_before = {key[:2] for key in before}
    for key in sorted(set(before) | set(now), key=lambda k: (k[1].start, k[0], k[2], k[3])):
        old, new = before.get(key), now.get(key)
        if old is not None and new is not None and (old.seconds, old.amount) == (new.seconds, new.amount):
            continue
        known = old or new
        found.append(PrepaidChange(key[0], known.plan, known.charge, key[1], known.billed_on,
                                   old.seconds if old else 0, new.seconds if new else 0,
                                   old.amount if old else ZERO, new.amount if new else ZERO, key[:2] not in cycles_before))
    return found


def _billed_ahead(changes: Sequence[SubscriptionChange], period: Period, plan_of: Callable[[str, str], Plan]) -> dict[Key, _Billed]:
    """Per plan fee of every in-advance cycle containing ``period.start`` billed by the invoices before
    ``period``, as ``changes`` tell it."""
    billed: dict[Key, _Billed] = {}
    meeting = (period.start, period.start)
    for (subscription_id, cycle, in_advance), fees in cycle_groups(changes, period, plan_of, meeting=meeting).items():
        if not in_advance or cycle.end <= period.start:
            continue
        point = billing_point(fees, in_advance)
        if point > period.start:
            continue
        month = month_period(point - timedelta(seconds=1))
        for fee in fees:
            key = (subscription_id, cycle, fee.plan.id, fee.charge.id)
            previous = billed.get(key)
            seconds, amount = fee.part.seconds, price_cycle_fee(fee).amount
            if previous is not None:
                seconds, amount = seconds + previous.seconds, amount + previous.amount
            billed[key] = _Billed(fee.plan, fee.charge, month, seconds, amount)
    return billed


def charge_lines(settled: Sequence[PrepaidChange]) -> list[Line]:
    """The lines the month's invoice bills for the prepaid fees that grew."""
    return [_line(change) for change in settled if change.delta > 0]


def credits(settled: Sequence[PrepaidChange]) -> list[PrepaidChange]:
    """The prepaid fees that shrank: what credit notes credit."""
    return [change for change in settled if change.delta < 0]


def credit_description(change: PrepaidChange) -> str:
    """``Unused Platform fee of Pro (2026-01-01 to 2027-01-01): 184.00 of 365.00 days``."""
    return (f"Unused {change.charge.label} of {change.plan.name} ({change.cycle.start:%Y-%m-%d} to "
            f"{change.cycle.end:%Y-%m-%d}): {change.days}")


def _line(change: PrepaidChange) -> Line:
    """The line of a fee that grew; its service is the rest of the cycle the added seconds pay for."""
    fraction = Decimal(change.seconds_now - change.seconds_before) / Decimal(change.cycle.seconds)
    steps = (
        Step(f"{change.charge.label} for {change.seconds_now:,} s of the cycle as known now", change.amount_now,
             units=Decimal(change.seconds_now), unit_price=ZERO),
        Step(f"billed before for {change.seconds_before:,} s", -change.amount_before,
             units=Decimal(change.seconds_before), unit_price=ZERO),
    )
    why = "not billed before: known after the cycle was due" if change.late else "after a plan change"
    description = (f"{change.charge.label} of {change.plan.name} {why}, {change.days} "
                   f"({change.cycle.start:%Y-%m-%d} to {change.cycle.end:%Y-%m-%d}, in advance)")
    rest = Period(change.cycle.end - timedelta(seconds=change.seconds_now - change.seconds_before), change.cycle.end)
    return Line(change.plan.id, change.charge.id, description, change.charge.model, None, Decimal(1), change.delta,
                change.delta, steps, rest, fraction)
