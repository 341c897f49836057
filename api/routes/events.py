"""``POST /v1/events``: usage events in, Kafka out (see :mod:`api.ingest` for the semantics)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.auth import authenticated
from api.body import read_limited
from api.context import ApiContext, context
from api.ingest import (
    ACCEPTED_MEDIA,
    ATTRIBUTE_PREFIX,
    Item,
    Status,
    attributes,
    check_media,
    decode,
    forbidden_subjects,
    mark_repeats,
    summary,
    validate,
)
from api.keys import ApiKey
from api.metrics import DELIVERY, events
from api.problems import Problem
from api.producer import Refused
from billing.core.contracts import usage_context

router = APIRouter(tags=["usage ingest"])

_EXAMPLE = {
    "specversion": "1.0", "id": "evt-0001", "source": "my-service", "type": "api_calls",
    "subject": "cust-42", "time": "2025-01-31T12:00:00Z", "data": {"quantity": 3, "region": "eu", "endpoint": "/v1/search"},
}
INGEST_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "object"} if media.endswith("cloudevents+json") else {}, "example": _EXAMPLE}
    for media in ACCEPTED_MEDIA}}}
"""The documented request body of the ingest endpoints (native and OpenMeter-compatible)."""
_RESULT = {"accepted": 1, "duplicate": 0, "rejected": 0, "failed": 0,
           "items": [{"index": 0, "id": "evt-0001", "status": "accepted"}]}


@router.post(
    "/v1/events",
    status_code=202,
    summary="Ingest one usage event or a batch (CloudEvents)",
    description=(
        "The CloudEvents HTTP binding in its three modes. Structured: one usage event (`application/cloudevents+json` "
        "or `application/json`). Batched: a JSON array of them (`application/cloudevents-batch+json` or "
        "`application/json`). Binary: the attributes in `ce-*` headers (`ce-specversion`, `ce-id`, `ce-source`, "
        "`ce-type`, `ce-subject`, `ce-time`; values percent-encoded) and the event's data as the `application/json` "
        "body. Bodies are UTF-8 (another declared charset is a 415). The event `id` is the idempotency key. Valid "
        "items are accepted once Kafka confirmed them; invalid items are rejected with a reason (an event too large "
        "for the broker too); an event for a customer the key may not write for makes the whole request 403."
    ),
    openapi_extra=INGEST_BODY,
    responses={
        202: {"description": "Per-item results; `accepted` events are durably in Kafka.",
              "content": {"application/json": {"example": _RESULT}}},
        400: {"description": "Malformed JSON or wrong shape."},
        401: {"description": "Missing or unknown API key."},
        403: {"description": "An event names a customer the key may not write for."},
        413: {"description": "Body or batch too large."},
        415: {"description": "Unsupported content type or charset (UTF-8 only)."},
        422: {"description": "No event of the request is valid (per-item reasons)."},
        429: {"description": "Rate limit exceeded (see Retry-After)."},
        503: {"description": "Kafka did not confirm some events; resend the request (ids make it safe)."},
    },
)
async def post_events(request: Request, key: ApiKey = Depends(authenticated)) -> Response:
    headers = request.headers
    ce = {name: value for name, value in headers.items() if name.startswith(ATTRIBUTE_PREFIX)}
    body = await ingest(context(request), key, headers.get("content-type"), headers.get("content-length"),
                        request.stream(), ce)
    return Response(body, status_code=202, media_type="application/json")


async def ingest(ctx: ApiContext, key: ApiKey, content_type: str | None, content_length: str | None,
                 chunks: AsyncIterable[bytes], ce_headers: dict[str, str] | None = None) -> bytes:
    """The 202 response body of a usage request by ``key`` (``ce_headers``: its ``ce-*`` headers, the
    attributes of a binary-mode event), or a Problem. Shared by the route and :mod:`api.direct`, which
    serves it without FastAPI's per-request machinery."""
    items = await prepare(ctx, key, content_type, content_length, chunks, ce_headers)
    body = await deliver(ctx, items)
    if not body["accepted"] and not body["duplicate"]:
        detail = items[0].reason if len(items) == 1 else f"none of the {len(items)} events is valid"
        raise Problem(422, detail, kind="invalid-events", **body)
    return orjson.dumps(body)


async def prepare(ctx: ApiContext, key: ApiKey, content_type: str | None, content_length: str | None,
                  chunks: AsyncIterable[bytes], ce_headers: dict[str, str] | None = None) -> list[Item]:
    """The items of a usage request by ``key``: read, decoded, validated against the contract, authorized
    (a 403 Problem when one names a customer the key may not write for) and checked for repeats; the
    valid ones (``status`` None) are ready for :func:`deliver`. A Problem when the request itself is bad."""
    settings = ctx.settings
    media = check_media(content_type, binary=bool(ce_headers))
    raw = await read_limited(content_length, chunks, settings.api_max_body_bytes)
    documents = decode(raw, media, settings.api_max_batch_events, attributes(ce_headers, content_type) if ce_headers else None)
    items = validate(documents, usage_context({"meters": ctx.meters, "now": datetime.now(UTC),
                                               "future_tolerance": settings.usage_future_tolerance_s,
                                               "past_horizon": settings.usage_past_horizon_days}))
    forbidden = forbidden_subjects(items, key)
    if forbidden:
        subjects = sorted(set(forbidden.values()))
        raise Problem(403, f"key {key.key_id} may not write events for customer(s) {', '.join(subjects)}; nothing was written",
                      kind="forbidden", forbidden=[{"index": i, "subject": s} for i, s in forbidden.items()])
    mark_repeats(items, ctx.recent)
    return items


async def deliver(ctx: ApiContext, items: list[Item]) -> dict[str, Any]:
    """Send the valid ``items`` to Kafka and count every item's outcome; the :func:`~api.ingest.summary`
    of all items, or a 503 Problem (with it) when Kafka did not confirm some."""
    await _deliver(ctx, [item for item in items if item.status is None])
    body = summary(items)
    for status in Status:
        if body[status]:
            events(status.value).inc(body[status])
    if body["failed"]:
        raise Problem(503, f"Kafka did not confirm {body['failed']} event(s); resend the request (event ids make it safe)",
                      kind="delivery-failed", headers={"Retry-After": "1"}, **body)
    return body


async def _deliver(ctx: ApiContext, items: list[Item]) -> None:
    if not items:
        return
    started = time.perf_counter()
    errors = await ctx.producer.send(ctx.settings.topic_usage, [(i.event.subject.encode(), i.payload) for i in items])
    DELIVERY.observe(time.perf_counter() - started)
    delivered = []
    for item, error in zip(items, errors, strict=True):
        if isinstance(error, Refused):
            item.status, item.reason = Status.REJECTED, f"Kafka refuses this event ({error}); resending cannot succeed"
        elif error:
            item.status, item.reason = Status.FAILED, f"Kafka delivery failed: {error}"
        else:
            item.status = Status.ACCEPTED
            delivered.append(((item.event.subject, item.event.id), item.fingerprint))
    ctx.recent.remember_all(delivered)
