"""Plans, charges, coupons and tax rules as validated data.

A catalog file (YAML or JSON) holds any of ``plans``, ``currency_variants``, ``coupons`` and
``tax_rules``. Every model forbids unknown keys, so a typo (``unit_prise``) is an error, not a
silently free charge. Percentages (``rate``, ``percent_off``) are written in percent: ``2.9``
means 2.9 %.

A plan prices one *product* (the plan id subscriptions refer to, e.g. ``growth``) in one currency.
A product is sold in several currencies by more plans with the same ``product``: written out by
hand (``business_eur``) or derived by a ``currency_variants`` entry, which converts every price
of a base plan at a fixed rate (exactly, no rounding: lines are rounded on the invoice).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from billing.core.errors import ConfigError
from billing.core.pricing.money import Currency, currency

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tier(_Model):
    """One tier: usage in ``(from, up_to]`` costs ``unit_price`` per unit plus ``flat_fee`` once.

    ``from`` may be omitted: the charge validator sets it to the previous tier's ``up_to``.
    """

    from_: NonNegative | None = Field(default=None, alias="from")
    up_to: Positive | None = Field(default=None, description="Inclusive upper bound; null = unbounded.")
    unit_price: NonNegative = Decimal(0)
    flat_fee: NonNegative = Decimal(0)


class _Charge(_Model):
    id: Id
    name: str | None = Field(default=None, description="Shown on the invoice; defaults to the id.")

    @property
    def label(self) -> str:
        """Name printed on the invoice line."""
        return self.name or self.id


class FlatCharge(_Charge):
    """A fixed fee per billing cycle (a subscription fee), prorated for partial cycles.

    ``pay_in_advance``: billed when the cycle starts (on the invoice of the month that ends then),
    instead of after it. Fees of yearly plans are billed once per cycle either way."""

    model: Literal["flat"]
    amount: NonNegative
    prorate: bool = True
    pay_in_advance: bool = False


class _UsageCharge(_Charge):
    meter: Id
    free_units: NonNegative = Field(
        default=Decimal(0), description="Included allowance, subtracted from usage before pricing."
    )

    @model_validator(mode="before")
    @classmethod
    def _in_arrears(cls, data):
        """Usage is only known once it happened: ``pay_in_advance`` is for flat fees."""
        if isinstance(data, dict) and "pay_in_advance" in data:
            if data["pay_in_advance"] is not False:
                raise ValueError("usage charges are billed monthly in arrears; pay_in_advance is only for flat fees")
            data = {k: v for k, v in data.items() if k != "pay_in_advance"}
        return data


class PerUnitCharge(_UsageCharge):
    """Every billable unit costs ``unit_price``."""

    model: Literal["per_unit"]
    unit_price: NonNegative


class _TieredCharge(_UsageCharge):
    tiers: list[Tier] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _contiguous(cls, tiers: list[Tier]) -> list[Tier]:
        """Tiers must start at 0, touch each other exactly, and only the last may be unbounded."""
        checked: list[Tier] = []
        previous_end = Decimal(0)
        for number, tier in enumerate(tiers, start=1):
            if previous_end is None:
                raise ValueError(f"tier {number - 1} is unbounded (up_to: null) but tier {number} follows it")
            start = tier.from_ if tier.from_ is not None else previous_end
            if start > previous_end:
                raise ValueError(f"gap: tier {number} starts at {start} but the previous tier ends at {previous_end}")
            if start < previous_end:
                raise ValueError(f"overlap: tier {number} starts at {start} but the previous tier ends at {previous_end}")
            if tier.up_to is not None and tier.up_to <= start:
                raise ValueError(f"tier {number}: up_to {tier.up_to} must be greater than its start {start}")
            checked.append(tier.model_copy(update={"from_": start}))
            previous_end = tier.up_to
        if previous_end is not None:
            raise ValueError(f"the last tier must be unbounded (up_to: null); it ends at {previous_end}")
        return checked


class GraduatedCharge(_TieredCharge):
    """Each unit is priced by the tier it falls in; a tier's flat fee applies once any unit reaches it."""

    model: Literal["graduated"]


