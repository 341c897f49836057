"""Event contracts: the pydantic model of every message on every topic.

Every component (simulator, HTTP API, stream worker, billing engine) imports these models. On the
wire they are JSON (orjson): money and quantities are Decimal serialized as strings, times are
timezone-aware UTC (``...Z``), ids are strings. Every model carries ``schema_version``.

Usage events follow CloudEvents 1.0 (``specversion``, ``id`` = idempotency key, ``source``,
``type`` = meter, ``subject`` = customer id, ``time``, ``data``). The input rules, the same for every
entry point (HTTP API, Kafka, simulator files), are listed in :data:`USAGE_INPUT_RULES`. The
validation context may carry ``meters`` (a :class:`~billing.core.meters.MeterSet`), ``now``,
``future_tolerance`` (seconds) and ``past_horizon`` (days) to override the settings, which is how
tests and replays pin them.

Fast paths for the hot loops: :func:`parse_usage` (bytes -> model, raising
:class:`ContractViolation` with a one-line reason) and :func:`to_bytes` (model -> bytes).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from billing.core.errors import BillingError
from billing.core.meters import MeterSet, active_meters

SCHEMA_VERSION = 1
CLOUDEVENTS_SPECVERSION = "1.0"
QUANTITY_LIMIT = Decimal(10) ** 12
"""Quantities are below this (at most 12 integer digits): a sum of 10^17 of them still fits the
warehouse's ``Decimal(38, 9)`` columns."""
QUANTITY_DECIMAL_PLACES = 9
"""The scale of the warehouse's ``Decimal(38, 9)`` columns."""
MAX_DIMENSIONS = 64
DIMENSION_NAME_MAX = 64
DIMENSION_VALUE_MAX = 256
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""No usage event is older than this (the warehouse's ``DateTime`` rollup windows start there)."""
ECHO_MAX = 64
"""Longest piece of an input repeated in an error message."""

USAGE_INPUT_RULES = (
    "specversion is required and is \"1.0\"",
    "id and subject: 1-128 characters of A-Z a-z 0-9 . _ : - (starting with a letter or digit)",
    "source: 1-256 printable characters (no CR, LF, NUL, ANSI escapes or other control characters)",
    "type: a configured meter",
    "time: an RFC 3339 string with a UTC offset (numbers such as epoch seconds are refused), from 1970-01-01, "
    "at most past_horizon days old and at most future_tolerance seconds ahead",
    "data.quantity: a JSON number or a canonical decimal string (ASCII digits, an optional leading '-' and one "
    "'.'; no '+', spaces, '_', exponents or leading zeros), >= 0, below 10^12, at most 9 decimal places",
    f"data: at most {MAX_DIMENSIONS} dimensions besides quantity; names 1-{DIMENSION_NAME_MAX} printable "
    f"characters, values strings (numbers become strings) of at most {DIMENSION_VALUE_MAX} printable characters",
    "no other attributes: CloudEvents extension attributes (traceparent, partitionkey, ...), dataschema and "
    "data_base64 are refused with a reason naming them, never dropped silently",
)
"""The input rules of usage events, in the words the README and the API documentation use."""


def clip(value: object, limit: int = ECHO_MAX) -> str:
    """``repr`` of ``value`` cut to about ``limit`` characters, for error messages that name an input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _printable(value: str) -> str:
    if not value.isprintable():
        position, char = next((i, c) for i, c in enumerate(value) if not c.isprintable())
        raise ValueError(f"contains the non-printable character {char!r} at position {position} "
                         "(control characters such as CR, LF, NUL and ANSI escapes are refused)")
    return value


Printable = Annotated[str, AfterValidator(_printable)]
"""A string of printable characters only (``str.isprintable``: no control or format characters)."""


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalized to UTC; naive datetimes are rejected."""

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]
Money = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=38, decimal_places=9)]
NonNegativeMoney = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=38, decimal_places=9)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")]


class ContractViolation(BillingError, ValueError):
    """A message does not satisfy its contract; ``reason`` is one line fit for a dead letter."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Contract(BaseModel):
    """Base of every topic model: immutable, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    schema_version: int = Field(
        default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION, description="Contract version of this message."
    )


# --------------------------------------------------------------------------------------- usage


_CANONICAL_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def _quantity_input(value: Any) -> Any:
    """Let through JSON numbers and canonical decimal strings only (no other digits, no '+', '_', spaces)."""
    kind = type(value)
    if kind is str:
        if _CANONICAL_DECIMAL.fullmatch(value) is None:
            raise ValueError(f"{clip(value)} is not a canonical decimal string (ASCII digits, an optional leading '-' "
                             "and one '.'; no '+', spaces, '_', exponents or leading zeros)")
        return value
    if kind is int or kind is Decimal or kind is float:
        return value
    raise ValueError(f"must be a JSON number or a decimal string, not {kind.__name__}")


