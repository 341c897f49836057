"""The pricing engine: pure, deterministic, Decimal-only.

``price_invoice(period, terms, ...)`` turns facts into an invoice:

1. each :class:`PlanTerm` (a plan active for part of the period, with the usage metered while it
   was active; a mid-period plan change gives two terms) yields one line per charge, rounded
   half-up to the currency's minor unit, each with the steps that computed it; fees billed once per
   billing cycle (yearly plans, fees paid in advance) come as :class:`CycleFee` items instead;
2. a plan's ``minimum_commitment`` (prorated like flat fees) adds a true-up line when the
   term's charges fall short of it;
3. corrections (already priced lines, e.g. late usage of an earlier invoice) join the subtotal;
4. coupons discount the subtotal, taxes apply to what is left, prepaid credits pay the total.

Nothing here reads clocks, files or networks: the same inputs always give the same invoice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from billing.core.errors import ConfigError
from billing.core.pricing import charges
from billing.core.pricing.adjustments import CouponGrant, DiscountLine, apply_coupons, apply_credits
from billing.core.pricing.charges import Step
from billing.core.pricing.money import Currency
from billing.core.pricing.plans import FlatCharge, Plan, TaxRule
from billing.core.pricing.proration import Period
from billing.core.pricing.tax import TaxLine, applicable_rules, compute_taxes

TRUE_UP = "minimum_commitment"
"""Charge id and model of the line that tops a term's charges up to the plan's minimum commitment."""

ZERO = Decimal(0)

Transactions = Mapping[str, Sequence[Decimal]]
"""Per meter, the amounts of its single events in event order."""


@dataclass(frozen=True, slots=True)
class PlanTerm:
    """A plan active during ``active`` (clipped to the period) and the usage metered meanwhile.

    ``fees_by_cycle``: leave out the fees the plan bills once per cycle (:meth:`Plan.by_cycle`), which
    the caller passes as :class:`CycleFee` items; otherwise every flat fee is prorated over ``active``.
    ``anniversary``: the subscription is billed on its anniversary, so every fee is billed per cycle.
    ``transactions``: per meter, the amounts of its single events in event order, for the charges that
    price each transaction (:attr:`~billing.core.pricing.plans.PercentageCharge.per_transaction`)."""

    plan: Plan
    active: Period
    usage: Mapping[str, Decimal] = field(default_factory=dict)
    fees_by_cycle: bool = False
    transactions: Transactions = field(default_factory=dict)
    anniversary: bool = False


@dataclass(frozen=True, slots=True)
class CycleFee:
    """The part ``part`` of billing cycle ``cycle`` of a fee billed per cycle: ``part / cycle`` of the fee."""

    plan: Plan
    charge: FlatCharge
    cycle: Period
    part: Period
    in_advance: bool


@dataclass(frozen=True, slots=True)
class TaxProfile:
    """The customer facts pricing needs: where they are taxed, and whether they are exempt."""

    country: str | None = None
    region: str | None = None
    tax_exempt: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice line: a charge (or a minimum-commitment true-up) and how it was computed."""

    plan_id: str
    charge_id: str
    description: str
    model: str
    meter: str | None
    quantity: Decimal
    amount: Decimal
    exact: Decimal
    steps: tuple[Step, ...]
    active: Period
    fraction: Decimal


@dataclass(frozen=True, slots=True)
class PricedInvoice:
    """The priced invoice: lines, discounts, taxes and totals, all in minor units of ``currency``."""

    currency: Currency
    period: Period
    lines: tuple[Line, ...]
    subtotal: Decimal
    discounts: tuple[DiscountLine, ...]
    taxable: Decimal
    taxes: tuple[TaxLine, ...]
    total: Decimal
    credits_applied: Decimal
    amount_due: Decimal
    coupons_applied: tuple[str, ...]

    @property
    def discount_total(self) -> Decimal:
        """Sum of all discounts."""
        return sum((d.amount for d in self.discounts), ZERO)

    @property
    def tax_total(self) -> Decimal:
        """Sum of all taxes."""
        return sum((t.amount for t in self.taxes), ZERO)


