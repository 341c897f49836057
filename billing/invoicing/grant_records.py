"""Coupons and prepaid credits granted to customers by finance and support staff: grant, list, revoke.

Grants are idempotent by grant id: recording the same grant (customer, coupon or amount and
currency) under an id again writes nothing, a different grant under a used id is an error. The
default id of a coupon redemption is ``cpn-<customer>-<coupon>`` (a coupon is redeemed once per
customer); a credit gets a new ``crd-`` id. Revoking writes a revocation row; the grant's history
stays (see :mod:`billing.core.invoicing.grants` for what a revocation changes on invoices).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from billing.core.contracts import AdjustmentKind
from billing.core.errors import ConfigError
from billing.core.invoicing import grants
from billing.core.invoicing.compose import BillingCustomer
from billing.core.invoicing.errors import GrantConflict, GrantRevoked, UnknownCustomer, UnknownGrant
from billing.core.invoicing.grants import GrantRecord, Revocation, Standing
from billing.core.pricing import PlanCatalog
from billing.core.pricing.money import currency
from billing.invoicing.store import Store

_GRANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(frozen=True)
class Granted:
    """A grant as recorded; ``created`` False when the same grant was recorded before (nothing written)."""

    record: GrantRecord
    created: bool


class GrantDesk:
    """Grant, list and revoke coupons and prepaid credits in the warehouse of ``store``."""

    def __init__(self, store: Store, catalog: PlanCatalog):
        self.store = store
        self.catalog = catalog

    def grant_coupon(self, customer_id: str, coupon_id: str, *, now: datetime, grant_id: str | None = None) -> Granted:
        """Redeem the catalog coupon ``coupon_id`` for ``customer_id``: later invoice runs apply it."""
        customer = self._customer(customer_id)
        grants.coupon_for(customer_id, customer.currency, coupon_id, self.catalog)
        wanted = GrantRecord(_checked(grant_id) or grants.coupon_grant_id(customer_id, coupon_id), customer_id,
                             AdjustmentKind.COUPON, now, coupon_id=coupon_id)
        return self._record(wanted)

    def grant_credit(self, customer_id: str, amount: str | Decimal, code: str | None = None, *, now: datetime,
                     grant_id: str | None = None) -> Granted:
        """Grant ``customer_id`` a prepaid credit in its billing currency (``code``, when given, must be it)."""
        customer = self._customer(customer_id)
        money = currency(code or customer.currency)
        if money.code != customer.currency:
            raise ConfigError(f"customer {customer_id} is billed in {customer.currency}; "
                              f"a credit in {money.code} would never pay its invoices")
        wanted = GrantRecord(_checked(grant_id) or f"crd-{uuid.uuid4().hex[:16]}", customer_id, AdjustmentKind.CREDIT,
                             now, amount=grants.credit_amount(amount, money), currency=money.code)
        return self._record(wanted)

    def revoke(self, grant_id: str, reason: str = "", *, now: datetime) -> GrantRecord:
        """Revoke a grant: drafts computed from now on and later invoices no longer apply it."""
        record = self.grant(grant_id)
        if record.revocation is not None:
            said = f" ({record.revocation.reason})" if record.revocation.reason else ""
            raise GrantRevoked(f"grant {grant_id} ({record.describe()}) was already revoked at "
                               f"{record.revocation.revoked_at:%Y-%m-%d %H:%M} UTC{said}")
        revocation = Revocation(now, reason.strip())
        self.store.write_revocation(record, revocation.reason, revocation.revoked_at)
        return replace(record, revocation=revocation)

    def grant(self, grant_id: str) -> GrantRecord:
        """The grant ``grant_id``."""
        found = self.store.grant_records(grant_id=grant_id)
        if not found:
            raise UnknownGrant(f"no grant {grant_id!r}; see `billing invoice grants --customer ID`")
        return found[0]

    def standings(self, customer_id: str) -> list[Standing]:
        """``customer_id``'s grants, oldest first, with what is left of each."""
        self._customer(customer_id)
        records = self.store.grant_records(customer=customer_id)
        return grants.standings(records, self.store.applied([customer_id]).get(customer_id, []), self.catalog)

    def credit_balance(self, customer_id: str, code: str) -> Decimal:
        """What is left of ``customer_id``'s credits in ``code``."""
        held = self.store.held(customer_id).get(customer_id, grants.Held())
        return grants.credit_balance(held, self.store.applied([customer_id]).get(customer_id, []), code)

    def _record(self, wanted: GrantRecord) -> Granted:
        """Write ``wanted`` unless its id is taken: by the same grant (a no-op) or another one (an error)."""
        taken = self.store.grant_records(grant_id=wanted.grant_id)
        if taken:
            if taken[0].content != wanted.content:
                raise GrantConflict(f"grant id {wanted.grant_id} is already {taken[0].describe()}, not "
                                    f"{wanted.describe()}; use another --grant-id")
            return Granted(taken[0], created=False)
        if wanted.kind is AdjustmentKind.COUPON:
            self._redeemable(wanted)
        self.store.write_grant(wanted)
        return Granted(wanted, created=True)

    def _redeemable(self, wanted: GrantRecord) -> None:
        """Refuse a second redemption of a coupon by a customer (revoked ones included)."""
        for held in self.store.grant_records(customer=wanted.customer_id):
            if held.coupon_id == wanted.coupon_id:
                state = "held" if held.active else "revoked"
                raise ConfigError(f"customer {wanted.customer_id} already redeemed coupon {wanted.coupon_id!r} "
                                  f"(grant {held.grant_id}, {state}); a coupon is redeemed once")

    def _customer(self, customer_id: str) -> BillingCustomer:
        customer = self.store.customers([customer_id]).get(customer_id)
        if customer is None:
            raise UnknownCustomer(f"no customer {customer_id!r} in the warehouse")
        return customer


def _checked(grant_id: str | None) -> str | None:
    """A grant id given by staff, if it is one (letters, digits and ``._:-``, at most 128)."""
    if grant_id is not None and not _GRANT_ID.match(grant_id):
        raise ConfigError(f"grant id {grant_id!r}: use letters, digits and . _ : - (at most 128, starting with a "
                          "letter or digit)")
    return grant_id
