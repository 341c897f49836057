"""Coupons and prepaid credits customers hold, turned into what the pricing engine applies to one invoice.

A customer's invoice of a period gets every coupon it redeemed (in redemption order) with
``periods_used`` = the number of its invoices of earlier periods that carry that coupon (the coupon
is used up when its other invoices, of any period, already carry it for its whole duration), and
the prepaid credits granted in the invoice currency minus what its other invoices consumed.

"Other invoices" are the customer's invoices except this period's own, void ones aside, drafts
included: consecutive unfinalized months never take the same coupon period or credit twice, and a
re-run of a period computes the same grants again (idempotent).

Grants are recorded once and never edited; revoking one records a revocation. A revoked coupon is no
longer held. Credits are drawn oldest grant first: finalized and paid invoices draw on every grant,
then drafts on what the active grants have left, so a revoked credit keeps only what finalized or
paid invoices took from it (those never change) and its remainder is withdrawn.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from billing.core.contracts import AdjustmentKind
from billing.core.errors import ConfigError
from billing.core.invoicing.periods import invoice_id
from billing.core.pricing import CouponGrant, PlanCatalog
from billing.core.pricing.money import Currency, currency
from billing.core.pricing.plans import Coupon
from billing.core.pricing.proration import Period

ZERO = Decimal(0)
MAX_CREDIT = Decimal("1e18")


class Revocation(NamedTuple):
    """When and why a grant was revoked."""

    revoked_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """One coupon redemption (``coupon_id``) or prepaid credit (``amount`` in ``currency``) as recorded."""

    grant_id: str
    customer_id: str
    kind: AdjustmentKind
    granted_at: datetime
    coupon_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    revocation: Revocation | None = None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revocation is None

    @property
    def content(self) -> tuple:
        """What was granted to whom (id, time and revocation aside): equal contents are the same grant."""
        return self.customer_id, self.kind, self.coupon_id, self.amount, self.currency

    def describe(self) -> str:
        """``coupon launch20 for cus-1`` or ``credit of 25.00 USD for cus-1``."""
        if self.kind is AdjustmentKind.COUPON:
            return f"coupon {self.coupon_id} for {self.customer_id}"
        return f"credit of {currency(self.currency).format(self.amount)} for {self.customer_id}"


class Credit(NamedTuple):
    """A prepaid credit grant as the invoices draw on it."""

    grant_id: str
    currency: str
    amount: Decimal
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Held:
    """What one customer holds: active coupon ids in redemption order, credit grants oldest first."""

    coupons: tuple[str, ...] = ()
    credits: tuple[Credit, ...] = ()


class Applied(NamedTuple):
    """A coupon or credit adjustment stored on one of the customer's (non-void) invoices."""

    invoice_id: str
    period_start: datetime
    kind: str
    code: str | None
    currency: str
    amount: Decimal
    frozen: bool = False
    """On a finalized or paid invoice (never recomputed)."""


class Drawn(NamedTuple):
    """What invoices took from one credit grant, and what is left of it."""

    used: Decimal
    left: Decimal


class Standing(NamedTuple):
    """A grant with what is left of it: credit ``used``/``left``, or the invoices a coupon discounted and
    how many more it will (``left`` None: every invoice)."""

    record: GrantRecord
    used: Decimal | int
    left: Decimal | int | None


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
    """What is left of the credits granted in ``currency`` after the ``applied`` adjustments (never below zero)."""
    return sum((drawn.left for drawn in credits_drawn(held, applied, currency).values()), ZERO)


def credits_drawn(held: Held, applied: Iterable[Applied], currency: str) -> dict[str, Drawn]:
    """Per credit grant in ``currency``, what the ``applied`` adjustments took and what is left (module docstring)."""
    credits = [c for c in held.credits if c.currency == currency]
    spent = [a for a in applied if a.kind == AdjustmentKind.CREDIT and a.currency == currency]
    frozen = _take([c.amount for c in credits], sum((a.amount for a in spent if a.frozen), ZERO))
    still_open = [ZERO if c.revoked else c.amount - took for c, took in zip(credits, frozen, strict=True)]
    drafts = _take(still_open, sum((a.amount for a in spent if not a.frozen), ZERO))
    return {c.grant_id: Drawn(f + d, o - d) for c, f, o, d in zip(credits, frozen, still_open, drafts, strict=True)}


def _take(available: Sequence[Decimal], amount: Decimal) -> list[Decimal]:
    """What taking ``amount`` from ``available``, the first ones first, takes from each."""
    taken = []
    for have in available:
        taken.append(min(have, amount))
        amount -= taken[-1]
    return taken


def _oldest_first(record: GrantRecord) -> tuple:
    """Redemption order: the time granted, then the coupon (or grant) id."""
    return record.granted_at, record.coupon_id or record.grant_id


def holdings(records: Iterable[GrantRecord]) -> dict[str, Held]:
    """What each customer of ``records`` holds."""
    mine: dict[str, list[GrantRecord]] = defaultdict(list)
    for record in sorted(records, key=_oldest_first):
        mine[record.customer_id].append(record)
    return {customer_id: Held(
        tuple(r.coupon_id for r in found if r.kind is AdjustmentKind.COUPON and r.active),
        tuple(Credit(r.grant_id, r.currency, r.amount, not r.active) for r in found if r.kind is AdjustmentKind.CREDIT),
    ) for customer_id, found in sorted(mine.items())}


def standings(records: Sequence[GrantRecord], applied: Sequence[Applied], catalog: PlanCatalog) -> list[Standing]:
    """One customer's grants, oldest first, with what is left of each (``applied``: its non-void invoices')."""
    held = next(iter(holdings(records).values()), Held())
    drawn: dict[str, Drawn] = {}
    for code in {credit.currency for credit in held.credits}:
        drawn.update(credits_drawn(held, applied, code))
    carried = Counter(a.code for a in applied if a.kind == AdjustmentKind.COUPON)
    out = []
    for record in sorted(records, key=_oldest_first):
        if record.kind is AdjustmentKind.CREDIT:
            out.append(Standing(record, *drawn[record.grant_id]))
        else:
            out.append(Standing(record, carried[record.coupon_id], _coupon_left(record, carried[record.coupon_id], catalog)))
    return out


def _coupon_left(record: GrantRecord, used: int, catalog: PlanCatalog) -> int | None:
    """How many more invoices the coupon of ``record`` discounts (None: every invoice)."""
    if not record.active or record.coupon_id not in catalog.coupons:
        return 0
    duration = catalog.coupons[record.coupon_id].duration_periods
    return None if duration is None else max(0, duration - used)


def coupon_grant_id(customer_id: str, coupon_id: str) -> str:
    """The default grant id of a coupon redemption (a coupon is redeemed once per customer)."""
    return f"cpn-{customer_id}-{coupon_id}"


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
