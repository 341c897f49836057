"""Simulated customers: Faker identities plus the precomputed weights the usage hot path samples."""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from faker import Faker

from billing.core.contracts import Customer, Segment
from producers.world import MARKETS, PARETO_ALPHA, SEGMENTS, TIERS, TRIAL_DAYS, Market

TRIALING_SHARE = 0.05
MAX_TENURE_DAYS = 900


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """One customer and its behaviour parameters."""

    index: int
    record: Customer
    market: Market
    weight: float
    seats: int
    tier: str
    usage_multiplier: float
    trialing: bool  # still in the trial period at the simulation start

    @property
    def id(self) -> str:
        return self.record.id


def customer_id(seed: int, index: int) -> str:
    """Stable id of customer ``index`` in the run with ``seed``."""
    return f"cus-{seed}-{index:06d}"


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40]


def build_customers(count: int, seed: int, start: datetime) -> list[CustomerProfile]:
    """``count`` customers who all signed up before ``start``, deterministic for ``seed``."""
    rng = random.Random(f"customers:{seed}")
    fakers: dict[str, Faker] = {}
    market_weights = [m.weight for m in MARKETS]
    segment_names = list(SEGMENTS)
    segment_weights = [SEGMENTS[s][0] for s in segment_names]
    tier_names = [t for t, _ in TIERS]
    tier_weights = [w for _, w in TIERS]
    # The heaviest customers tend to be enterprises: rank Pareto weights and segments together.
    weights = sorted((rng.paretovariate(PARETO_ALPHA) for _ in range(count)), reverse=True)
    profiles = []
    for index in range(count):
        market = rng.choices(MARKETS, market_weights)[0]
        segment = rng.choices(segment_names, segment_weights)[0]
        if index < max(1, count // 50):
            segment = "enterprise"
        if market.faker_locale not in fakers:
            fake = Faker(market.faker_locale)
            fake.seed_instance(f"{seed}:{market.faker_locale}")
            fakers[market.faker_locale] = fake
        company = fakers[market.faker_locale].company()
        domain = _slug(company) or f"customer-{index}"
        trialing = rng.random() < TRIALING_SHARE
        tenure = rng.uniform(0.5, TRIAL_DAYS - 0.5) if trialing else rng.uniform(TRIAL_DAYS, MAX_TENURE_DAYS)
        signup = (start - timedelta(days=tenure)).replace(microsecond=0)
        low, high = SEGMENTS[segment][2]
        record = Customer(
            id=customer_id(seed, index),
            company_name=company,
            email=f"billing@{domain}.example",
            country=market.country,
            region=market.sales_region,
            currency=market.currency,
            segment=Segment(segment),
            signup_time=signup,
            updated_at=signup,
        )
        profiles.append(
            CustomerProfile(
                index=index,
                record=record,
                market=market,
                weight=weights[index],
                seats=int(low + (high - low) * rng.random() ** 2),
                tier=rng.choices(tier_names, tier_weights)[0],
                usage_multiplier=SEGMENTS[segment][3] * rng.lognormvariate(0, 0.4),
                trialing=trialing,
            )
        )
    return profiles
