"""Business streams of the simulated billing system: customers and subscriptions.

The simulator simulates the world the billing engine bills; it never writes invoices (the engine
owns them) nor payments (:mod:`producers.payers` pays the invoices the engine finalized). These
are low volume (a few events per customer and month), so they are built as validated contract
models. :func:`account_events` returns every event of every customer up to ``end``,
sorted by event time, for the simulator to interleave with the usage stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing.core.contracts import (
    BillingInterval,
    BillingTime,
    Contract,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)
from billing.core.pricing.proration import cycle
from producers import world as cat
from producers.customers import CustomerProfile
from producers.usage import us_of

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """One business event ready to send."""

    time_us: int
    topic: str
    key: bytes
    model: Contract


class _Account:
    """The timeline of one customer, generated with its own random stream."""

    def __init__(self, profile: CustomerProfile, seed: int, start: datetime, end: datetime):
        self.p = profile
        self.rng = random.Random(f"account:{seed}:{profile.index}")
        self.start, self.end = start, end
        self.key = profile.id.encode()
        self.events: list[AccountEvent] = []
        self.sub_seq = 0
        self.sub_id = f"sub-{profile.id.removeprefix('cus-')}"
        segment = cat.SEGMENTS[profile.record.segment.value]
        self.plan = self.rng.choice(segment[1])
        self.interval = BillingInterval.YEAR if self.rng.random() < cat.YEARLY_SHARE else BillingInterval.MONTH
        self.signup = profile.record.signup_time
        # its own stream, so the other draws (plans, changes, cancellations) stay as they were
        chosen = random.Random(f"billing-time:{seed}:{profile.index}").random() < cat.ANNIVERSARY_SHARE
        self.billing_time = BillingTime.ANNIVERSARY if chosen else BillingTime.CALENDAR

    def emit(self, when: datetime, topic: str, model: Contract) -> None:
        if when < self.end:
            self.events.append(AccountEvent(us_of(when), topic, self.key, model))

    def subscription(self, kind: SubscriptionEventType, status: SubscriptionStatus, when: datetime,
                     previous_plan: str | None = None, end_time: datetime | None = None) -> None:
        self.sub_seq += 1
        self.emit(when, "subscriptions", SubscriptionEvent(
            event_id=f"{self.sub_id}-{self.sub_seq}", subscription_id=self.sub_id, customer_id=self.p.id,
            type=kind, sequence=self.sub_seq, plan_id=self.plan, previous_plan_id=previous_plan,
            billing_interval=self.interval, billing_time=self.billing_time, status=status, start_time=self.signup, end_time=end_time,
            effective_time=when, event_time=when,
        ))

    def run(self) -> list[AccountEvent]:
        rng = self.rng
        self.emit(self.signup, "customers", self.p.record)
        trial_end = self.signup + timedelta(days=cat.TRIAL_DAYS)
        self.subscription(SubscriptionEventType.CREATED, SubscriptionStatus.TRIALING, self.signup)
        self.subscription(SubscriptionEventType.STATUS_CHANGED, SubscriptionStatus.ACTIVE, trial_end)
        months = max((self.end - self.start) / (30 * DAY), 0)
        changes = sorted(self.start + (self.end - self.start) * rng.random()
                         for _ in range(_poisson(rng, cat.PLAN_CHANGE_RATE * months)))
        cancel_at = (self.start + (self.end - self.start) * rng.random()
                     if rng.random() < 1 - (1 - cat.CANCEL_RATE) ** months else None)
        for when in changes:
            if cancel_at is not None and when >= cancel_at:
                break
            previous = self.plan
            index = cat.PLAN_ORDER.index(previous)
            step = 1 if index == 0 or (index < len(cat.PLAN_ORDER) - 1 and rng.random() < 0.7) else -1
            self.plan = cat.PLAN_ORDER[index + step]
            self.subscription(SubscriptionEventType.PLAN_CHANGED, SubscriptionStatus.ACTIVE, when, previous)
        if cancel_at is not None:  # service runs to the end of the billing cycle, as the engine bills it
            service_end = cycle(self.interval.value, self.signup, cancel_at, self.billing_time.value).end
            self.subscription(SubscriptionEventType.CANCELED, SubscriptionStatus.CANCELED, cancel_at,
                              end_time=service_end)
        return self.events


def _poisson(rng: random.Random, mean: float) -> int:
    """Number of events of a Poisson process with the given mean (Knuth's method; small means)."""
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def account_events(customers: list[CustomerProfile], seed: int, start: datetime, end: datetime) -> list[AccountEvent]:
    """Every customer and subscription event before ``end``, sorted by time."""
    events: list[AccountEvent] = []
    for profile in customers:
        events.extend(_Account(profile, seed, start, end).run())
    events.sort(key=lambda e: (e.time_us, e.key))
    return events
