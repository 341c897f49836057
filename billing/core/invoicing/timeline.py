"""Which plan a customer was billable on, when: subscription events -> plan spans of a period.

Rules (documented in the README's invoicing section):

- a subscription's state at time ``t`` is its last event (by effective time, then sequence) with
  ``effective_time <= t``; nothing is billed before the first event or ``start_time``;
- ``active`` and ``past_due`` are billable; ``trialing`` is not (trials are free);
- ``canceled`` keeps the billability it had and ends at the event's ``end_time`` (service runs to
  the end of the paid cycle); nothing is billed after ``end_time``;
- a ``plan_changed`` event switches the plan at its effective time: the period gets one span per
  plan, and flat fees are prorated by the second over each span (usage is never prorated);
- each span carries the subscription's billing interval (``month`` or ``year``, which selects the
  catalog plan), its billing time (``calendar`` or ``anniversary``) and its ``start_time`` (the
  anchor of its anniversary cycles).

Consecutive intervals on the same plan, interval and billing time of the same subscription merge into one span. Event times
are truncated to the whole second (proration is by the second), so the spans of a continuous
subscription always add up to the whole period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from billing.core.pricing.proration import Period

BILLABLE = frozenset({"active", "past_due"})
NOT_BILLABLE = frozenset({"trialing"})


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """The fields of a subscription event the timeline needs."""

    subscription_id: str
    sequence: int
    plan_id: str
    status: str
    start_time: datetime
    end_time: datetime | None
    effective_time: datetime
    billing_interval: str = "month"
    billing_time: str = "calendar"


@dataclass(frozen=True, slots=True)
class PlanSpan:
    """A subscription billable on ``plan_id`` (a product id) every ``interval`` during ``[start, end)``,
    its cycles starting on the ``billing_time``; ``anchor`` is when the subscription started (the
    anniversary of its cycles)."""

    subscription_id: str
    plan_id: str
    start: datetime
    end: datetime
    interval: str = "month"
    anchor: datetime | None = None
    billing_time: str = "calendar"

    @property
    def anniversary(self) -> bool:
        """Whether the span's fees are billed per anniversary cycle."""
        return self.billing_time == "anniversary"

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)


def plan_spans(changes: Iterable[SubscriptionChange], period: Period) -> list[PlanSpan]:
    """The billable plan spans of ``period``, ordered by start, from all of a customer's subscriptions."""
    by_subscription: dict[str, list[SubscriptionChange]] = defaultdict(list)
    for change in changes:
        by_subscription[change.subscription_id].append(change)
    spans: list[PlanSpan] = []
    for subscription_id in sorted(by_subscription):
        spans.extend(_subscription_spans(by_subscription[subscription_id], period))
    return sorted(spans, key=lambda span: (span.start, span.subscription_id))


def _second(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=0)


def _subscription_spans(changes: list[SubscriptionChange], period: Period) -> list[PlanSpan]:
    """One sweep over the change points in the period, carrying the state and billability forward."""
    timeline = sorted(((_second(c.effective_time), c.sequence, _second(c.start_time), _second(c.end_time), c) for c in changes),
                      key=lambda item: (item[0], item[1]))
    moments = {period.start, period.end}
    for effective, _, started, ended, _ in timeline:
        moments.update(t for t in (effective, started, ended) if t is not None and period.start < t < period.end)
    cuts = sorted(moments)
    spans: list[PlanSpan] = []
    position, state, billable = 0, None, False
    for low, high in pairwise(cuts):
        while position < len(timeline) and timeline[position][0] <= low:
            state = timeline[position]
            status = state[4].status
            billable = True if status in BILLABLE else False if status in NOT_BILLABLE else billable
            position += 1
        if state is None or not billable or low < state[2] or (state[3] is not None and low >= state[3]):
            continue
        change = state[4]
        last = spans[-1] if spans else None
        same = last is not None and (last.plan_id, last.interval, last.billing_time) == (
            change.plan_id, change.billing_interval, change.billing_time)
        if same and last.end == low:
            spans[-1] = PlanSpan(last.subscription_id, last.plan_id, last.start, high, last.interval, last.anchor,
                                 last.billing_time)
        else:
            spans.append(PlanSpan(change.subscription_id, change.plan_id, low, high, change.billing_interval, state[2],
                                  change.billing_time))
    return spans
