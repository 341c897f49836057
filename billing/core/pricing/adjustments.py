"""Coupons (discounts before tax) and prepaid credits (consumed after tax).

Coupons apply in the order given to what is left of the subtotal: a percent coupon takes its
share (rounded half-up), a fixed coupon takes its amount, at most what is left, so discounts never
make the subtotal negative. A coupon with ``duration_periods: N`` applies to N invoices; the
caller keeps how many it has used (``CouponGrant.periods_used``) and bumps it for every coupon id
in ``PricedInvoice.coupons_applied``.

Prepaid credits are money the customer paid in advance: they pay the invoice total (tax
included, as the tax was due on the sale) up to the balance, never below zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.core.errors import ConfigError
from billing.core.pricing.money import Currency
from billing.core.pricing.plans import Coupon

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class CouponGrant:
    """A coupon redeemed by a customer and how many invoices it has discounted so far."""

    coupon: Coupon
    periods_used: int = 0

    @property
    def active(self) -> bool:
        """Whether the coupon still applies to the next invoice."""
        duration = self.coupon.duration_periods
        return duration is None or self.periods_used < duration


@dataclass(frozen=True, slots=True)
class DiscountLine:
    """One discount on the invoice (a positive amount that is subtracted)."""

    coupon_id: str
    description: str
    amount: Decimal
    percent_off: Decimal | None = None


def apply_coupons(grants: Iterable[CouponGrant], subtotal: Decimal, money: Currency) -> list[DiscountLine]:
    """Discount lines for the active coupons, in order, never more than the subtotal in total."""
    remaining = subtotal
    lines: list[DiscountLine] = []
    for grant in grants:
        if not grant.active:
            continue
        coupon = grant.coupon
        if coupon.percent_off is not None:
            amount = money.round(remaining * coupon.percent_off / HUNDRED)
            description = f"{coupon.label} ({coupon.percent_off}% off)"
        else:
            if coupon.currency != money.code:
                raise ConfigError(f"coupon {coupon.id!r} is in {coupon.currency} but the invoice is in {money.code}")
            amount = min(money.round(coupon.amount_off), remaining)
            description = f"{coupon.label} ({money.format(coupon.amount_off)} off)"
        if coupon.duration_periods is not None:
            description += f", period {grant.periods_used + 1} of {coupon.duration_periods}"
        remaining -= amount
        lines.append(DiscountLine(coupon.id, description, amount, coupon.percent_off))
    return lines


def apply_credits(balance: Decimal, total: Decimal) -> Decimal:
    """How much of a prepaid ``balance`` pays a ``total``: never negative, never more than either."""
    return max(ZERO, min(balance, total))
