"""Request and response bodies of the query and management endpoints.

Write bodies reuse the field definitions (types, patterns, limits) of the event contracts in
:mod:`billing.core.contracts`, so the API accepts exactly what the contracts accept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from billing.core.contracts import (
    BillingInterval,
    BillingTime,
    Customer,
    Id,
    Invoice,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
    UtcDatetime,
)
from billing.core.meters import Aggregation

_STRICT = ConfigDict(extra="forbid")
STORABLE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 12, 31, tzinfo=UTC))


def _storable(value: datetime) -> datetime:
    if not STORABLE[0] <= value <= STORABLE[1]:
        raise ValueError(f"must lie between {STORABLE[0]:%Y-%m-%d} and {STORABLE[1]:%Y-%m-%d} (the warehouse's time range)")
    return value


WriteTime = Annotated[UtcDatetime, AfterValidator(_storable)]
"""A timezone-aware time of a write, within what the warehouse stores (DateTime64)."""


def _fields(model: type[BaseModel], names: tuple[str, ...]) -> dict[str, Any]:
    """``name -> (annotation, FieldInfo)`` of ``model``'s fields, for :func:`pydantic.create_model`."""
    return {name: (model.model_fields[name].annotation, model.model_fields[name]) for name in names}


_CUSTOMER_FIELDS = ("company_name", "email", "country", "region", "currency", "segment", "tax_region", "tax_exempt")
_CUSTOMER_EXAMPLE = {"company_name": "Globex GmbH", "email": "billing@globex.example", "country": "DE",
                     "region": "EMEA", "currency": "EUR", "segment": "smb"}

CustomerBody = create_model(
    "CustomerBody",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [_CUSTOMER_EXAMPLE]}),
    __doc__="A customer's attributes (PUT replaces them all; `signup_time` defaults to the stored one, or now).",
    signup_time=(WriteTime | None, Field(default=None, description="When the customer signed up.")),
    **_fields(Customer, _CUSTOMER_FIELDS),
)

class CustomerCreate(CustomerBody):
    """A new customer: its id plus its attributes (`signup_time` defaults to now)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"id": "cust-globex", **_CUSTOMER_EXAMPLE}]})

    id: Id


_STORED_CUSTOMER = {"schema_version": 1, "id": "cust-globex", **_CUSTOMER_EXAMPLE, "tax_region": None, "tax_exempt": False,
                    "signup_time": "2026-01-05T09:00:00Z", "updated_at": "2026-03-02T10:11:12.345000Z"}


class CustomerPage(BaseModel):
    """One page of customers ordered by id; pass ``next_after`` as ``after`` for the next page."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_STORED_CUSTOMER], "next_after": "cust-globex"}]})

    items: list[Customer]
    next_after: str | None = Field(description="Id to pass as `after` for the next page; null on the last page.")


class WriteAccepted(BaseModel):
    """A write the API published; it becomes visible to reads once the stream worker has stored it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"topic": "billing.customers", "event": _STORED_CUSTOMER}]})

    topic: str = Field(description="Kafka topic the event was published to (acks=all).")
    event: dict[str, Any] = Field(description="The published event, exactly as on the topic.")


class SubscriptionCreate(BaseModel):
    """A new subscription (event `created`, sequence 1)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"customer_id": "cust-globex", "plan_id": "growth", "billing_interval": "month", "status": "active"}]})

    customer_id: Id
    plan_id: Id = Field(description="A product of the plan catalog, priced in the customer's currency.")
    billing_interval: BillingInterval = BillingInterval.MONTH
    billing_time: BillingTime = SubscriptionEvent.model_fields["billing_time"]
    status: Literal[SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING] = SubscriptionStatus.ACTIVE
    start_time: WriteTime | None = Field(default=None, description="Start of service (default: now).")
    subscription_id: Id | None = Field(default=None, description="Default: a new random id.")


