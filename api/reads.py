"""Warehouse queries of the read endpoints. Every function takes ``(client, database, ...)`` and
is run through :meth:`api.readonly_client.Warehouse.read` (in the threadpool, failures as 503).

Tables are ReplacingMergeTrees, read with FINAL: the latest version of every customer, invoice
and rollup window counts. A subscription's state is its event with the highest sequence.
"""

from __future__ import annotations

from datetime import datetime

from clickhouse_connect.driver.client import Client

from billing.core.contracts import Customer, Invoice, InvoiceStatus, SubscriptionEvent
from billing.core.pricing.proration import Period
from billing.invoicing.store import Store
from billing.warehouse import facts

_CUSTOMER = ", ".join(facts.COLUMNS["customers"])
_SUBSCRIPTION = ", ".join(facts.COLUMNS["subscription_events"])
_T = "DateTime('UTC')"


def _customer(row: tuple) -> Customer:
    (customer_id, company_name, email, country, region, code, segment, signup_time, updated_at,
     tax_region, tax_exempt) = row
    return Customer(id=customer_id, company_name=company_name, email=email, country=country, region=region,
                    currency=code, segment=segment, signup_time=signup_time, updated_at=updated_at,
                    tax_region=tax_region, tax_exempt=bool(tax_exempt))


def customer(ch: Client, db: str, customer_id: str) -> Customer | None:
    """The latest state of one customer, or None."""
    rows = ch.query(f"SELECT {_CUSTOMER} FROM {db}.customers FINAL WHERE customer_id = {{id:String}}",
                    parameters={"id": customer_id}).result_rows
    return _customer(rows[0]) if rows else None


def customer_exists(ch: Client, db: str, customer_id: str) -> bool:
    """True when the warehouse has the customer."""
    return bool(ch.query(f"SELECT 1 FROM {db}.customers WHERE customer_id = {{id:String}} LIMIT 1",
                         parameters={"id": customer_id}).result_rows)


def customers_after(ch: Client, db: str, after: str, limit: int) -> list[Customer]:
    """Up to ``limit`` customers with ids greater than ``after``, by id."""
    rows = ch.query(f"SELECT {_CUSTOMER} FROM {db}.customers FINAL WHERE customer_id > {{after:String}} "
                    "ORDER BY customer_id LIMIT {limit:UInt32}", parameters={"after": after, "limit": limit}).result_rows
    return [_customer(row) for row in rows]


def _subscription(row: tuple) -> SubscriptionEvent:
    return SubscriptionEvent(**dict(zip(facts.COLUMNS["subscription_events"], row, strict=True)))


def subscription(ch: Client, db: str, subscription_id: str) -> SubscriptionEvent | None:
    """The latest event (current state) of one subscription, or None."""
    rows = ch.query(f"SELECT {_SUBSCRIPTION} FROM {db}.subscription_events FINAL "
                    "WHERE subscription_id = {id:String} ORDER BY sequence DESC LIMIT 1",
                    parameters={"id": subscription_id}).result_rows
    return _subscription(rows[0]) if rows else None


def subscriptions_of(ch: Client, db: str, customer_id: str) -> list[SubscriptionEvent]:
    """The latest event of each of a customer's subscriptions, by subscription id."""
    rows = ch.query(f"SELECT {_SUBSCRIPTION} FROM {db}.subscription_events FINAL WHERE customer_id = {{c:String}} "
                    "ORDER BY subscription_id, sequence DESC LIMIT 1 BY subscription_id",
                    parameters={"c": customer_id}).result_rows
    return [_subscription(row) for row in rows]


def invoices_of(ch: Client, db: str, customer_id: str, status: InvoiceStatus | None,
                period: Period | None) -> list[Invoice]:
    """A customer's invoices (latest versions), oldest period first."""
    return Store(ch, db).invoices(customer=customer_id, status=status, period=period)


def invoice(ch: Client, db: str, invoice_id: str) -> Invoice | None:
    """The latest version of one invoice, with lines and adjustments, or None."""
    found = Store(ch, db).invoices(ids=[invoice_id])
    return found[0] if found else None


GRANULARITIES = ("minute", "hour", "day", "period")
"""Buckets of :func:`usage_buckets`: minute and hour rollups as stored; the hour rollups per day (in a
time zone) or over the whole queried period."""


def usage_buckets(ch: Client, db: str, granularity: str, start: datetime, end: datetime, *,
                  customers: list[str] | None = None, meter: str | None = None,
                  dimensions: dict[str, str] | None = None, tz: str = "UTC") -> list[tuple]:
    """``(customer_id, meter, group_key, dimensions, aggregation, bucket, sum, peak, last, events)`` of the
    rollup windows starting in ``[start, end)`` per customer, meter, dimension group and bucket (see
    :data:`GRANULARITIES`; ``sum``, ``peak`` and ``last`` are the window's value for minute and hour
    buckets), ordered by meter, customer, group and bucket. ``customers`` None = every customer;
    ``dimensions``: exact values the group must have."""
    bucket = {"minute": "window_start", "hour": "window_start",
              "day": "toTimeZone(toStartOfDay(window_start, {tz:String}), 'UTC')", "period": f"{{start:{_T}}}"}[granularity]
    filters = "".join(f"AND dimensions[{{dk{i}:String}}] = {{dv{i}:String}} " for i in range(len(dimensions or {})))
    parameters = {"w": 60 if granularity == "minute" else 3600, "start": start, "end": end, "m": meter,
                  "c": customers, "tz": tz}
    for i, (name, value) in enumerate((dimensions or {}).items()):
        parameters |= {f"dk{i}": name, f"dv{i}": value}
    return ch.query(
        f"SELECT customer_id, meter, group_key, any(dimensions), any(aggregation), {bucket} AS bucket, "
        f"sum(value), max(value), argMax(value, window_start), sum(event_count) "
        f"FROM {db}.usage_rollups FINAL WHERE window_seconds = {{w:UInt32}} "
        f"AND window_start >= {{start:{_T}}} AND window_start < {{end:{_T}}} "
        + ("AND customer_id IN {c:Array(String)} " if customers is not None else "")
        + ("AND meter = {m:String} " if meter else "")
        + filters
        + "GROUP BY meter, customer_id, group_key, bucket ORDER BY meter, customer_id, group_key, bucket",
        parameters=parameters,
    ).result_rows