Quantity = Annotated[
    Decimal,
    Field(ge=0, lt=QUANTITY_LIMIT, decimal_places=QUANTITY_DECIMAL_PLACES, allow_inf_nan=False),
    BeforeValidator(_quantity_input),
    PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json"),
]
"""On the wire a canonical decimal string: ``format(value, "f")`` never writes an exponent (``str`` does).
The constraints come before the input check so that pydantic-core applies them to its decimal
schema in Rust; after a validator, pydantic checks them in Python (its decimal places check alone
was ~6 % of a worker's processing)."""


def _time_input(value: Any) -> Any:
    """Let through datetimes and RFC 3339 strings only (pydantic alone also reads epoch numbers)."""
    if isinstance(value, datetime):
        return value
    if type(value) is not str:
        raise ValueError(f"must be an RFC 3339 string such as 2025-01-31T12:00:00Z, not {type(value).__name__}")
    if _RFC3339.fullmatch(value) is None:
        raise ValueError(f"{clip(value)} is not an RFC 3339 time such as 2025-01-31T12:00:00Z")
    return value


_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?")


def _json_content_type(value: Any) -> Any:
    """``application/json``, with an optional ``charset=utf-8``, normalized to ``application/json``."""
    if value is None:
        return None
    if type(value) is str:
        media, *parameters = (part.strip().lower() for part in value.split(";"))
        if media == "application/json" and all(p.replace('"', "") in ("charset=utf-8", "charset=utf8") for p in parameters):
            return "application/json"
    raise ValueError(f"{clip(value)} is not accepted: data is JSON (application/json, UTF-8)")


class UsageData(BaseModel):
    """Payload of a usage event: the quantity plus string dimensions (region, endpoint, tier,
    user_id, ...). Dimensions are free-form; each meter says which ones it groups on."""

    model_config = ConfigDict(frozen=True, extra="allow", coerce_numbers_to_str=True)
    __pydantic_extra__: dict[str, Annotated[str, Field(max_length=DIMENSION_VALUE_MAX), AfterValidator(_printable)]]

    quantity: Quantity = Field(
        description="Measured amount: a JSON number or a canonical decimal string, >= 0 and below 10^12, at most "
                    "9 decimal places.",
    )

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        """Refuse too many dimensions and bad names before their values are validated."""
        if isinstance(value, dict):
            dimensions = len(value) - ("quantity" in value)
            if dimensions > MAX_DIMENSIONS:
                raise ValueError(f"{dimensions} dimensions; at most {MAX_DIMENSIONS} besides quantity")
            for name in value:
                if not isinstance(name, str) or not 0 < len(name) <= DIMENSION_NAME_MAX or not name.isprintable():
                    raise ValueError(f"dimension name {clip(name)} is not 1-{DIMENSION_NAME_MAX} printable characters")
        return value

    @property
    def dimensions(self) -> dict[str, str]:
        """Every data field except ``quantity``."""
        return dict(self.__pydantic_extra__ or {})

    def field(self, name: str) -> Decimal | str | None:
        """Value of ``quantity`` or of a dimension."""
        if name == "quantity":
            return self.quantity
        return (self.__pydantic_extra__ or {}).get(name)

    def group_values(self, group_by: tuple[str, ...]) -> tuple[str, ...]:
        """Values of the dimensions ``group_by`` ('' when absent)."""
        dimensions = self.__pydantic_extra__ or {}
        return tuple(dimensions.get(name) or "" for name in group_by)


class UsageEvent(Contract):
    """One metered usage record in CloudEvents 1.0 shape (topic ``usage``)."""

    specversion: Literal["1.0"] = Field(description="CloudEvents version (required).")
    id: Id = Field(description="Idempotency key: a re-sent event keeps its id and is counted once.")
    source: Printable = Field(min_length=1, max_length=256, description="Producer of the event (URI-reference).")
    type: Printable = Field(min_length=1, max_length=64, description="The meter, e.g. api_calls.")
    subject: Id = Field(description="Customer id.")
    time: Annotated[UtcDatetime, BeforeValidator(_time_input)] = Field(
        description="When the usage happened: RFC 3339 with a UTC offset (stored as UTC), from 1970 on, within the "
                    "past horizon and the future tolerance.")
    datacontenttype: Annotated[str | None, BeforeValidator(_json_content_type)] = Field(
        default=None, description="Media type of data: application/json (a UTF-8 charset parameter is allowed).")
    data: UsageData

    @field_validator("type")
    @classmethod
    def _known_meter(cls, value: str, info: ValidationInfo) -> str:
        meters = _meters(info.context)
        if value not in meters:
            raise ValueError(f"unknown meter {clip(value)}; known meters: {', '.join(meters.names)}")
        return value

    @field_validator("time")
    @classmethod
    def _in_range(cls, value: datetime, info: ValidationInfo) -> datetime:
        context = info.context if info.context and "latest" in info.context else usage_context(info.context)
        if value > context["latest"]:
            raise ValueError(f"time {value.isoformat()} is more than {context['future_tolerance']:g}s in the future")
        if value < context["earliest"]:
            raise ValueError(f"time {value.isoformat()} is before {context['earliest'].isoformat()}: usage events are "
                             f"at most {context['past_horizon']:g} days old and never before 1970")
        return value

    @field_validator("data")
    @classmethod
    def _has_measured_field(cls, value: UsageData, info: ValidationInfo) -> UsageData:
        meter = _meters(info.context).get(info.data.get("type"))
        if meter is not None and value.field(meter.value_field) is None:
            raise ValueError(f"meter {meter.name} needs data.{meter.value_field}")
        return value

    def measured_value(self, meters: MeterSet | None = None) -> Decimal | str:
        """The value this event contributes to its meter's aggregation."""
        meter = (meters or active_meters())[self.type]
        return self.data.field(meter.value_field)

    def group_key(self, meters: MeterSet | None = None) -> tuple[str, ...]:
        """Values of the meter's ``group_by`` dimensions ('' when absent)."""
        return self.data.group_values((meters or active_meters())[self.type].group_by)


