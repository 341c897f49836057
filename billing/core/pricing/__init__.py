"""Pricing: plans as data, exact money, and a pure engine that turns usage into invoice lines.

Modules: :mod:`money` (currencies, half-up rounding), :mod:`plans` (validated plan/charge/coupon/
tax models), :mod:`catalog` (loading YAML/JSON with located errors), :mod:`charges` (one function
per charge model, with audit steps), :mod:`proration` (periods, by-the-second proration),
:mod:`adjustments` (coupons, credits), :mod:`tax`, and :mod:`engine` (``price_invoice``).
"""

from billing.core.pricing.adjustments import CouponGrant
from billing.core.pricing.catalog import PlanCatalog, builtin_catalog, load_catalog
from billing.core.pricing.engine import Line, PlanTerm, PricedInvoice, TaxProfile, price_invoice
from billing.core.pricing.money import Currency, currency
from billing.core.pricing.proration import Period, month_period

__all__ = [
    "TaxProfile",
    "CouponGrant",
    "Currency",
    "Line",
    "Period",
    "PlanCatalog",
    "PricedInvoice",
    "PlanTerm",
    "builtin_catalog",
    "currency",
    "load_catalog",
    "month_period",
    "price_invoice",
]
