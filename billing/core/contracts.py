"""Event contracts: the pydantic model of every message on every topic.

Every component (simulator, HTTP API, stream worker, billing engine) imports these models. On the
wire they are JSON (orjson): money and quantities are Decimal serialized as strings, times are
timezone-aware UTC (``...Z``), ids are strings. Every model carries ``schema_version``.

Usage events follow CloudEvents 1.0 (``specversion``, ``id`` = idempotency key, ``source``,
``type`` = meter, ``subject`` = customer id, ``time``, ``data``). Validation rejects unknown
meters, negative quantities, missing fields, naive timestamps and timestamps further in the future
than ``Settings.usage_future_tolerance_s``. The validation context may carry ``meters`` (a
:class:`~billing.core.meters.MeterSet`), ``now`` and ``future_tolerance`` (seconds) to override the
settings, which is how tests and replays pin them.

Fast paths for the hot loops: :func:`parse_usage` (bytes -> model, raising
:class:`ContractViolation` with a one-line reason) and :func:`to_bytes` (model -> bytes).
"""

from __future__ import annotations

import base64
import json
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
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from billing.core.errors import BillingError
from billing.core.meters import MeterSet, active_meters

SCHEMA_VERSION = 1
CLOUDEVENTS_SPECVERSION = "1.0"
QUANTITY_MAX = Decimal(10) ** 15
QUANTITY_DECIMAL_PLACES = 9


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


class UsageData(BaseModel):
    """Payload of a usage event: the quantity plus string dimensions (region, endpoint, tier,
    user_id, ...). Dimensions are free-form; each meter says which ones it groups on."""

    model_config = ConfigDict(frozen=True, extra="allow", coerce_numbers_to_str=True)
    __pydantic_extra__: dict[str, Annotated[str, Field(max_length=256)]]

    quantity: Decimal = Field(
        ge=0,
        le=QUANTITY_MAX,
        decimal_places=QUANTITY_DECIMAL_PLACES,
        allow_inf_nan=False,
        description="Measured amount (JSON number or string), >= 0.",
    )

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

    specversion: Literal["1.0"] = CLOUDEVENTS_SPECVERSION
    id: Id = Field(description="Idempotency key: a re-sent event keeps its id and is counted once.")
    source: str = Field(min_length=1, max_length=256, description="Producer of the event (URI-reference).")
    type: str = Field(min_length=1, max_length=64, description="The meter, e.g. api_calls.")
    subject: Id = Field(description="Customer id.")
    time: UtcDatetime = Field(description="When the usage happened (timezone-aware; stored as UTC).")
    datacontenttype: Literal["application/json"] | None = None
    data: UsageData

    @field_validator("type")
    @classmethod
    def _known_meter(cls, value: str, info: ValidationInfo) -> str:
        meters = _meters(info.context)
        if value not in meters:
            raise ValueError(f"unknown meter {value!r}; known meters: {', '.join(meters.names)}")
        return value

    @field_validator("time")
    @classmethod
    def _not_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        context = info.context if info.context and "latest" in info.context else usage_context(info.context)
        if value > context["latest"]:
            raise ValueError(f"time {value.isoformat()} is more than {context['future_tolerance']:g}s in the future")
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


def _default_future_tolerance() -> float:
    return FUTURE_TOLERANCE_S


_future_tolerance_source: Callable[[], float] = _default_future_tolerance


def set_future_tolerance_source(source: Callable[[], float]) -> None:
    """Make ``source`` give the default future tolerance of :func:`usage_context` (the settings layer
    registers ``BILLING_USAGE_FUTURE_TOLERANCE_S`` this way)."""
    global _future_tolerance_source
    _future_tolerance_source = source


def usage_context(context: dict[str, Any] | None = None) -> dict[str, Any]:
    """A validation context for usage events with the latest event time allowed (``latest``)
    computed from ``now`` and ``future_tolerance`` (defaults: the clock and the settings). Hot loops
    build it once per batch: every event then validates against the same limit."""
    context = dict(context or {})
    tolerance = context.get("future_tolerance")
    if tolerance is None:
        tolerance = context["future_tolerance"] = _future_tolerance_source()
    now = context.get("now") or datetime.now(UTC)
    context["latest"] = now + timedelta(seconds=tolerance)
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


# ------------------------------------------------------------------------- registry and codecs

TOPIC_MODELS: dict[str, type[Contract]] = {
    "usage": UsageEvent,
    "customers": Customer,
    "subscriptions": SubscriptionEvent,
    "invoices": Invoice,
    "payments": PaymentTransaction,
    "dead_letters": DeadLetter,
}
"""Logical topic name (keys of ``Settings.topics()``) -> model of its messages."""

ALL_MODELS: tuple[type[BaseModel], ...] = (*TOPIC_MODELS.values(), Plan)
"""Every top-level contract (exported as JSON Schema)."""


def to_bytes(model: BaseModel) -> bytes:
    """Serialize a contract to its wire form (compact UTF-8 JSON, absent fields left out)."""
    return model.__pydantic_serializer__.to_json(model, exclude_none=True)


def describe_error(exc: ValidationError) -> str:
    """One line naming every failed field and why."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "message"
        msg = err["msg"].removeprefix("Value error, ")
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
    input (its ValueError)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw, parse_float=Decimal)
    return json.loads(raw, parse_float=Decimal) if _has_float(document) else document


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
                future_tolerance: float | None = None, context: dict[str, Any] | None = None) -> UsageEvent:
    """Parse one usage event from wire bytes (see :func:`parse`). A loop over many events passes one
    ``context`` made by :func:`usage_context` instead of ``meters``/``now``/``future_tolerance``."""
    if context is None:
        context = usage_context({"meters": meters, "now": now, "future_tolerance": future_tolerance})
    return parse(UsageEvent, raw, **context)


def parse_topic(topic: str, raw: bytes | str, **context: Any) -> Contract:
    """Parse a message of the logical ``topic`` (a key of :data:`TOPIC_MODELS`)."""
    try:
        model = TOPIC_MODELS[topic]
    except KeyError:
        raise ContractViolation(f"unknown topic {topic!r}; known: {', '.join(TOPIC_MODELS)}") from None
    return parse(model, raw, **context)