class VolumeCharge(_TieredCharge):
    """All units are priced by the one tier the total quantity falls in (plus that tier's flat fee)."""

    model: Literal["volume"]


class PackageCharge(_UsageCharge):
    """Usage is sold in packages of ``package_size`` units; a started package is a whole package."""

    model: Literal["package"]
    package_size: Positive
    package_price: NonNegative


class PercentageCharge(_UsageCharge):
    """A percentage of a transacted amount (the meter), plus a fixed fee per transaction.

    Two kinds of bounds. ``min_amount``/``max_amount`` bound the charge for the whole period (a
    floor and a cap on the line). ``per_transaction_min_amount``/``per_transaction_max_amount``
    bound the fee of each single transaction (``rate`` % of its amount + ``fixed_fee``), and
    ``free_transactions`` exempts the first N transactions of the period (in event order) from
    rate and fixed fee: these price every event of ``meter`` as one transaction, so they need the
    single events, not only the period's sum (:attr:`per_transaction`). The period bounds apply on
    top of the sum of the transaction fees.
    """

    model: Literal["percentage"]
    rate: Percent
    fixed_fee: NonNegative = Decimal(0)
    count_meter: Id | None = Field(default=None, description="Meter counting transactions (for fixed_fee).")
    min_amount: NonNegative | None = None
    max_amount: NonNegative | None = None
    per_transaction_min_amount: NonNegative | None = None
    per_transaction_max_amount: NonNegative | None = None
    free_transactions: int = Field(default=0, description="The first N transactions of the period are free.")

    @model_validator(mode="after")
    def _consistent(self) -> PercentageCharge:
        if self.free_transactions < 0:
            raise ValueError(f"free_transactions {self.free_transactions} is negative; use 0 or more")
        for low, high, name in ((self.min_amount, self.max_amount, ""),
                                (self.per_transaction_min_amount, self.per_transaction_max_amount, "per_transaction_")):
            if low is not None and high is not None and low > high:
                raise ValueError(f"{name}min_amount {low} is greater than {name}max_amount {high}")
        if self.per_transaction:
            if self.count_meter is not None:
                raise ValueError("per-transaction pricing counts each event of meter as one transaction; "
                                 "remove count_meter")
            if self.free_units:
                raise ValueError("free_units (an allowance of the summed amount) cannot be combined with "
                                 "per-transaction pricing; use free_transactions")
        elif self.fixed_fee and self.count_meter is None:
            raise ValueError("fixed_fee needs count_meter (the meter that counts transactions)")
        return self

    @property
    def per_transaction(self) -> bool:
        """Whether the charge prices each transaction (event of ``meter``) on its own."""
        return (self.per_transaction_min_amount is not None or self.per_transaction_max_amount is not None
                or self.free_transactions > 0)


Charge = Annotated[
    FlatCharge | PerUnitCharge | GraduatedCharge | VolumeCharge | PackageCharge | PercentageCharge,
    Field(discriminator="model"),
]
INTERVALS = ("month", "year")
CHARGE_MODELS = ("flat", "per_unit", "graduated", "volume", "package", "percentage")


def _known_currency(code: str) -> str:
    try:
        return currency(code).code
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


MONEY_FIELDS = frozenset({"amount", "unit_price", "flat_fee", "package_price", "fixed_fee", "min_amount", "max_amount",
                          "per_transaction_min_amount", "per_transaction_max_amount", "minimum_commitment"})
"""Fields that hold a price in the plan's currency (every model names its money fields alike)."""


def _convert(model: BaseModel, rate: Decimal) -> BaseModel:
    """A copy of ``model`` with every money field (nested in charges and tiers too) times ``rate``."""
    update = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name in MONEY_FIELDS and value is not None:
            update[name] = value * rate
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            update[name] = [_convert(item, rate) for item in value]
    return model.model_copy(update=update)


