"""How each charge model turns a quantity into an exact (unrounded) amount, step by step.

Every function returns the :class:`Step` rows a customer needs to recompute the amount by hand
(tier range, units in the tier, unit price, flat fee, subtotal). Amounts here are exact; the
engine rounds the line total once. Free units (the included allowance) are subtracted first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from billing.core.errors import ConfigError
from billing.core.pricing.plans import (
    FlatCharge,
    GraduatedCharge,
    PackageCharge,
    PercentageCharge,
    PerUnitCharge,
    Tier,
    VolumeCharge,
)

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Step:
    """One auditable row of a line's computation: ``units * unit_price + flat_fee = amount``."""

    description: str
    amount: Decimal
    units: Decimal
    unit_price: Decimal
    flat_fee: Decimal = ZERO
    tier_from: Decimal | None = None
    tier_to: Decimal | None = None


def billable(quantity: Decimal, free_units: Decimal) -> tuple[Decimal, list[Step]]:
    """Quantity left after the included allowance, and the allowance step (if any)."""
    if not free_units:
        return quantity, []
    used = min(quantity, free_units)
    return quantity - used, [Step(f"included allowance ({free_units:,} units)", ZERO, units=used, unit_price=ZERO)]


def flat(charge: FlatCharge, fraction: Decimal) -> list[Step]:
    """A fixed fee times the active fraction of the period (1 for a full period)."""
    if fraction == 1 or not charge.prorate:
        return [Step("flat fee", charge.amount, units=Decimal(1), unit_price=charge.amount)]
    return [Step(f"flat fee prorated x {fraction:.6f}", charge.amount * fraction, units=fraction, unit_price=charge.amount)]


def per_unit(charge: PerUnitCharge, quantity: Decimal) -> list[Step]:
    """``billable units * unit_price``."""
    units, steps = billable(quantity, charge.free_units)
    steps.append(Step("per unit", units * charge.unit_price, units=units, unit_price=charge.unit_price))
    return steps


def graduated(charge: GraduatedCharge, quantity: Decimal) -> list[Step]:
    """Sum over tiers of ``units in tier * unit_price`` (+ the tier's flat fee when units > 0)."""
    units, steps = billable(quantity, charge.free_units)
    for number, tier in enumerate(charge.tiers, start=1):
        upper = units if tier.up_to is None else min(units, tier.up_to)
        in_tier = upper - tier.from_
        if in_tier <= 0:
            break
        steps.append(_tier_step(f"tier {number}", tier, in_tier))
    return steps


def volume(charge: VolumeCharge, quantity: Decimal) -> list[Step]:
    """All units at the price of the tier containing the total (+ its flat fee when units > 0)."""
    units, steps = billable(quantity, charge.free_units)
    if units > 0:
        number, tier = next((n, t) for n, t in enumerate(charge.tiers, 1) if t.up_to is None or units <= t.up_to)
        steps.append(_tier_step(f"tier {number} (all units)", tier, units))
    return steps


def package(charge: PackageCharge, quantity: Decimal) -> list[Step]:
    """``ceil(billable units / package_size) * package_price``: a started package is a whole package."""
    units, steps = billable(quantity, charge.free_units)
    packages = (units / charge.package_size).to_integral_value(rounding=ROUND_CEILING)
    steps.append(
        Step(
            f"{packages:,} package(s) of {charge.package_size:,} units for {units:,} units",
            packages * charge.package_price,
            units=packages,
            unit_price=charge.package_price,
        )
    )
    return steps


def percentage(charge: PercentageCharge, quantity: Decimal, transactions: Decimal) -> list[Step]:
    """``rate % of the billable amount + fixed_fee * transactions``, then the period floor/cap."""
    amount, steps = billable(quantity, charge.free_units)
    share = amount * charge.rate / HUNDRED
    steps.append(Step(f"{charge.rate}% of {amount:,}", share, units=amount, unit_price=charge.rate / HUNDRED))
    if charge.fixed_fee:
        steps.append(Step(f"fixed fee for {transactions:,} transaction(s)", transactions * charge.fixed_fee,
                          units=transactions, unit_price=charge.fixed_fee))
    return _period_bounds(charge, steps)


