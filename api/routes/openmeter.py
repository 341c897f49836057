"""The OpenMeter-compatible endpoints (``/api/v1``): ingest, meters, meter queries and subjects in
OpenMeter's paths and JSON shapes, on the native ingest pipeline and usage reads (see :mod:`api.openmeter`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field

from api import reads
from api.auth import authenticated, require_access
from api.context import ApiContext, context
from api.ingest import ATTRIBUTE_PREFIX, Item, Status
from api.keys import ApiKey
from api.lookup import readable_customer, unknown_customer
from api.openmeter import (
    SUBJECT,
    OpenMeterMeter,
    OpenMeterQueryResult,
    OpenMeterSubject,
    WindowSize,
    check_aligned,
    check_group_by,
    check_mergeable,
    find_meter,
    local_day,
    meter_shape,
    query_rows,
    subject_shape,
    zone,
)
from api.problems import Problem
from api.routes.events import INGEST_BODY, deliver, prepare
from api.routes.responses import AUTH_ERRORS, READ_ERRORS, problem
from api.routes.usage import DAY_RULE, aware, time_range
from api.schemas import Window
from billing.core.contracts import Id
from billing.core.meters import window_start

router = APIRouter(tags=["OpenMeter-compatible"])

PREFIX = "/api/v1"
SUBJECTS_MAX = 10_000
FILTER = re.compile(r"filterGroupBy\[(.{1,64})\]")
MeterRef = Annotated[str, Path(description="The meter's slug (its name) or id.", min_length=1, max_length=64)]
_GRANULARITY = {WindowSize.MINUTE: "minute", WindowSize.HOUR: "hour", WindowSize.DAY: "day", None: "period"}


@router.post(
    f"{PREFIX}/events",
    status_code=204,
    summary="Ingest events (OpenMeter-compatible)",
    description=(
        "OpenMeter's ingest: one CloudEvent (`application/cloudevents+json`), a batch (`application/cloudevents-batch+json`) "
        "or either as `application/json`, validated by the same contract, deduplicated by the same ids and delivered to "
        "the same topic as `POST /v1/events`. All or nothing: when any event is invalid the answer is 400 with each "
        "item's reason and nothing is written; 204 means every event is durably in Kafka (or was a duplicate)."
    ),
    response_class=Response,
    openapi_extra=INGEST_BODY,
    responses={
        204: {"description": "Every event is in Kafka (or repeats an accepted one)."},
        400: problem("Malformed JSON, wrong shape or an invalid event (per-item reasons in `items`); nothing was written."),
        **{status: AUTH_ERRORS[status] for status in (401, 403, 429)},
        413: problem("Body or batch too large."),
        415: problem("Unsupported content type or charset (UTF-8 only)."),
        503: problem("Kafka did not confirm some events; resend the request (ids make it safe)."),
    },
)
async def ingest_events(request: Request, key: ApiKey = Depends(authenticated)) -> Response:
    headers = request.headers
    ce = {name: value for name, value in headers.items() if name.startswith(ATTRIBUTE_PREFIX)}
    await ingest_all(context(request), key, headers.get("content-type"), headers.get("content-length"), request.stream(), ce)
    return Response(status_code=204)


async def ingest_all(ctx: ApiContext, key: ApiKey, content_type: str | None, content_length: str | None,
                     chunks: AsyncIterable[bytes], ce_headers: dict[str, str] | None = None) -> None:
    """Ingest a request's events all or nothing (nothing when one is invalid: a 400 Problem with the invalid
    items); a Problem otherwise. Shared by the route and :mod:`api.direct`."""
    items = await prepare(ctx, key, content_type, content_length, chunks, ce_headers)
    refused = [item for item in items if item.status is Status.REJECTED]
    if refused:
        raise _invalid(items, refused, "nothing was written")
    body = await deliver(ctx, items)
    refused = [item for item in items if item.status is Status.REJECTED]
    if refused:
        raise _invalid(items, refused, f"the other {body['accepted']} event(s) were written", body)


def _invalid(items: list[Item], refused: list[Item], outcome: str, body: dict[str, Any] | None = None) -> Problem:
    """400 for the ``refused`` of ``items`` (``outcome``: what became of the others; ``body``: the delivery summary)."""
    first = refused[0]
    detail = (first.reason if len(items) == 1 else
              f"{len(refused)} of {len(items)} events are invalid (first: item {first.index}: {first.reason}); {outcome}")
    return Problem(400, detail, kind="invalid-events",
                   items=[item.result() for item in refused] if body is None else body["items"])


@router.get(f"{PREFIX}/meters", response_model=list[OpenMeterMeter], summary="List meters (OpenMeter-compatible)",
            description="The configured meters (`BILLING_METERS_FILE` or the built-in ones) in OpenMeter's shape; read-only.",
            responses=AUTH_ERRORS)
async def list_meters(request: Request, _key: ApiKey = Depends(authenticated)) -> list[OpenMeterMeter]:
    ctx = context(request)
    return [meter_shape(meter, ctx.started) for meter in ctx.meters]


@router.get(f"{PREFIX}/meters/{{meter_id_or_slug}}", response_model=OpenMeterMeter, summary="Get a meter (OpenMeter-compatible)",
            responses={**AUTH_ERRORS, 404: problem("Unknown meter.")})
async def get_meter(request: Request, meter_id_or_slug: MeterRef, _key: ApiKey = Depends(authenticated)) -> OpenMeterMeter:
    ctx = context(request)
    return meter_shape(find_meter(ctx.meters, meter_id_or_slug), ctx.started)


@router.get(
    f"{PREFIX}/meters/{{meter_id_or_slug}}/query",
    response_model=OpenMeterQueryResult,
    summary="Query a meter (OpenMeter-compatible)",
    description=(
        "The meter's usage from the same rollups and by the same rules as `GET /v1/customers/{id}/usage`, one row per "
        "window, subject (with `groupBy=subject` or `subject` filters) and requested dimensions. Without `windowSize` "
        f"one row covers the whole range. Days and whole ranges are computed {DAY_RULE}. Rows of several customers or "
        "dimension groups are merged by the meter's aggregation (SUM and COUNT add, MAX takes the largest); "
        "UNIQUE_COUNT and LATEST meters must be grouped by subject and by each of their dimensions (400 otherwise). "
        "`from` is rounded down to its window (to the hour without `windowSize`). Defaults: `to` = now, `from` = 1 hour "
        "(MINUTE), 1 day (HOUR) or 30 days (DAY, none) earlier; at most 2, 93 or 732 days per query. `windowTimeZone` "
        "needs whole-hour UTC offsets for HOUR and DAY windows. Filter dimensions with `filterGroupBy[name]=value`. "
        "Tenant keys see their own customers only."
    ),
    responses={**READ_ERRORS, 400: problem("Bad range, time zone, groupBy or filter."), 404: problem("Unknown meter.")},
)
async def query_meter(
    request: Request,
    meter_id_or_slug: MeterRef,
    start: Annotated[datetime | None, Query(alias="from", description="Start, inclusive (RFC 3339).")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="End, exclusive (RFC 3339).")] = None,
    window_size: Annotated[WindowSize | None, Query(alias="windowSize")] = None,
    window_time_zone: Annotated[str, Query(alias="windowTimeZone", max_length=64, description="IANA time zone.")] = "UTC",
    subject: Annotated[list[Id], Query(description="Only these subjects (customer ids); groups by subject.")] = (),
    group_by: Annotated[list[Annotated[str, Field(max_length=64)]], Query(alias="groupBy", description="`subject` or dimensions.")] = (),
    key: ApiKey = Depends(authenticated),
) -> OpenMeterQueryResult:
    ctx = context(request)
    meter = find_meter(ctx.meters, meter_id_or_slug)
    if "filterGroupBy" in request.query_params:
        raise Problem(400, "filterGroupBy takes one parameter per dimension: filterGroupBy[region]=eu (deepObject style)",
                      kind="invalid-filter")
    filters = {match.group(1): value for name, value in request.query_params.multi_items() if (match := FILTER.fullmatch(name))}
    dimensions = check_group_by(meter, list(group_by), filters)
    by_subject = SUBJECT in group_by or bool(subject)
    check_mergeable(meter, by_subject, dimensions, filters)
    aware(start, end)
    tz = zone(window_time_zone)
    if window_size is None:
        low, high = time_range(Window.DAY, start, end, datetime.now(UTC), align=lambda moment: window_start(moment, 3600))
    elif window_size is WindowSize.DAY:
        low, high = time_range(Window.DAY, start, end, datetime.now(UTC), align=local_day(tz))
    else:
        low, high = time_range(Window(window_size.value.lower()), start, end, datetime.now(UTC))
    check_aligned(tz, window_size, low, high)
    for customer_id in subject:
        require_access(key, customer_id)
    customers = list(subject) if subject else None if key.admin else sorted(key.tenants)
    rows = await ctx.warehouse.read(reads.usage_buckets, _GRANULARITY[window_size], low, high, customers=customers,
                                    meter=meter.name, dimensions=filters, tz=tz.key)
    return OpenMeterQueryResult(from_=low, to=high, window_size=window_size,
                                data=query_rows(rows, meter, by_subject, dimensions, window_size, tz, high))


@router.get(f"{PREFIX}/subjects", response_model=list[OpenMeterSubject], summary="List subjects (OpenMeter-compatible)",
            description=f"The customers the key may read, as subjects keyed by customer id (at most {SUBJECTS_MAX}, by id).",
            responses={**AUTH_ERRORS, 503: READ_ERRORS[503]})
async def list_subjects(request: Request, key: ApiKey = Depends(authenticated)) -> list[OpenMeterSubject]:
    ctx = context(request)
    if key.admin:
        customers = await ctx.warehouse.read(reads.customers_after, "", SUBJECTS_MAX)
    else:
        found = [await ctx.warehouse.read(reads.customer, tenant) for tenant in sorted(key.tenants)[:SUBJECTS_MAX]]
        customers = [customer for customer in found if customer is not None]
    return [subject_shape(customer) for customer in customers]


@router.get(f"{PREFIX}/subjects/{{subject_key}}", response_model=OpenMeterSubject, summary="Get a subject (OpenMeter-compatible)",
            description="The customer whose id is the subject key.", responses=READ_ERRORS)
async def get_subject(request: Request, subject_key: Annotated[Id, Path(description="The subject key (customer id).")],
                      key: ApiKey = Depends(authenticated)) -> OpenMeterSubject:
    ctx = context(request)
    await readable_customer(ctx, key, subject_key)
    customer = await ctx.warehouse.read(reads.customer, subject_key)
    if customer is None:
        raise unknown_customer(subject_key)
    return subject_shape(customer)
