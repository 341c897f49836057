"""Subscriptions: create and change (admin; event-sourced through the subscriptions topic), read."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from api import reads
from api.auth import admin, authenticated
from api.context import ApiContext, context
from api.keys import ApiKey
from api.problems import Problem
from api.publish import publish
from api.routes.customers import now_ms
from api.routes.responses import READ_ERRORS, WRITE_ERRORS, SubscriptionId, problem
from api.schemas import Subscription, SubscriptionChange, SubscriptionCreate, WriteAccepted
from billing.core.contracts import (
    Customer,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
    describe_error,
)
from billing.core.errors import ConfigError

router = APIRouter(tags=["subscriptions"])

EVENT_SOURCED = (
    " Writes are event-sourced: the API publishes a `SubscriptionEvent` to the subscriptions topic (acks=all, keyed by "
    "the customer id) and answers 202 with it; reads show the change once the stream worker has stored it. A change "
    "gets the sequence after the latest stored one, so send one change at a time and wait until "
    "GET /v1/subscriptions/{id} shows it before the next."
)


async def _customer(ctx: ApiContext, customer_id: str) -> Customer:
    found = await ctx.warehouse.read(reads.customer, customer_id)
    if found is None:
        raise Problem(422, f"customer_id: no customer {customer_id!r} in the warehouse", kind="unknown-customer")
    return found


def _check_plan(ctx: ApiContext, plan_id: str, customer: Customer, interval: str) -> None:
    try:
        ctx.catalog.plan_for(plan_id, customer.currency, interval)
    except ConfigError as exc:
        raise Problem(422, f"plan_id: {exc}", kind="unknown-plan") from None


def _event(**fields) -> SubscriptionEvent:
    try:
        return SubscriptionEvent(event_id=f"se-{uuid.uuid4().hex}", **fields)
    except ValidationError as exc:
        raise Problem(422, describe_error(exc), kind="invalid-change") from None


@router.post(
    "/v1/subscriptions",
    status_code=202,
    response_model=WriteAccepted,
    summary="Create a subscription (admin)",
    description="Publishes a `created` event (sequence 1) for a stored customer and a plan the catalog prices in the "
                "customer's currency. Send a `subscription_id` to make retries safe (409 once it is stored)."
                + EVENT_SOURCED,
    responses={**WRITE_ERRORS, 409: problem("The subscription id exists already."),
               422: problem("Invalid body, unknown customer, or a plan not priced in the customer's currency.")},
)
async def create_subscription(request: Request, body: SubscriptionCreate, _key: ApiKey = Depends(admin)) -> WriteAccepted:
    ctx = context(request)
    customer = await _customer(ctx, body.customer_id)
    _check_plan(ctx, body.plan_id, customer, body.billing_interval.value)
    subscription_id = body.subscription_id or f"sub-{uuid.uuid4().hex[:16]}"
    if body.subscription_id and await ctx.warehouse.read(reads.subscription, subscription_id):
        raise Problem(409, f"subscription {subscription_id!r} exists already", kind="subscription-exists")
    now = now_ms()
    start = body.start_time or now
    event = _event(subscription_id=subscription_id, customer_id=customer.id, type=SubscriptionEventType.CREATED,
                   sequence=1, plan_id=body.plan_id, billing_interval=body.billing_interval, billing_time=body.billing_time,
                   status=body.status,
                   start_time=start, effective_time=start, event_time=now)
    return await publish(ctx, "subscriptions", customer.id, event)


@router.patch(
    "/v1/subscriptions/{subscription_id}",
    status_code=202,
    response_model=WriteAccepted,
    summary="Change plan, change status or cancel a subscription (admin)",
    description="A new plan publishes `plan_changed` (flat fees prorate around `effective_time`); a new status "
                "publishes `status_changed`, or `canceled` with the `end_time` of service." + EVENT_SOURCED,
    responses={**WRITE_ERRORS, 404: problem("Unknown subscription."),
               409: problem("The subscription is canceled, or already has that plan or status."),
               422: problem("Invalid change, or a plan not priced in the customer's currency.")},
)
async def change_subscription(request: Request, subscription_id: SubscriptionId, body: SubscriptionChange,
                              _key: ApiKey = Depends(admin)) -> WriteAccepted:
    ctx = context(request)
    current = await ctx.warehouse.read(reads.subscription, subscription_id)
    if current is None:
        raise Problem(404, f"no subscription {subscription_id!r} in the warehouse", kind="unknown-subscription")
    if current.status is SubscriptionStatus.CANCELED:
        raise Problem(409, f"subscription {subscription_id} is canceled; create a new one", kind="subscription-canceled")
    if body.plan_id == current.plan_id or body.status is current.status:
        raise Problem(409, f"subscription {subscription_id} already has {body.plan_id or body.status.value!r}",
                      kind="no-change")
    if body.plan_id is not None:
        _check_plan(ctx, body.plan_id, await _customer(ctx, current.customer_id), current.billing_interval.value)
    now = now_ms()
    effective = body.effective_time or now
    kind = body.event_type()
    event = _event(
        subscription_id=subscription_id, customer_id=current.customer_id, type=kind, sequence=current.sequence + 1,
        plan_id=body.plan_id or current.plan_id,
        previous_plan_id=current.plan_id if kind is SubscriptionEventType.PLAN_CHANGED else None,
        billing_interval=current.billing_interval, billing_time=current.billing_time, status=body.status or current.status,
        start_time=current.start_time,
        end_time=(body.end_time or effective) if kind is SubscriptionEventType.CANCELED else None,
        effective_time=effective, event_time=now,
    )
    return await publish(ctx, "subscriptions", current.customer_id, event)


@router.get(
    "/v1/subscriptions/{subscription_id}",
    response_model=Subscription,
    summary="One subscription",
    description="Current state of the subscription: its latest stored change.",
    responses=READ_ERRORS,
)
async def get_subscription(request: Request, subscription_id: SubscriptionId,
                           key: ApiKey = Depends(authenticated)) -> Subscription:
    ctx = context(request)
    current = await ctx.warehouse.read(reads.subscription, subscription_id)
    if current is None or not key.may_access(current.customer_id):  # another tenant's: the same 404
        raise Problem(404, f"no subscription {subscription_id!r} in the warehouse", kind="unknown-subscription")
    return Subscription.of(current)