def _meters(context: dict[str, Any] | None) -> MeterSet:
    return (context.get("meters") if context else None) or active_meters()


FUTURE_TOLERANCE_S = 300.0
"""How far in the future a usage event's time may be, unless the settings say otherwise."""
PAST_HORIZON_DAYS = 400.0
"""How old a usage event may be, unless the settings say otherwise: a year of late usage and backfills."""


def _default_future_tolerance() -> float:
    return FUTURE_TOLERANCE_S


def _default_past_horizon() -> float:
    return PAST_HORIZON_DAYS


_future_tolerance_source: Callable[[], float] = _default_future_tolerance
_past_horizon_source: Callable[[], float] = _default_past_horizon


def set_future_tolerance_source(source: Callable[[], float]) -> None:
    """Make ``source`` give the default future tolerance of :func:`usage_context` (the settings layer
    registers ``BILLING_USAGE_FUTURE_TOLERANCE_S`` this way)."""
    global _future_tolerance_source
    _future_tolerance_source = source


def set_past_horizon_source(source: Callable[[], float]) -> None:
    """Make ``source`` give the default past horizon (days) of :func:`usage_context` (the settings layer
    registers ``BILLING_USAGE_PAST_HORIZON_DAYS`` this way)."""
    global _past_horizon_source
    _past_horizon_source = source


def usage_context(context: dict[str, Any] | None = None) -> dict[str, Any]:
    """A validation context for usage events with the accepted event times (``earliest``, ``latest``)
    computed from ``now``, ``past_horizon`` (days) and ``future_tolerance`` (seconds); defaults: the
    clock and the settings. Hot loops build it once per batch: every event then validates against
    the same limits."""
    context = dict(context or {})
    tolerance = context.get("future_tolerance")
    if tolerance is None:
        tolerance = context["future_tolerance"] = _future_tolerance_source()
    horizon = context.get("past_horizon")
    if horizon is None:
        horizon = context["past_horizon"] = _past_horizon_source()
    now = context.get("now") or datetime.now(UTC)
    context["latest"] = now + timedelta(seconds=tolerance)
    oldest = (now - EARLIEST_EVENT_TIME).total_seconds() / 86400
    context["earliest"] = EARLIEST_EVENT_TIME if horizon >= oldest else now - timedelta(days=horizon)
    return context


# ------------------------------------------------------------------------------ customers, plans


class Segment(StrEnum):
    STARTUP = "startup"
    SMB = "smb"
    MID_MARKET = "mid_market"
    ENTERPRISE = "enterprise"


class Customer(Contract):
    """A tenant (topic ``customers``, keyed by id; the latest message per id is the current state)."""

    id: Id
    company_name: str = Field(min_length=1, max_length=256)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
    country: CountryCode
    region: str = Field(min_length=1, max_length=32, description="Sales region, e.g. NA, EMEA, APAC, LATAM.")
    currency: CurrencyCode
    segment: Segment
    signup_time: UtcDatetime
    updated_at: UtcDatetime
    tax_region: str | None = Field(
        default=None, min_length=1, max_length=32,
        description="State or province for regional tax rules (e.g. CA, QC); absent = country-level taxes only.",
    )
    tax_exempt: bool = Field(default=False, description="No tax is charged (e.g. reverse-charge B2B).")


class BillingInterval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class BillingTime(StrEnum):
    """When a subscription's billing cycles start (Lago's ``billing_time``)."""

    CALENDAR = "calendar"
    """Calendar months and years (from the 1st, from 1 January)."""
    ANNIVERSARY = "anniversary"
    """Months and years from the subscription's start date (31 January -> 28/29 February -> 31 March)."""


class Plan(Contract):
    """A price plan a subscription refers to."""

    id: Id
    name: str = Field(min_length=1)
    billing_interval: BillingInterval
    base_price: NonNegativeMoney = Field(description="Recurring fee per interval, in `currency`.")
    currency: CurrencyCode


class SubscriptionStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


class SubscriptionEventType(StrEnum):
    CREATED = "created"
    PLAN_CHANGED = "plan_changed"
    STATUS_CHANGED = "status_changed"
    CANCELED = "canceled"


class SubscriptionEvent(Contract):
    """A change of a subscription (topic ``subscriptions``, keyed by customer id).

    ``sequence`` increases per subscription; the message with the highest sequence is the current
    state. A mid-period plan change carries ``previous_plan_id`` and the ``effective_time`` from
    which the new plan applies (pricing prorates around it).
    """

    event_id: Id
    subscription_id: Id
    customer_id: Id
    type: SubscriptionEventType
    sequence: int = Field(ge=1)
    plan_id: Id
    previous_plan_id: Id | None = None
    billing_interval: BillingInterval
    billing_time: BillingTime = Field(default=BillingTime.CALENDAR,
                                      description="Fee cycles on the calendar or from the start date's anniversary.")
    status: SubscriptionStatus
    start_time: UtcDatetime
    end_time: UtcDatetime | None = Field(default=None, description="Set when canceled: end of service.")
    effective_time: UtcDatetime = Field(description="When this change takes effect.")
    event_time: UtcDatetime = Field(description="When the change was recorded.")

    @model_validator(mode="after")
    def _consistent(self) -> SubscriptionEvent:
        if self.type is SubscriptionEventType.PLAN_CHANGED:
            if self.previous_plan_id is None or self.previous_plan_id == self.plan_id:
                raise ValueError("plan_changed needs a previous_plan_id different from plan_id")
        elif self.previous_plan_id is not None:
            raise ValueError("previous_plan_id is only set on plan_changed")
        if (self.type is SubscriptionEventType.CANCELED) != (self.status is SubscriptionStatus.CANCELED):
            raise ValueError("type canceled and status canceled go together")
        if self.status is SubscriptionStatus.CANCELED and self.end_time is None:
            raise ValueError("a canceled subscription needs end_time")
        if self.end_time is not None and self.end_time < self.start_time:
            raise ValueError("end_time is before start_time")
        return self


# ------------------------------------------------------------- adjustments, shipping, invoices


class AdjustmentKind(StrEnum):
    COUPON = "coupon"
    DISCOUNT = "discount"
    CREDIT = "credit"


class Adjustment(Contract):
    """A revenue adjustment applied to an invoice: coupon, negotiated discount or credit."""

    id: Id
    kind: AdjustmentKind
    code: str | None = Field(default=None, max_length=64, description="Coupon code, if any.")
    description: str = ""
    percent_off: Decimal | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    amount: NonNegativeMoney = Field(description="Amount subtracted from the invoice (positive).")


class ShippingDetails(Contract):
    """Logistics of a physical add-on (hardware, printed material) billed on an invoice."""

    recipient: str = Field(min_length=1)
    address_line: str = Field(min_length=1)
    city: str = Field(min_length=1)
    postal_code: str = ""
    country: CountryCode
    carrier: str = Field(min_length=1)
    tracking_number: str | None = None
    cost: NonNegativeMoney
    shipped_at: UtcDatetime | None = None
    delivered_at: UtcDatetime | None = None


class LineKind(StrEnum):
    SUBSCRIPTION = "subscription"
    USAGE = "usage"
    ADD_ON = "add_on"
    SHIPPING = "shipping"
    PRORATION = "proration"
    COMMITMENT = "commitment"  # minimum-commitment true-up
    CORRECTION = "correction"  # late usage of an earlier, finalized invoice (charge ``<code>@<YYYY-MM>``)


class BreakdownStep(BaseModel):
    """One step of how a line amount was computed (e.g. one pricing tier)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    quantity: Decimal = Field(allow_inf_nan=False)
    unit_price: Money
    amount: Money
    details: dict[str, str] = Field(default_factory=dict)


class LineItem(BaseModel):
    """One line of an invoice; ``amount`` may be negative for proration credits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: LineKind
    charge: str = Field(min_length=1, description="Charge code: plan id, meter name, add-on sku.")
    meter: str | None = None
    description: str = ""
    quantity: Decimal = Field(allow_inf_nan=False)
    unit_price: Money
    amount: Money
    breakdown: tuple[BreakdownStep, ...] = ()
    service_start: UtcDatetime | None = Field(default=None, description="Start of the service the line bills (its usage month, "
                                              "or the part of the billing cycle a fee pays for); revenue is recognized over it.")
    service_end: UtcDatetime | None = Field(default=None, description="End of the service the line bills (exclusive).")


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    FINALIZED = "finalized"
    PAID = "paid"
    VOID = "void"