def price_term(period: Period, term: PlanTerm) -> list[Line]:
    """The lines one plan produces for its active part of ``period``."""
    plan, money = term.plan, term.plan.money
    fraction = period.fraction(term.active)
    active = Period(max(period.start, term.active.start), min(period.end, term.active.end)) if fraction else term.active
    for meter, quantity in term.usage.items():
        if quantity < 0:
            raise ConfigError(f"usage of meter {meter!r} is negative ({quantity}); usage must be >= 0")
    for meter, amounts in term.transactions.items():
        if any(amount < 0 for amount in amounts):
            raise ConfigError(f"a transaction of meter {meter!r} is negative ({min(amounts)}); amounts must be >= 0")
    lines: list[Line] = []
    for charge in plan.charges:
        if term.fees_by_cycle and plan.by_cycle(charge, term.anniversary):
            continue
        if isinstance(charge, FlatCharge):
            quantity, steps, meter = Decimal(1), charges.flat(charge, fraction), None
        else:
            quantity, steps = charges.usage_steps(charge, term.usage, term.transactions)
            meter = charge.meter
        exact = sum((step.amount for step in steps), ZERO)
        lines.append(
            Line(plan.id, charge.id, charge.label, charge.model, meter, quantity, money.round(exact), exact, tuple(steps), active, fraction)
        )
    if plan.minimum_commitment is not None:
        true_up = _minimum_true_up(plan, money, fraction, sum((line.amount for line in lines), ZERO), active)
        if true_up is not None:
            lines.append(true_up)
    return lines


def price_invoice(
    period: Period,
    terms: Sequence[PlanTerm],
    *,
    bill_to: TaxProfile = TaxProfile(),
    coupons: Iterable[CouponGrant] = (),
    credit_balance: Decimal = ZERO,
    tax_rules: Iterable[TaxRule] = (),
    corrections: Sequence[Line] = (),
    cycle_fees: Sequence[CycleFee] = (),
) -> PricedInvoice:
    """Price one customer's billing period (see the module docstring for the order of steps).

    ``corrections`` are lines priced elsewhere, in the invoice currency and already rounded;
    ``cycle_fees`` are the per-cycle fees this period's invoice bills (:class:`CycleFee`)."""
    if not terms:
        raise ConfigError("an invoice needs at least one plan term")
    money = terms[0].plan.money
    mixed = {term.plan.currency for term in terms} - {money.code}
    if mixed:
        raise ConfigError(f"plans of one invoice must share a currency: {money.code} and {', '.join(sorted(mixed))}")
    lines = [line for term in terms for line in price_term(period, term)]
    lines.extend(price_cycle_fee(fee) for fee in cycle_fees)
    lines.extend(corrections)
    subtotal = sum((line.amount for line in lines), ZERO)
    discounts = apply_coupons(coupons, subtotal, money)
    taxable = subtotal - sum((d.amount for d in discounts), ZERO)
    rules = [] if bill_to.tax_exempt else applicable_rules(tax_rules, bill_to.country, bill_to.region)
    taxes = compute_taxes(rules, taxable, money)
    total = taxable + sum((t.amount for t in taxes), ZERO)
    credits = apply_credits(money.round(credit_balance), total)
    return PricedInvoice(
        currency=money,
        period=period,
        lines=tuple(lines),
        subtotal=subtotal,
        discounts=tuple(discounts),
        taxable=taxable,
        taxes=tuple(taxes),
        total=total,
        credits_applied=credits,
        amount_due=total - credits,
        coupons_applied=tuple(d.coupon_id for d in discounts),
    )


def price_cycle_fee(fee: CycleFee) -> Line:
    """The line of one per-cycle fee: the fee times the share of its cycle the part covers."""
    fraction = fee.cycle.fraction(fee.part)
    steps = tuple(charges.flat(fee.charge, fraction))
    exact = sum((step.amount for step in steps), ZERO)
    timing = "in advance" if fee.in_advance else "in arrears"
    description = f"{fee.charge.label} ({fee.cycle.start:%Y-%m-%d} to {fee.cycle.end:%Y-%m-%d}, {timing})"
    return Line(fee.plan.id, fee.charge.id, description, fee.charge.model, None, Decimal(1), fee.plan.money.round(exact),
                exact, steps, fee.part, fraction)


def _minimum_true_up(plan: Plan, money: Currency, fraction: Decimal, spent: Decimal, active: Period) -> Line | None:
    minimum = money.round(plan.minimum_commitment * fraction)
    if spent >= minimum:
        return None
    steps = (
        Step(f"minimum commitment {plan.minimum_commitment} x {fraction:.6f} (rounded)", minimum, units=fraction,
             unit_price=plan.minimum_commitment),
        charges.adjustment("charges of the period", -spent),
    )
    return Line(plan.id, TRUE_UP, "Minimum commitment true-up", TRUE_UP, None, Decimal(1),
                minimum - spent, minimum - spent, steps, active, fraction)
