"""Coupons and prepaid credits customers hold, turned into what the pricing engine applies to one invoice.

A customer's invoice of a period gets every coupon it redeemed (in redemption order) with
``periods_used`` = the number of its invoices of earlier periods that carry that coupon (the coupon
is used up when its other invoices, of any period, already carry it for its whole duration), and
the prepaid credits granted in the invoice currency minus what its other invoices consumed.

"Other invoices" are the customer's invoices except this period's own, void ones aside, drafts
included: consecutive unfinalized months never take the same coupon period or credit twice, and a
re-run of a period computes the same grants again (idempotent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, Optional

from billing.contracts import AdjustmentKind
from billing.errors import ConfigError
from billing.invoicing.periods import invoice_id
from billing.pricing import CouponGrant, PlanCatalog
from billing.pricing.money import Currency
from billing.pricing.plans import Coupon
from billing.pricing.proration import Period

ZERO = Decimal(0)
MAX_CREDIT = Decimal("1e18")


@dataclass(frozen=True, slots=True)
class Held:
    """What one customer holds: redeemed coupon ids in redemption order, credits granted per currency."""

    coupons: tuple[str, ...] = ()
    credits: Mapping[str, Decimal] = field(default_factory=dict)


class Applied(NamedTuple):
    """A coupon or credit adjustment stored on one of the customer's (non-void) invoices."""

    invoice_id: str
    period_start: datetime
    kind: str
    code: Optional[str]
    currency: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Grants:
    """The coupons and prepaid credit balance the engine applies to one invoice."""

    coupons: tuple[CouponGrant, ...] = ()
    credit_balance: Decimal = ZERO


def for_invoice(customer_id: str, currency: str, held: Held, applied: Iterable[Applied], period: Period,
                catalog: PlanCatalog) -> Grants:
    """The grants of ``customer_id``'s invoice of ``period`` in ``currency`` (see the module docstring)."""
    own = invoice_id(customer_id, period)
    others = [a for a in applied if a.invoice_id != own]
    carried = [a for a in others if a.kind == AdjustmentKind.COUPON]
    anywhere = Counter(a.code for a in carried)
    earlier = Counter(a.code for a in carried if a.period_start < period.start)
    coupons = []
    for code in held.coupons:
        coupon = coupon_for(customer_id, currency, code, catalog)
        used_up = coupon.duration_periods is not None and anywhere[code] >= coupon.duration_periods
        coupons.append(CouponGrant(coupon, coupon.duration_periods if used_up else earlier[code]))
    return Grants(tuple(coupons), credit_balance(held, others, currency))


def credit_balance(held: Held, applied: Iterable[Applied], currency: str) -> Decimal:
    """Credits granted in ``currency`` minus the credits the ``applied`` adjustments consumed, never below zero."""
    consumed = sum((a.amount for a in applied if a.kind == AdjustmentKind.CREDIT and a.currency == currency), ZERO)
    return max(ZERO, held.credits.get(currency, ZERO) - consumed)


def coupon_for(customer_id: str, currency: str, coupon_id: str, catalog: PlanCatalog) -> Coupon:
    """The catalog's coupon ``coupon_id``, if it can discount ``customer_id``'s invoices in ``currency``."""
    try:
        coupon = catalog.coupon(coupon_id)
    except ConfigError as exc:
        raise ConfigError(f"customer {customer_id}: {exc}") from None
    if coupon.currency is not None and coupon.currency != currency:
        raise ConfigError(f"customer {customer_id}: coupon {coupon_id!r} takes {coupon.currency} off "
                          f"but the customer is billed in {currency}")
    return coupon


def credit_amount(text: str | Decimal, money: Currency) -> Decimal:
    """A credit amount to grant: a positive number with at most ``money``'s minor-unit decimals."""
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        raise ConfigError(f"{text!r} is not an amount; write it like 100.00") from None
    if not amount.is_finite() or amount <= 0:
        raise ConfigError(f"a credit amount must be positive, got {text}")
    if amount >= MAX_CREDIT:
        raise ConfigError(f"a credit amount must be below {MAX_CREDIT:,f}, got {text}")
    if money.round(amount) != amount:
        raise ConfigError(f"{text} {money.code} has more decimals than {money.code} allows ({money.minor_units})")
    return money.round(amount)