class Invoice(Contract):
    """An invoice for one customer and period (topic ``invoices``, keyed by customer id; each
    status change is a new message with the same id)."""

    id: Id
    customer_id: Id
    subscription_id: Id | None = None
    period_start: UtcDatetime
    period_end: UtcDatetime
    currency: CurrencyCode
    line_items: tuple[LineItem, ...]
    subtotal: Money
    adjustments: tuple[Adjustment, ...] = ()
    discount_total: NonNegativeMoney = Decimal(0)
    tax_rate: Decimal = Field(default=Decimal(0), ge=0, le=1, allow_inf_nan=False)
    tax: NonNegativeMoney = Decimal(0)
    total: Money
    status: InvoiceStatus
    shipping: ShippingDetails | None = None
    issued_at: UtcDatetime | None = None
    due_at: UtcDatetime | None = None
    paid_at: UtcDatetime | None = None
    voided_at: UtcDatetime | None = None
    void_reason: str | None = Field(default=None, min_length=1, max_length=256,
                                    description="Why the invoice was voided (only on void invoices).")
    event_time: UtcDatetime = Field(description="When this version of the invoice was recorded.")
    number: str | None = Field(default=None, min_length=1, max_length=64, description=(
        "Sequential, gap-free number of the issuer's series (e.g. INV-000042), assigned when the invoice is finalized."))
    replaces: Id | None = Field(default=None, description="The void invoice of the same period this one re-bills.")
    replaced_by: Id | None = Field(default=None, description="The invoice that re-bills this void one.")

    @model_validator(mode="after")
    def _consistent(self) -> Invoice:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        if self.subtotal != sum((line.amount for line in self.line_items), Decimal(0)):
            raise ValueError("subtotal is not the sum of the line item amounts")
        if self.discount_total != sum((a.amount for a in self.adjustments), Decimal(0)):
            raise ValueError("discount_total is not the sum of the adjustments")
        if self.total != self.subtotal - self.discount_total + self.tax:
            raise ValueError("total must equal subtotal - discount_total + tax")
        required = {
            InvoiceStatus.FINALIZED: ("issued_at", "due_at"),
            InvoiceStatus.PAID: ("issued_at", "due_at", "paid_at"),
            InvoiceStatus.VOID: ("voided_at",),
        }.get(self.status, ())
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.status.value} invoice needs {', '.join(missing)}")
        if self.void_reason is not None and self.status is not InvoiceStatus.VOID:
            raise ValueError(f"a {self.status.value} invoice has no void_reason")
        if self.number is not None and self.status is InvoiceStatus.DRAFT:
            raise ValueError("a draft invoice has no number yet (numbers are assigned when it is finalized)")
        if self.replaced_by is not None and self.status is not InvoiceStatus.VOID:
            raise ValueError("only a void invoice can be replaced")
        return self