class SubscriptionChange(BaseModel):
    """One change of a subscription: a new plan, or a new status (`canceled` cancels it).

    Send exactly one of `plan_id` and `status`.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"plan_id": "scale"}, {"status": "canceled", "end_time": "2026-12-31T23:59:59Z"}]})

    plan_id: Id | None = Field(default=None, description="Switch to this plan (prorated from `effective_time`).")
    status: SubscriptionStatus | None = Field(default=None, description="New status; `canceled` ends the subscription.")
    effective_time: WriteTime | None = Field(default=None, description="When the change applies (default: now).")
    end_time: WriteTime | None = Field(
        default=None, description="Only with status `canceled`: end of service (default: `effective_time`).")

    @model_validator(mode="after")
    def _one_change(self) -> SubscriptionChange:
        if (self.plan_id is None) == (self.status is None):
            raise ValueError("send exactly one of plan_id and status")
        if self.end_time is not None and self.status is not SubscriptionStatus.CANCELED:
            raise ValueError("end_time is only allowed with status canceled")
        return self

    def event_type(self) -> SubscriptionEventType:
        """The subscription event this change publishes."""
        if self.plan_id is not None:
            return SubscriptionEventType.PLAN_CHANGED
        if self.status is SubscriptionStatus.CANCELED:
            return SubscriptionEventType.CANCELED
        return SubscriptionEventType.STATUS_CHANGED


class Subscription(BaseModel):
    """Current state of a subscription: its latest event (highest sequence)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "subscription_id": "sub-7", "customer_id": "cust-globex", "plan_id": "growth", "billing_interval": "month",
        "billing_time": "calendar", "status": "active", "start_time": "2026-01-05T09:00:00Z", "end_time": None, "sequence": 2,
        "last_change": "plan_changed", "changed_at": "2026-03-15T00:00:00Z"}]})

    subscription_id: str
    customer_id: str
    plan_id: str
    billing_interval: BillingInterval
    billing_time: BillingTime
    status: SubscriptionStatus
    start_time: datetime
    end_time: datetime | None
    sequence: int = Field(description="Sequence of the latest change; the next change gets sequence + 1.")
    last_change: SubscriptionEventType
    changed_at: datetime = Field(description="Effective time of the latest change.")

    @classmethod
    def of(cls, event: SubscriptionEvent) -> Subscription:
        """The state a subscription's latest event describes."""
        return cls(subscription_id=event.subscription_id, customer_id=event.customer_id, plan_id=event.plan_id,
                   billing_interval=event.billing_interval, billing_time=event.billing_time, status=event.status,
                   start_time=event.start_time, end_time=event.end_time, sequence=event.sequence, last_change=event.type,
                   changed_at=event.effective_time)


class Window(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


class UsagePoint(BaseModel):
    window_start: datetime
    value: Decimal = Field(description="The meter's value in this window (see `day_rule` for days).")
    events: int = Field(description="Usage events counted in the window.")


class UsageSeries(BaseModel):
    """One meter x dimension group: its windows that have usage, oldest first."""

    meter: str
    unit: str
    aggregation: Aggregation
    dimensions: dict[str, str] = Field(description="Values of the meter's group_by dimensions.")
    points: list[UsagePoint]


class Usage(BaseModel):
    """Usage of one customer: one series per meter and dimension group."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "cust-globex", "window": "hour", "start": "2026-09-10T10:00:00Z", "end": "2026-09-10T12:00:00Z",
        "day_rule": None, "series": [
            {"meter": "api_calls", "unit": "calls", "aggregation": "SUM", "dimensions": {"region": "eu", "endpoint": "/v1/search"},
             "points": [{"window_start": "2026-09-10T10:00:00Z", "value": "1250", "events": 410},
                        {"window_start": "2026-09-10T11:00:00Z", "value": "980", "events": 377}]},
            {"meter": "active_seats", "unit": "seats", "aggregation": "UNIQUE_COUNT", "dimensions": {},
             "points": [{"window_start": "2026-09-10T10:00:00Z", "value": "14", "events": 96}]}]}]})

    customer_id: str
    window: Window
    start: datetime = Field(description="`from`, rounded down to the start of its window.")
    end: datetime = Field(description="`to` (exclusive): windows starting before it are included.")
    day_rule: str | None = Field(default=None, description="How a day's value is computed from hours (window=day).")
    series: list[UsageSeries]


_INVOICE_SUMMARY_FIELDS = ("id", "customer_id", "subscription_id", "period_start", "period_end", "currency",
                           "subtotal", "discount_total", "tax_rate", "tax", "total", "status", "issued_at", "due_at",
                           "paid_at", "voided_at", "void_reason", "number", "replaces", "replaced_by")

InvoiceSummary = create_model(
    "InvoiceSummary",
    __config__=_STRICT,
    __doc__="An invoice without its lines (GET /v1/invoices/{id} has them).",
    **{name: (Invoice.model_fields[name].annotation, Field(description=Invoice.model_fields[name].description))
       for name in _INVOICE_SUMMARY_FIELDS},
)


def summary_of(invoice: Invoice) -> BaseModel:
    """The summary of ``invoice``."""
    return InvoiceSummary(**{name: getattr(invoice, name) for name in _INVOICE_SUMMARY_FIELDS})


class InvoicePreview(BaseModel):
    """The running total of the open period: a draft priced on the usage up to `until`."""

    period_start: datetime
    period_end: datetime
    until: datetime = Field(description="Usage up to this moment is included.")
    invoice: Invoice
