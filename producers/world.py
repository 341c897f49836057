"""Reference data of the simulated world: markets, plans, payment behaviour, meter profiles.

Plain tuples and numbers, no logic: the generators read them; changing the mix of the simulated
traffic means editing this file.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple


class Market(NamedTuple):
    """A country customers sign up from."""

    country: str
    faker_locale: str
    sales_region: str
    currency: str
    cloud_region: str
    utc_offset_h: int
    weight: float
    tax_rate: Decimal
    usd_rate: Decimal  # price multiplier from the USD list price


MARKETS: tuple[Market, ...] = (
    Market("US", "en_US", "NA", "USD", "us-east-1", -5, 34, Decimal("0"), Decimal("1")),
    Market("CA", "en_CA", "NA", "CAD", "us-east-1", -5, 5, Decimal("0.05"), Decimal("1.35")),
    Market("BR", "pt_BR", "LATAM", "BRL", "sa-east-1", -3, 5, Decimal("0"), Decimal("5")),
    Market("MX", "es_MX", "LATAM", "MXN", "us-east-1", -6, 3, Decimal("0.16"), Decimal("17")),
    Market("GB", "en_GB", "EMEA", "GBP", "eu-west-2", 0, 10, Decimal("0.20"), Decimal("0.8")),
    Market("DE", "de_DE", "EMEA", "EUR", "eu-central-1", 1, 10, Decimal("0.19"), Decimal("0.92")),
    Market("FR", "fr_FR", "EMEA", "EUR", "eu-west-3", 1, 7, Decimal("0.20"), Decimal("0.92")),
    Market("NL", "nl_NL", "EMEA", "EUR", "eu-central-1", 1, 4, Decimal("0.21"), Decimal("0.92")),
    Market("ES", "es_ES", "EMEA", "EUR", "eu-south-2", 1, 3, Decimal("0.21"), Decimal("0.92")),
    Market("IN", "en_IN", "APAC", "INR", "ap-south-1", 5, 7, Decimal("0.18"), Decimal("83")),
    Market("JP", "ja_JP", "APAC", "JPY", "ap-northeast-1", 9, 5, Decimal("0.10"), Decimal("150")),
    Market("AU", "en_AU", "APAC", "AUD", "ap-southeast-2", 10, 4, Decimal("0.10"), Decimal("1.5")),
    Market("SG", "en_US", "APAC", "SGD", "ap-southeast-1", 8, 3, Decimal("0.09"), Decimal("1.35")),
)

# Segment -> (share of customers, plan ids offered, seats (min, max), usage multiplier)
SEGMENTS: dict[str, tuple[float, tuple[str, ...], tuple[int, int], float]] = {
    "startup": (0.40, ("starter", "growth"), (2, 15), 0.5),
    "smb": (0.35, ("starter", "growth", "business"), (5, 60), 1.0),
    "mid_market": (0.18, ("growth", "business"), (40, 400), 3.0),
    "enterprise": (0.07, ("business", "enterprise"), (300, 3000), 10.0),
}

# Plan id -> monthly list price in USD (the billing engine's catalog, billing/plans/, has the real prices).
PLANS: dict[str, Decimal] = {
    "starter": Decimal("29"),
    "growth": Decimal("99"),
    "business": Decimal("499"),
    "enterprise": Decimal("2500"),
}
PLAN_ORDER: tuple[str, ...] = tuple(PLANS)
YEARLY_SHARE = 0.12
ANNIVERSARY_SHARE = 0.3
"""Share of subscriptions billed on the anniversary of their start (the rest on the calendar)."""
TRIAL_DAYS = 14

# Usage diurnal shape (local hour -> relative traffic) and weekday shape (Mon..Sun).
DIURNAL: tuple[float, ...] = (
    0.25, 0.2, 0.17, 0.15, 0.15, 0.2, 0.35, 0.6, 0.9, 1.1, 1.2, 1.25,
    1.2, 1.25, 1.3, 1.3, 1.2, 1.05, 0.9, 0.75, 0.6, 0.5, 0.4, 0.3,
)
WEEKLY: tuple[float, ...] = (1.05, 1.1, 1.1, 1.08, 1.0, 0.55, 0.45)

# Customer activity weights are Pareto distributed: a few customers send most of the traffic.
PARETO_ALPHA = 1.16


class MeterProfile(NamedTuple):
    """How the simulator draws one meter's events."""

    share: float  # share of all usage events
    scale: int  # decimal places of the quantity on the wire
    mu: float  # lognormal parameters of the quantity (before the customer multiplier)
    sigma: float


METER_PROFILES: dict[str, MeterProfile] = {
    "api_calls": MeterProfile(0.62, 0, 1.2, 1.0),
    "storage_gb_hours": MeterProfile(0.08, 3, 2.0, 1.1),
    "bandwidth_gb": MeterProfile(0.10, 3, -1.5, 1.2),
    "compute_seconds": MeterProfile(0.12, 3, 3.0, 1.3),
    "active_seats": MeterProfile(0.08, 0, 0.0, 0.0),
}
ENDPOINTS: tuple[tuple[str, float], ...] = (
    ("/v1/search", 30), ("/v1/documents", 25), ("/v1/embeddings", 15), ("/v1/users", 10),
    ("/v1/reports", 8), ("/v1/webhooks", 7), ("/v1/exports", 5),
)
TIERS: tuple[tuple[str, float], ...] = (("standard", 70), ("premium", 25), ("archive", 5))

# Payments
METHODS_BY_CURRENCY: dict[str, tuple[tuple[str, float], ...]] = {
    "USD": (("card", 60), ("ach", 28), ("paypal", 7), ("wire", 5)),
    "EUR": (("sepa", 50), ("card", 38), ("paypal", 10), ("wire", 2)),
}
METHODS_DEFAULT: tuple[tuple[str, float], ...] = (("card", 75), ("paypal", 18), ("wire", 7))
LARGE_INVOICE_WIRE_SHARE = 0.6  # invoices above LARGE_INVOICE_USD are paid by wire this often
LARGE_INVOICE_USD = Decimal("2000")
# method -> (min, max) seconds from initiation to settlement
PROCESSING_SECONDS: dict[str, tuple[int, int]] = {
    "card": (1, 6), "paypal": (2, 15), "ach": (86_400, 3 * 86_400),
    "sepa": (86_400, 2 * 86_400), "wire": (43_200, 3 * 86_400),
}
FAILURE_REASONS: tuple[tuple[str, float], ...] = (
    ("insufficient_funds", 35), ("card_expired", 15), ("do_not_honor", 20),
    ("network_error", 15), ("fraud_suspected", 5), ("invalid_account", 10),
)
CARD_ONLY_REASONS = frozenset({"card_expired"})
SUCCESS_PROBABILITY = 0.9
LATE_PAYER_SUCCESS_PROBABILITY = 0.7
LATE_PAYER_SHARE = 0.08
NEVER_PAYER_SHARE = 0.02  # customers who never pay (no payment attempt at all)
MAX_ATTEMPTS = 4
REFUND_PROBABILITY = 0.02
DISPUTE_PROBABILITY = 0.005

# Subscriptions (per month of simulated time)
PLAN_CHANGE_RATE = 0.06
CANCEL_RATE = 0.02
