"""Errors of the invoice run and the invoice lifecycle (each one line, each actionable)."""

from __future__ import annotations

from billing.core.errors import BillingError, ConfigError


class PeriodError(ConfigError):
    """A billing period that is malformed, in the future, or still open."""


class NoSubscription(BillingError):
    """The customer has no subscription billable in the period."""


class UnknownCustomer(BillingError):
    """No customer with that id in the warehouse."""


class UnknownInvoice(BillingError):
    """No invoice with that id in the warehouse."""


class InvalidTransition(BillingError):
    """A lifecycle change the invoice's status does not allow (e.g. finalizing a void invoice)."""


class UnknownGrant(BillingError):
    """No coupon redemption or credit grant with that id."""


class GrantRevoked(BillingError):
    """The grant was revoked already."""


class GrantConflict(ConfigError):
    """A grant id already names a different grant."""
