"""Business streams of the simulated billing system: customers, subscriptions, invoices, payments.

These are low volume (a few events per customer and month), so they are built as validated
contract models. :func:`account_events` returns every event of every customer up to ``end``,
sorted by event time, for the simulator to interleave with the usage stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from faker import Faker

from billing.core.contracts import (
    Adjustment,
    AdjustmentKind,
    BillingInterval,
    Contract,
    FailureReason,
    Invoice,
    InvoiceStatus,
    LineItem,
    LineKind,
    PaymentMethod,
    PaymentStatus,
    PaymentTransaction,
    ShippingDetails,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)
from billing.core.pricing.money import currency as currency_of
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


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    return moment.replace(year=moment.year + month // 12, month=month % 12 + 1)


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


class _Account:
    """The timeline of one customer, generated with its own random stream."""

    def __init__(self, profile: CustomerProfile, seed: int, start: datetime, end: datetime, fake: Faker):
        self.p = profile
        self.rng = random.Random(f"account:{seed}:{profile.index}")
        self.start, self.end = start, end
        self.fake = fake
        self.money = currency_of(profile.market.currency)
        self.key = profile.id.encode()
        self.events: list[AccountEvent] = []
        self.sub_seq = 0
        self.sub_id = f"sub-{profile.id.removeprefix('cus-')}"
        segment = cat.SEGMENTS[profile.record.segment.value]
        self.plan = self.rng.choice(segment[1])
        self.interval = BillingInterval.YEAR if self.rng.random() < cat.YEARLY_SHARE else BillingInterval.MONTH
        self.late_payer = self.rng.random() < cat.LATE_PAYER_SHARE
        self.coupon = self.rng.choice(cat.COUPON_PERCENTS) if self.rng.random() < cat.COUPON_SHARE else None
        self.cancel_at: datetime | None = None
        self.signup = profile.record.signup_time
        self.anchor = self.signup.replace(day=min(self.signup.day, 28), hour=0, minute=0, second=0)

    def emit(self, when: datetime, topic: str, model: Contract) -> None:
        if when < self.end:
            self.events.append(AccountEvent(us_of(when), topic, self.key, model))

    def subscription(self, kind: SubscriptionEventType, status: SubscriptionStatus, when: datetime,
                     previous_plan: str | None = None, end_time: datetime | None = None) -> None:
        self.sub_seq += 1
        self.emit(when, "subscriptions", SubscriptionEvent(
            event_id=f"{self.sub_id}-{self.sub_seq}", subscription_id=self.sub_id, customer_id=self.p.id,
            type=kind, sequence=self.sub_seq, plan_id=self.plan, previous_plan_id=previous_plan,
            billing_interval=self.interval, status=status, start_time=self.signup, end_time=end_time,
            effective_time=when, event_time=when,
        ))

    def status_change(self, status: SubscriptionStatus, when: datetime) -> None:
        """Dunning status change, unless the subscription was canceled by then."""
        if self.cancel_at is None or when < self.cancel_at:
            self.subscription(SubscriptionEventType.STATUS_CHANGED, status, when)

    def run(self) -> list[AccountEvent]:
        rng = self.rng
        self.emit(self.signup, "customers", self.p.record)
        trial_end = self.signup + timedelta(days=cat.TRIAL_DAYS)
        self.subscription(SubscriptionEventType.CREATED, SubscriptionStatus.TRIALING, self.signup)
        self.subscription(SubscriptionEventType.STATUS_CHANGED, SubscriptionStatus.ACTIVE, trial_end)
        months = max((self.end - self.start) / (30 * DAY), 0)
        changes = sorted(self.start + (self.end - self.start) * rng.random()
                         for _ in range(_poisson(rng, cat.PLAN_CHANGE_RATE * months)))
        self.cancel_at = cancel_at = (self.start + (self.end - self.start) * rng.random()
                     if rng.random() < 1 - (1 - cat.CANCEL_RATE) ** months else None)
        plan_at = [(self.signup, self.plan)]
        for when in changes:
            if cancel_at is not None and when >= cancel_at:
                break
            previous = self.plan
            index = cat.PLAN_ORDER.index(previous)
            step = 1 if index == 0 or (index < len(cat.PLAN_ORDER) - 1 and rng.random() < 0.7) else -1
            self.plan = cat.PLAN_ORDER[index + step]
            plan_at.append((when, self.plan))
            self.subscription(SubscriptionEventType.PLAN_CHANGED, SubscriptionStatus.ACTIVE, when, previous)
        step = 12 if self.interval is BillingInterval.YEAR else 1
        periods = []
        k = 0
        while (period_start := _add_months(self.anchor, k * step)) < self.end:
            k += 1
            periods.append((period_start, _add_months(self.anchor, k * step)))
        service_end = None
        if cancel_at is not None:
            service_end = next(pe for ps, pe in periods + [(cancel_at, cancel_at)] if pe >= cancel_at)
            self.subscription(SubscriptionEventType.CANCELED, SubscriptionStatus.CANCELED, cancel_at,
                              end_time=service_end)
        number = 0
        for period_start, period_end in periods:
            if service_end is not None and period_start >= service_end:
                break
            if period_end > max(self.start, trial_end) and period_end < self.end:
                number += 1
                self.invoice(number, period_start, period_end, plan_at)
        return self.events

    def invoice(self, number: int, period_start: datetime, period_end: datetime, plan_at) -> None:
        rng, money, market = self.rng, self.money, self.p.market
        yearly = self.interval is BillingInterval.YEAR
        lines: list[LineItem] = []
        segments = [(max(t, period_start), plan) for t, plan in plan_at if t < period_end]
        segments = [s for i, s in enumerate(segments) if i == len(segments) - 1 or segments[i + 1][0] > period_start]
        length = (period_end - period_start).total_seconds()
        for i, (since, plan) in enumerate(segments):
            until = segments[i + 1][0] if i + 1 < len(segments) else period_end
            fraction = (Decimal(int((until - since).total_seconds())) / Decimal(int(length))).quantize(Decimal("0.0001"))
            price = money.round(cat.PLANS[plan] * (10 if yearly else 1) * market.usd_rate)
            lines.append(LineItem(
                kind=LineKind.SUBSCRIPTION if fraction == 1 else LineKind.PRORATION, charge=plan,
                description=f"{plan} plan ({self.interval.value})", quantity=fraction, unit_price=price,
                amount=money.round(price * fraction),
            ))
        shipping = None
        if rng.random() < cat.ADD_ON_PROBABILITY:
            sku, name, usd = cat.ADD_ON
            price = money.round(usd * market.usd_rate)
            lines.append(LineItem(kind=LineKind.ADD_ON, charge=sku, description=name, quantity=Decimal(1),
                                  unit_price=price, amount=price))
            cost = money.round(Decimal(rng.randint(12, 40)) * market.usd_rate)
            lines.append(LineItem(kind=LineKind.SHIPPING, charge="shipping", description="Shipping",
                                  quantity=Decimal(1), unit_price=cost, amount=cost))
            shipped = period_end + timedelta(hours=rng.randint(4, 72))
            shipping = ShippingDetails(
                recipient=self.fake.name(), address_line=self.fake.street_address().replace("\n", ", "),
                city=self.fake.city(), postal_code=self.fake.postcode(), country=market.country,
                carrier=rng.choice(cat.CARRIERS), tracking_number=f"TRK{rng.getrandbits(40):012X}", cost=cost,
                shipped_at=shipped, delivered_at=shipped + timedelta(days=rng.randint(1, 9)),
            )
        subtotal = sum((line.amount for line in lines), Decimal(0))
        adjustments = []
        if self.coupon is not None and number <= 3:
            adjustments.append(Adjustment(
                id=f"adj-{self.p.index}-{number}", kind=AdjustmentKind.COUPON, code=f"WELCOME{self.coupon}",
                description=f"{self.coupon}% off the first three invoices", percent_off=Decimal(self.coupon),
                amount=money.round(subtotal * self.coupon / 100),
            ))
        elif rng.random() < cat.CREDIT_SHARE:
            adjustments.append(Adjustment(
                id=f"adj-{self.p.index}-{number}", kind=AdjustmentKind.CREDIT, description="Service credit",
                amount=min(subtotal, money.round(subtotal * Decimal("0.1"))),
            ))
        discount = sum((a.amount for a in adjustments), Decimal(0))
        tax = money.round((subtotal - discount) * market.tax_rate)
        issued = period_end + timedelta(minutes=rng.randint(1, 180))
        invoice_id = f"inv-{self.p.id.removeprefix('cus-')}-{period_end:%Y%m%d}"
        draft = dict(
            id=invoice_id, customer_id=self.p.id, subscription_id=self.sub_id, period_start=period_start,
            period_end=period_end, currency=market.currency, line_items=tuple(lines), subtotal=subtotal,
            adjustments=tuple(adjustments), discount_total=discount, tax_rate=market.tax_rate, tax=tax,
            total=subtotal - discount + tax, shipping=shipping,
            issued_at=issued, due_at=issued + timedelta(days=cat.PAYMENT_TERMS_DAYS),
        )
        finalized = Invoice(**draft, status=InvoiceStatus.FINALIZED, event_time=issued)
        self.emit(issued, "invoices", finalized)
        if rng.random() < cat.VOID_PROBABILITY:
            voided = issued + timedelta(hours=rng.randint(1, 48))
            self.emit(voided, "invoices", finalized.model_copy(
                update={"status": InvoiceStatus.VOID, "voided_at": voided, "event_time": voided}))
            return
        if finalized.total > 0:
            self.pay(finalized)

    def pay(self, invoice: Invoice) -> None:
        rng, market = self.rng, self.p.market
        if self.p.record.segment.value == "enterprise" and rng.random() < cat.ENTERPRISE_WIRE_SHARE:
            method = "wire"
        else:
            method = _weighted(rng, cat.METHODS_BY_CURRENCY.get(market.currency, cat.METHODS_DEFAULT))
        success_p = cat.LATE_PAYER_SUCCESS_PROBABILITY if self.late_payer else cat.SUCCESS_PROBABILITY
        when = (invoice.due_at + timedelta(days=rng.uniform(1, 20)) if self.late_payer
                else invoice.issued_at + timedelta(hours=rng.uniform(0.1, 72)))
        tx = f"pay-{invoice.id.removeprefix('inv-')}"
        seq = 0
        base = dict(id=tx, invoice_id=invoice.id, customer_id=self.p.id, method=PaymentMethod(method),
                    amount=invoice.total, currency=invoice.currency)

        def event(status: PaymentStatus, attempt: int, initiated: datetime, completed: datetime | None,
                  at: datetime, **extra) -> None:
            nonlocal seq
            seq += 1
            self.emit(at, "payments", PaymentTransaction(
                **base, event_id=f"{tx}-{seq}", status=status, attempt=attempt, sequence=seq,
                initiated_at=initiated, completed_at=completed, event_time=at, **extra))

        low, high = cat.PROCESSING_SECONDS[method]
        reasons = tuple(r for r in cat.FAILURE_REASONS if method == "card" or r[0] not in cat.CARD_ONLY_REASONS)
        for attempt in range(1, cat.MAX_ATTEMPTS + 1):
            when = when.replace(microsecond=0)
            done = when + timedelta(seconds=rng.randint(low, high))
            event(PaymentStatus.INITIATED, attempt, when, None, when)
            if rng.random() < success_p:
                event(PaymentStatus.SUCCEEDED, attempt, when, done, done)
                self.emit(done, "invoices", invoice.model_copy(
                    update={"status": InvoiceStatus.PAID, "paid_at": done, "event_time": done}))
                if attempt > 1:
                    self.status_change(SubscriptionStatus.ACTIVE, done)
                later = rng.random()
                if later < cat.REFUND_PROBABILITY:
                    refunded = done + timedelta(days=rng.uniform(1, 30))
                    share = rng.choice((Decimal(1), Decimal("0.5"), Decimal("0.25")))
                    event(PaymentStatus.REFUNDED, attempt, when, refunded, refunded,
                          refunded_amount=self.money.round(invoice.total * share))
                elif later < cat.REFUND_PROBABILITY + cat.DISPUTE_PROBABILITY:
                    disputed = done + timedelta(days=rng.uniform(5, 60))
                    event(PaymentStatus.DISPUTED, attempt, when, disputed, disputed)
                return
            reason = _weighted(rng, reasons)
            event(PaymentStatus.FAILED, attempt, when, done, done, failure_reason=FailureReason(reason))
            if attempt == 1:
                self.status_change(SubscriptionStatus.PAST_DUE, done)
            delay = timedelta(hours=rng.uniform(1, 6)) if reason == "network_error" else timedelta(days=rng.uniform(1, 5))
            when = done + delay


def _poisson(rng: random.Random, mean: float) -> int:
    """Number of events of a Poisson process with the given mean (Knuth's method; small means)."""
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def account_events(customers: list[CustomerProfile], seed: int, start: datetime, end: datetime) -> list[AccountEvent]:
    """Every customer, subscription, invoice and payment event before ``end``, sorted by time."""
    fake = Faker("en_US")
    fake.seed_instance(f"accounts:{seed}")
    events: list[AccountEvent] = []
    for profile in customers:
        events.extend(_Account(profile, seed, start, end, fake).run())
    events.sort(key=lambda e: (e.time_us, e.key))
    return events