def per_transaction(charge: PercentageCharge, amounts: Sequence[Decimal]) -> list[Step]:
    """Each transaction after the first ``free_transactions`` costs ``rate % of its amount + fixed_fee``,
    raised to ``per_transaction_min_amount`` and capped at ``per_transaction_max_amount``; then the
    period floor/cap applies to the sum. ``amounts`` are the transactions' amounts in event order."""
    free, paid = amounts[:charge.free_transactions], amounts[charge.free_transactions:]
    steps = []
    if free:
        steps.append(Step(f"first {len(free):,} transaction(s) free ({sum(free, ZERO):,})", ZERO,
                          units=Decimal(len(free)), unit_price=ZERO))
    rate = charge.rate / HUNDRED
    volume = sum(paid, ZERO)
    count = Decimal(len(paid))
    steps.append(Step(f"{charge.rate}% of {volume:,} ({count:,} paid transaction(s))", volume * rate, units=volume,
                      unit_price=rate))
    if charge.fixed_fee:
        steps.append(Step(f"fixed fee for {count:,} transaction(s)", count * charge.fixed_fee, units=count,
                          unit_price=charge.fixed_fee))
    low, high = charge.per_transaction_min_amount, charge.per_transaction_max_amount
    raised, capped = [], []
    for fee in (amount * rate + charge.fixed_fee for amount in paid):
        if low is not None and fee < low:
            raised.append(low - fee)
        elif high is not None and fee > high:
            capped.append(high - fee)
    if raised:
        steps.append(adjustment(f"{len(raised):,} transaction(s) raised to the per-transaction minimum of {low}",
                                sum(raised, ZERO)))
    if capped:
        steps.append(adjustment(f"{len(capped):,} transaction(s) capped at the per-transaction maximum of {high}",
                                sum(capped, ZERO)))
    return _period_bounds(charge, steps)


def _period_bounds(charge: PercentageCharge, steps: list[Step]) -> list[Step]:
    """``steps`` plus the step that raises their sum to ``min_amount`` or caps it at ``max_amount``."""
    subtotal = sum((step.amount for step in steps), ZERO)
    if charge.min_amount is not None and subtotal < charge.min_amount:
        steps.append(adjustment(f"raised to the minimum of {charge.min_amount}", charge.min_amount - subtotal))
    elif charge.max_amount is not None and subtotal > charge.max_amount:
        steps.append(adjustment(f"capped at the maximum of {charge.max_amount}", charge.max_amount - subtotal))
    return steps


def usage_steps(charge, usage: Mapping[str, Decimal],
                transactions: Mapping[str, Sequence[Decimal]] | None = None) -> tuple[Decimal, list[Step]]:
    """Quantity read from ``usage`` for a usage charge, and its computation steps.

    A per-transaction charge (:attr:`PercentageCharge.per_transaction`) reads the amounts of its
    meter's single transactions from ``transactions`` instead; its quantity is their sum."""
    quantity = usage.get(charge.meter, ZERO)
    if isinstance(charge, PercentageCharge):
        if charge.per_transaction:
            amounts = (transactions or {}).get(charge.meter)
            if amounts is None:
                if quantity:
                    raise ConfigError(f"charge {charge.id!r} prices each transaction of meter {charge.meter!r}, but only "
                                      "the summed usage was given; pass the single transactions")
                amounts = ()
            return sum(amounts, ZERO), per_transaction(charge, amounts)
        count = usage.get(charge.count_meter, ZERO) if charge.count_meter else ZERO
        return quantity, percentage(charge, quantity, count)
    return quantity, _USAGE_MODELS[type(charge)](charge, quantity)


def adjustment(description: str, amount: Decimal) -> Step:
    """A step that adds ``amount`` once (a floor, a cap, a true-up)."""
    return Step(description, amount, units=Decimal(1), unit_price=amount)


def _tier_step(label: str, tier: Tier, units: Decimal) -> Step:
    if tier.up_to is None:
        bounds = f"over {tier.from_:,}"
    else:
        bounds = f"up to {tier.up_to:,}" if tier.from_ == 0 else f"over {tier.from_:,} up to {tier.up_to:,}"
    return Step(
        f"{label}: {bounds}",
        units * tier.unit_price + tier.flat_fee,
        units=units,
        unit_price=tier.unit_price,
        flat_fee=tier.flat_fee,
        tier_from=tier.from_,
        tier_to=tier.up_to,
    )


_USAGE_MODELS: dict[type, Callable[..., list[Step]]] = {
    PerUnitCharge: per_unit,
    GraduatedCharge: graduated,
    VolumeCharge: volume,
    PackageCharge: package,
}
