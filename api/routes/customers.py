"""Customers: create and replace (admin; event-sourced through the customers topic), read, list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api import reads
from api.auth import admin, authenticated, require_access
from api.context import context
from api.keys import ApiKey
from api.lookup import readable_customer, unknown_customer
from api.problems import Problem
from api.publish import publish
from api.routes.responses import READ_ERRORS, WRITE_ERRORS, CustomerId, problem
from api.schemas import CustomerBody, CustomerCreate, CustomerPage, Subscription, WriteAccepted
from billing.core.contracts import Customer

router = APIRouter(tags=["customers"])

EVENT_SOURCED = (
    " Writes are event-sourced: the API publishes the `Customer` event to the customers topic (acks=all, keyed by "
    "the customer id) and answers 202 with it; reads show it once the stream worker has stored it (usually within "
    "a second or two)."
)


def now_ms() -> datetime:
    """The current UTC time at the warehouse's millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@router.post(
    "/v1/customers",
    status_code=202,
    response_model=WriteAccepted,
    summary="Create a customer (admin)",
    description="Publishes a new customer; 409 when the warehouse already has the id (use PUT to change it)." + EVENT_SOURCED,
    responses={**WRITE_ERRORS, 409: problem("The customer exists already.")},
)
async def create_customer(request: Request, body: CustomerCreate, _key: ApiKey = Depends(admin)) -> WriteAccepted:
    ctx = context(request)
    if await ctx.warehouse.read(reads.customer_exists, body.id):
        raise Problem(409, f"customer {body.id!r} exists already; change it with PUT /v1/customers/{body.id}",
                      kind="customer-exists")
    now = now_ms()
    customer = Customer(**body.model_dump(exclude={"signup_time"}), signup_time=body.signup_time or now, updated_at=now)
    return await publish(ctx, "customers", customer.id, customer)


@router.put(
    "/v1/customers/{customer_id}",
    status_code=202,
    response_model=WriteAccepted,
    summary="Create or replace a customer (admin)",
    description="Publishes the customer's new attributes (all of them; `signup_time` defaults to the stored one)."
                + EVENT_SOURCED,
    responses=WRITE_ERRORS,
)
async def put_customer(request: Request, customer_id: CustomerId, body: CustomerBody,
                       _key: ApiKey = Depends(admin)) -> WriteAccepted:
    ctx = context(request)
    now = now_ms()
    signup = body.signup_time
    if signup is None:
        stored = await ctx.warehouse.read(reads.customer, customer_id)
        signup = stored.signup_time if stored else now
    customer = Customer(id=customer_id, **body.model_dump(exclude={"signup_time"}), signup_time=signup, updated_at=now)
    return await publish(ctx, "customers", customer_id, customer)


@router.get(
    "/v1/customers/{customer_id}",
    response_model=Customer,
    summary="One customer",
    description="The latest state of the customer (admin keys, or a tenant key for its own customers).",
    responses=READ_ERRORS,
)
async def get_customer(request: Request, customer_id: CustomerId, key: ApiKey = Depends(authenticated)) -> Customer:
    ctx = context(request)
    require_access(key, customer_id)
    found = await ctx.warehouse.read(reads.customer, customer_id)
    if found is None:
        raise unknown_customer(customer_id)
    return found


@router.get(
    "/v1/customers",
    response_model=CustomerPage,
    summary="List customers (admin)",
    description="Customers ordered by id, one page at a time: pass the previous page's `next_after` as `after`.",
    responses={**READ_ERRORS, 403: problem("Listing customers needs an admin key.")},
)
async def list_customers(
    request: Request,
    after: Annotated[str, Query(description="Return customers with ids after this one.", max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    _key: ApiKey = Depends(admin),
) -> CustomerPage:
    found = await context(request).warehouse.read(reads.customers_after, after, limit + 1)
    more = len(found) > limit
    page = found[:limit]
    return CustomerPage(items=page, next_after=page[-1].id if more else None)


@router.get(
    "/v1/customers/{customer_id}/subscriptions",
    response_model=list[Subscription],
    summary="A customer's subscriptions",
    description="Current state (latest change) of each of the customer's subscriptions, by subscription id.",
    responses=READ_ERRORS,
    tags=["subscriptions"],
)
async def customer_subscriptions(request: Request, customer_id: CustomerId,
                                 key: ApiKey = Depends(authenticated)) -> list[Subscription]:
    ctx = context(request)
    await readable_customer(ctx, key, customer_id)
    return [Subscription.of(event) for event in await ctx.warehouse.read(reads.subscriptions_of, customer_id)]