class CreditNoteLine(BaseModel):
    """What one line of a credit note gives back: the unused part of a fee paid in advance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    charge: str = Field(min_length=1, description="Charge code of the credited fee (``<plan>.<charge>``).")
    description: str = ""
    quantity: Decimal = Field(ge=0, le=1, allow_inf_nan=False, description="Share of the billing cycle credited.")
    amount: NonNegativeMoney = Field(description="Amount credited (positive).")
    service_start: UtcDatetime = Field(description="Start of the billing cycle the fee paid for.")
    service_end: UtcDatetime


class CreditNote(Contract):
    """A correction of a finalized invoice in the customer's favour, issued by the billing engine
    (its amount is credited to the customer's balance and drawn by the next invoices). Topic
    ``credit_notes``, keyed by customer id; a credit note is issued once and never changes."""

    id: Id
    number: str = Field(min_length=1, max_length=64, description="Sequential, gap-free number of the issuer's credit notes.")
    customer_id: Id
    invoice_id: Id = Field(description="The invoice that billed what is credited.")
    period_start: UtcDatetime = Field(description="The month whose invoice run issued it (when the change became known).")
    period_end: UtcDatetime
    currency: CurrencyCode
    reason: str = Field(min_length=1, max_length=256)
    lines: tuple[CreditNoteLine, ...] = Field(min_length=1)
    total: NonNegativeMoney
    issued_at: UtcDatetime
    event_time: UtcDatetime = Field(description="When this version of the credit note was recorded.")

    @model_validator(mode="after")
    def _consistent(self) -> CreditNote:
        if self.total != sum((line.amount for line in self.lines), Decimal(0)):
            raise ValueError("total is not the sum of the line amounts")
        return self


# ------------------------------------------------------------------------------------ payments


class PaymentMethod(StrEnum):
    CARD = "card"
    ACH = "ach"
    SEPA = "sepa"
    PAYPAL = "paypal"
    WIRE = "wire"


class PaymentStatus(StrEnum):
    INITIATED = "initiated"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


class FailureReason(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CARD_EXPIRED = "card_expired"
    DO_NOT_HONOR = "do_not_honor"
    NETWORK_ERROR = "network_error"
    FRAUD_SUSPECTED = "fraud_suspected"
    INVALID_ACCOUNT = "invalid_account"


class PaymentTransaction(Contract):
    """One state change of a payment transaction (topic ``payments``, keyed by customer id).

    Lifecycle: initiated -> succeeded | failed(reason); a retry is a new ``initiated`` with the next
    ``attempt``; a succeeded payment may later be refunded or disputed. All events of one
    transaction share ``id``; ``sequence`` increases by one per event. Processing time of an
    attempt is ``completed_at - initiated_at``.
    """

    event_id: Id
    id: Id = Field(description="Transaction id, shared by all its events.")
    invoice_id: Id
    customer_id: Id
    method: PaymentMethod
    amount: NonNegativeMoney
    currency: CurrencyCode
    status: PaymentStatus
    failure_reason: FailureReason | None = None
    attempt: int = Field(ge=1)
    sequence: int = Field(ge=1)
    initiated_at: UtcDatetime = Field(description="When the current attempt started.")
    completed_at: UtcDatetime | None = Field(default=None, description="When the current attempt settled.")
    refunded_amount: NonNegativeMoney | None = None
    event_time: UtcDatetime

    @model_validator(mode="after")
    def _consistent(self) -> PaymentTransaction:
        failed = self.status is PaymentStatus.FAILED
        if failed != (self.failure_reason is not None):
            raise ValueError("failure_reason is required for failed payments and only for them")
        if self.status is PaymentStatus.INITIATED:
            if self.completed_at is not None:
                raise ValueError("an initiated payment has no completed_at")
        elif self.completed_at is None:
            raise ValueError(f"a {self.status.value} payment needs completed_at")
        if self.completed_at is not None and self.completed_at < self.initiated_at:
            raise ValueError("completed_at is before initiated_at")
        if (self.status is PaymentStatus.REFUNDED) != (self.refunded_amount is not None):
            raise ValueError("refunded_amount is required for refunded payments and only for them")
        if self.refunded_amount is not None and self.refunded_amount > self.amount:
            raise ValueError("refunded_amount exceeds the payment amount")
        return self

    @property
    def processing_seconds(self) -> float | None:
        """Seconds from initiation to settlement of the current attempt."""
        return (self.completed_at - self.initiated_at).total_seconds() if self.completed_at else None


# -------------------------------------------------------------------------------- dead letters


class DeadLetter(Contract):
    """A message that could not be processed (topic ``dead_letters``): the original bytes, why,
    and where it came from (partition/offset are absent when it was rejected at the HTTP API)."""

    payload_b64: str = Field(description="Original message bytes, base64.")
    key_b64: str | None = None
    reason: str = Field(min_length=1, max_length=2000)
    source_topic: str = Field(min_length=1)
    partition: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)
    time: UtcDatetime = Field(description="When the message was dead-lettered.")

    @classmethod
    def wrap(cls, payload: bytes, reason: str, source_topic: str, *, key: bytes | None = None,
             partition: int | None = None, offset: int | None = None, time: datetime | None = None) -> DeadLetter:
        """Build a dead letter for the raw ``payload``."""
        return cls(
            payload_b64=base64.b64encode(payload).decode(),
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            reason=reason[:2000],
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            time=time or datetime.now(UTC),
        )

    @property
    def payload(self) -> bytes:
        """The original message bytes."""
        return base64.b64decode(self.payload_b64)


# -------------------------------------------------------------------------------------- alerts

Amount = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=38, decimal_places=9),
    PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json"),
]
"""A signed exact decimal of a meter's unit (or a score); on the wire a decimal string without exponent."""


class AlertType(StrEnum):
    """The kind of an alert, as its CloudEvents ``type``."""

    USAGE_THRESHOLD = "usage.threshold.exceeded"
    USAGE_ANOMALY = "usage.anomaly.detected"
    PAYMENT_DUE = "billing.payment.due"
    PAYMENT_OVERDUE = "billing.payment.overdue"
    CREDIT_LOW = "billing.credit.low"
    SPEND_THRESHOLD = "billing.spend.threshold.exceeded"


class ThresholdUnit(StrEnum):
    """What a usage threshold counts: units of the meter, or percent of the plan's included units."""

    UNITS = "units"
    PERCENT = "percent"


class SpendUnit(StrEnum):
    """What a spend threshold counts: money in the customer's currency, or percent of the plan's minimum commitment."""

    AMOUNT = "amount"
    PERCENT_OF_MINIMUM = "percent_of_minimum"


class DueUnit(StrEnum):
    """What a payment reminder's threshold counts: days before the invoice is due, or days overdue."""

    DAYS_BEFORE_DUE = "days_before_due"
    DAYS_OVERDUE = "days_overdue"


class AnomalyDirection(StrEnum):
    SPIKE = "spike"
    DROP = "drop"


class AlertData(BaseModel):
    """What fired: the rule, the meter, the period and the value, plus the fields of its kind.

    A usage threshold alert has ``threshold`` (as written in the rule), ``unit`` and ``limit`` (the
    threshold in units of the meter); ``value`` is the usage of the period so far. A usage anomaly
    alert has ``baseline`` (median of the same hour of the week over the past weeks), ``mad`` (their
    median absolute deviation), ``score`` (robust z-score: the distance to the baseline over 1.4826 x
    the MAD or the series' noise, whichever is larger; absent when both are 0) and ``direction``;
    ``value`` is the usage of the hour, the period is that hour. A payment reminder (due in N days,
    overdue by N days) has no meter; it has ``invoice_id``, ``currency`` and ``due_at``, ``threshold``
    is N with ``unit`` days_before_due or days_overdue, ``value`` the invoice's total and the period
    the invoice's. A low credit balance has ``threshold`` and ``currency``: ``value`` is the balance,
    the period the month it was seen in. A spend threshold has ``threshold``, ``unit`` (amount or
    percent_of_minimum), ``limit`` (the threshold as money) and ``currency``: ``value`` is the spend of
    the period so far.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Id = Field(description="Id of the alert rule that fired.")
    meter: str | None = Field(default=None, min_length=1, max_length=64, description="Absent on payment reminders.")
    period_start: UtcDatetime
    period_end: UtcDatetime
    value: Amount
    threshold: Amount | None = None
    unit: ThresholdUnit | DueUnit | SpendUnit | None = None
    limit: Amount | None = Field(default=None, description="The threshold in units of the meter.")
    baseline: Amount | None = None
    mad: Amount | None = None
    score: Amount | None = None
    direction: AnomalyDirection | None = None
    invoice_id: Id | None = None
    currency: CurrencyCode | None = None
    due_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _period(self) -> AlertData:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        return self


_INVOICE_FIELDS = {"invoice_id", "currency", "due_at"}
_USAGE_FIELDS = {"meter"}
_REMINDER = ({"threshold", "unit", *_INVOICE_FIELDS}, {"limit", "baseline", "mad", "score", "direction", *_USAGE_FIELDS})
_ALERT_FIELDS = {
    AlertType.USAGE_THRESHOLD: ({"threshold", "unit", "limit", *_USAGE_FIELDS}, {"baseline", "mad", "score", "direction",
                                                                                  *_INVOICE_FIELDS}),
    AlertType.USAGE_ANOMALY: ({"baseline", "mad", "direction", *_USAGE_FIELDS}, {"threshold", "unit", "limit", *_INVOICE_FIELDS}),
    AlertType.PAYMENT_DUE: _REMINDER,
    AlertType.PAYMENT_OVERDUE: _REMINDER,
    AlertType.CREDIT_LOW: ({"threshold", "currency"}, {"unit", "limit", "baseline", "mad", "score", "direction", "meter",
                                                       "invoice_id", "due_at"}),
    AlertType.SPEND_THRESHOLD: ({"threshold", "unit", "limit", "currency"}, {"baseline", "mad", "score", "direction", "meter",
                                                                             "invoice_id", "due_at"}),
}
"""Alert type -> (data fields it requires, data fields it must not have)."""


class AlertEvent(Contract):
    """One fired alert in CloudEvents 1.0 shape (``subject`` = customer id, ``type`` = its kind).

    ``id`` is derived from the rule, the customer, the period and the threshold (or the hour), so a
    replay or a restart that fires the same alert again produces the same id: consumers keep the
    first (exactly-once effect by an idempotent id).
    """

    specversion: Literal["1.0"] = "1.0"
    id: Id = Field(description="Deterministic alert id: the same alert always has the same id.")
    source: Printable = Field(min_length=1, max_length=256, description="What evaluated the rule.")
    type: AlertType
    subject: Id = Field(description="Customer id.")
    time: UtcDatetime = Field(description="When the alert was detected.")
    datacontenttype: Literal["application/json"] = "application/json"
    data: AlertData

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> AlertEvent:
        required, forbidden = _ALERT_FIELDS[self.type]
        missing = sorted(name for name in required if getattr(self.data, name) is None)
        extra = sorted(name for name in forbidden if getattr(self.data, name) is not None)
        if missing or extra:
            raise ValueError(f"a {self.type.value} alert needs data.{', data.'.join(missing)}" if missing else
                             f"a {self.type.value} alert has no data.{', data.'.join(extra)}")
        return self


# ----------------------------------------------------------------------------------- reports


class ReportKind(StrEnum):
    """What a report shows."""

    CUSTOMER_USAGE = "customer_usage"
    FINANCE_SUMMARY = "finance_summary"
    """Booked, collected, outstanding and MRR movements of a month, for admins (no customer)."""


class ReportFormat(StrEnum):
    """The file a report is rendered to."""

    CSV = "csv"
    PDF = "pdf"


def scope_rule(kind: ReportKind) -> str:
    """What a report of ``kind`` needs of the customer (the message of a request that breaks it)."""
    if kind is ReportKind.FINANCE_SUMMARY:
        return "a finance_summary covers every customer: do not name a customer"
    return f"a {kind.value} report needs a customer"


class ReportJob(Contract):
    """A requested report: the message on the report jobs topic that a report worker executes (key = job id).

    ``id`` is derived from who asked and their idempotency key, so asking again with the same key names
    the same job.
    """

    id: Id = Field(description="Job id (`rpt-` + 24 hex digits).")
    customer_id: Id | None = Field(default=None, description="The customer reported; none for a finance summary.")
    period: str = Field(pattern=r"^\d{4}-\d{2}$", description="The calendar month reported, `YYYY-MM`.")
    kind: ReportKind = ReportKind.CUSTOMER_USAGE
    format: ReportFormat
    requested_at: UtcDatetime
    requested_by: Id = Field(description="The API key id that asked, or `cli`.")
    idempotency_key: Printable = Field(min_length=1, max_length=256)

    @model_validator(mode="after")
    def _scoped(self) -> ReportJob:
        if (self.customer_id is None) != (self.kind is ReportKind.FINANCE_SUMMARY):
            raise ValueError(scope_rule(self.kind))
        return self


# ------------------------------------------------------------------------- registry and codecs

TOPIC_MODELS: dict[str, type[Contract]] = {
    "usage": UsageEvent,
    "customers": Customer,
    "subscriptions": SubscriptionEvent,
    "invoices": Invoice,
    "credit_notes": CreditNote,
    "payments": PaymentTransaction,
    "dead_letters": DeadLetter,
    "alerts": AlertEvent,
    "report_jobs": ReportJob,
}
"""Logical topic name (keys of ``Settings.topics()``) -> model of its messages."""

ALL_MODELS: tuple[type[BaseModel], ...] = (*TOPIC_MODELS.values(), Plan)
"""Every top-level contract (exported as JSON Schema)."""


def to_bytes(model: BaseModel) -> bytes:
    """Serialize a contract to its wire form (compact UTF-8 JSON, absent fields left out)."""
    return model.__pydantic_serializer__.to_json(model, exclude_none=True)


UNKNOWN_ATTRIBUTE = ("unknown attribute: CloudEvents extension attributes are not accepted (a usage event has "
                     "specversion, id, source, type, subject, time, datacontenttype and data)")


def describe_error(exc: ValidationError) -> str:
    """One line naming every failed field and why (an unknown top-level attribute of a usage event as one)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) if len(str(p)) <= ECHO_MAX else clip(p) for p in err["loc"]) or "message"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and exc.title == UsageEvent.__name__ and len(err["loc"]) == 1:
            msg = UNKNOWN_ATTRIBUTE
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def _has_float(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    for item in value:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and _has_float(item)):
            return True
    return False