class Plan(_Model):
    """A price plan: one product in one currency, a billing interval and its charges."""

    id: Id
    product: Id | None = Field(
        default=None, description="Plan id subscriptions use (default: this plan's id); one plan per product and currency."
    )
    name: str
    description: str = ""
    currency: str
    interval: Literal["month", "year"] = Field(
        default="month", description="Billing cycle of the flat fees; usage is billed monthly in arrears either way.")
    charges: list[Charge] = Field(min_length=1)
    minimum_commitment: NonNegative | None = Field(
        default=None, description="Minimum spend per full month; a true-up line makes up the difference."
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return _known_currency(value)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value):
        if value not in INTERVALS:
            raise ValueError(f"unknown interval {value!r}; use one of: {', '.join(INTERVALS)}")
        return value

    @model_validator(mode="after")
    def _monthly_commitment(self) -> Plan:
        if self.minimum_commitment is not None and self.interval != "month":
            raise ValueError("minimum_commitment is a monthly minimum; a yearly plan cannot have one")
        return self

    def by_cycle(self, charge: Charge, anniversary: bool = False) -> bool:
        """Whether ``charge`` is billed once per billing cycle (:mod:`billing.core.invoicing.cycles`) rather
        than prorated over each calendar month's plan spans: fees of yearly plans, fees paid in advance
        and, for a subscription billed on its ``anniversary``, every fee."""
        return isinstance(charge, FlatCharge) and (self.interval != "month" or charge.pay_in_advance or anniversary)

    @field_validator("charges")
    @classmethod
    def _unique_charges(cls, charges: list) -> list:
        seen: set[str] = set()
        for charge in charges:
            if charge.id in seen:
                raise ValueError(f"duplicate charge id {charge.id!r}")
            seen.add(charge.id)
        return charges

    @property
    def money(self) -> Currency:
        """The plan's currency with its minor units."""
        return currency(self.currency)

    @property
    def product_id(self) -> str:
        """The plan id subscriptions refer to."""
        return self.product or self.id

    def converted(self, code: str, rate: Decimal) -> Plan:
        """This plan in currency ``code``: every price times ``rate``, id ``<plan id>_<code>``."""
        plan = _convert(self, rate)
        return plan.model_copy(update={
            "id": f"{self.id}_{code.lower()}", "product": self.product_id, "currency": code,
            "description": f"{self.name} in {code}: {self.currency} prices x {rate}.",
        })

    @property
    def meters(self) -> list[str]:
        """Meters the plan's usage charges read, in charge order."""
        found: list[str] = []
        for charge in self.charges:
            for meter in (getattr(charge, "meter", None), getattr(charge, "count_meter", None)):
                if meter and meter not in found:
                    found.append(meter)
        return found

    def included_units(self, meter: str) -> Decimal:
        """Units of ``meter`` the plan includes per period: the ``free_units`` of its charges on it."""
        return sum((charge.free_units for charge in self.charges
                    if isinstance(charge, _UsageCharge) and charge.meter == meter), Decimal(0))


class Coupon(_Model):
    """A discount: ``percent_off`` or ``amount_off`` (in ``currency``), for ``duration_periods`` periods (null = forever)."""

    id: Id
    name: str = ""
    percent_off: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False)] | None = None
    amount_off: Positive | None = None
    currency: str | None = None
    duration_periods: Annotated[int, Field(ge=1)] | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else _known_currency(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Coupon:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("set exactly one of percent_off or amount_off")
        if self.amount_off is not None and self.currency is None:
            raise ValueError("amount_off needs a currency")
        return self

    @property
    def label(self) -> str:
        """Name printed on the invoice."""
        return self.name or self.id


class TaxRule(_Model):
    """A tax applied to customers in ``country`` (ISO 3166-1 alpha-2), optionally only in ``region``."""

    id: Id
    name: str
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    region: str | None = None
    rate: Percent


class CurrencyVariants(_Model):
    """Sell plan ``plan`` in more currencies: ``rates`` maps a currency to the price multiplier."""

    plan: Id
    rates: dict[str, Positive] = Field(min_length=1)

    @field_validator("rates")
    @classmethod
    def _currencies(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        return {_known_currency(code): rate for code, rate in rates.items()}


class Catalog(_Model):
    """Everything one or more catalog files define."""

    plans: list[Plan] = Field(default_factory=list)
    currency_variants: list[CurrencyVariants] = Field(default_factory=list)
    coupons: list[Coupon] = Field(default_factory=list)
    tax_rules: list[TaxRule] = Field(default_factory=list)