def loads_exact(raw: bytes | str) -> Any:
    """Parse JSON with exact numbers: non-integer numbers become Decimal and big integers stay
    exact. orjson reads the document; one holding a float (a fraction, or an integer beyond 64 bits)
    is re-read by the standard library, which also reads what orjson refuses and reports malformed
    input (its ValueError). Bytes must be UTF-8 (the standard library alone would also read UTF-16
    and UTF-32)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(_utf8(raw), parse_float=Decimal)
    return json.loads(raw, parse_float=Decimal) if _has_float(document) else document


def _utf8(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None


def parse(model: type[Contract], raw: bytes | str, **context: Any) -> Contract:
    """Parse wire bytes into ``model``; raise :class:`ContractViolation` with a one-line reason.

    Decimal values sent as JSON numbers are read exactly: a document containing a non-integer
    number is re-read with the standard library's Decimal number parser (orjson reads binary
    floats, which would round e.g. 9007199254.740975).
    """
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractViolation(f"invalid JSON: {exc}") from None
    if _has_float(document):
        document = json.loads(raw, parse_float=Decimal)
    if not isinstance(document, dict):
        raise ContractViolation(f"expected a JSON object, got {type(document).__name__}")
    try:
        return model.model_validate(document, context=context or None)
    except ValidationError as exc:
        raise ContractViolation(describe_error(exc)) from None


def parse_usage(raw: bytes | str, *, meters: MeterSet | None = None, now: datetime | None = None,
                future_tolerance: float | None = None, past_horizon: float | None = None,
                context: dict[str, Any] | None = None) -> UsageEvent:
    """Parse one usage event from wire bytes (see :func:`parse`). A loop over many events passes one
    ``context`` made by :func:`usage_context` instead of ``meters``/``now``/``future_tolerance``/``past_horizon``."""
    if context is None:
        context = usage_context({"meters": meters, "now": now, "future_tolerance": future_tolerance,
                                 "past_horizon": past_horizon})
    return parse(UsageEvent, raw, **context)


def parse_topic(topic: str, raw: bytes | str, **context: Any) -> Contract:
    """Parse a message of the logical ``topic`` (a key of :data:`TOPIC_MODELS`)."""
    try:
        model = TOPIC_MODELS[topic]
    except KeyError:
        raise ContractViolation(f"unknown topic {topic!r}; known: {', '.join(TOPIC_MODELS)}") from None
    return parse(model, raw, **context)
