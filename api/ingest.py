"""Usage ingest, the pure part: request body -> validated items -> per-item results.

Batch semantics (documented in the README): authorization is all-or-nothing (one valid event for
a customer the key may not write for makes the whole request 403 and nothing is produced);
validation is per item (valid items are accepted, invalid ones are rejected with their reason).
An item counts as ``accepted`` only after Kafka confirmed its delivery (acks=all), so the 202
response never reports an event that could still be lost. Items whose delivery failed are
``failed``; the request then answers 503 and the client resends the batch (ids make that safe).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from api.keys import ApiKey
from api.problems import Problem
from api.recent import RecentIds
from billing.core.contracts import UsageEvent, describe_error, loads_exact, to_bytes

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"
ACCEPTED_MEDIA = (JSON, SINGLE, BATCH)


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(slots=True)
class Item:
    """One event of a request and what became of it (``status`` None = valid, not yet sent)."""

    index: int
    id: str | None
    status: Status | None = None
    reason: str | None = None
    event: UsageEvent | None = None
    payload: bytes = b""
    fingerprint: bytes = b""

    def result(self) -> dict[str, Any]:
        """The item as reported to the client."""
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        return out


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header ('' when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_media(content_type: str | None) -> str:
    """The media type of a usage request, or a 415 Problem."""
    media = media_type(content_type)
    if media not in ACCEPTED_MEDIA:
        raise Problem(415, f"content type {media or '(none)'!r} is not accepted; send one of {', '.join(ACCEPTED_MEDIA)}",
                      kind="unsupported-media-type")
    return media


def decode(raw: bytes, media: str, max_events: int) -> list[Any]:
    """The documents of a request body of type ``media``, or a Problem (400, 413) saying what is wrong."""
    try:
        document = loads_exact(raw)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, f"malformed JSON: {exc}", kind="malformed-json") from None
    if isinstance(document, dict) and media != BATCH:
        return [document]
    if isinstance(document, list) and media != SINGLE:
        if not document:
            raise Problem(400, "the batch is empty", kind="empty-batch")
        if len(document) > max_events:
            raise Problem(413, f"the batch has {len(document)} events; at most {max_events} per request",
                          kind="batch-too-large")
        return document
    expected = {SINGLE: "one event (a JSON object)", BATCH: "a JSON array of events"}.get(
        media, "an event object or an array of events")
    raise Problem(400, f"{media} body must be {expected}, got {type(document).__name__}", kind="wrong-shape")


def forbidden_subjects(items: list[Item], key: ApiKey) -> dict[int, str]:
    """Index -> subject of every valid event for a customer the key may not write for."""
    return {
        item.index: item.event.subject for item in items
        if item.event is not None and not key.may_access(item.event.subject)
    }


def validate(documents: list[Any], context: dict[str, Any]) -> list[Item]:
    """One Item per document: valid (event and wire payload set) or rejected with the reason."""
    items = []
    for index, doc in enumerate(documents):
        event_id = doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None
        item = Item(index, event_id)
        if not isinstance(doc, dict):
            item.status, item.reason = Status.REJECTED, f"expected a JSON object, got {type(doc).__name__}"
        else:
            try:
                item.event = UsageEvent.model_validate(doc, context=context)
                item.payload = to_bytes(item.event)
            except ValidationError as exc:
                item.status, item.reason = Status.REJECTED, describe_error(exc)
        items.append(item)
    return items


def digest(payload: bytes) -> bytes:
    """Short fingerprint of an accepted payload."""
    return hashlib.blake2b(payload, digest_size=16).digest()


def mark_repeats(items: list[Item], recent: RecentIds) -> None:
    """Mark valid items already accepted (recently, or earlier in the same request) as duplicates;
    an id reused with a different payload is rejected."""
    first: dict[tuple[str, str], tuple[int, bytes]] = {}
    valid = [item for item in items if item.status is None]
    accepted = recent.get_all([(item.event.subject, item.event.id) for item in valid])
    for item in valid:
        key = (item.event.subject, item.event.id)
        fingerprint = item.fingerprint = digest(item.payload)
        earlier = first.get(key)
        previous = accepted.get(key) if earlier is None else earlier[1]
        if previous is None:
            first[key] = (item.index, fingerprint)
        elif previous == fingerprint:
            item.status = Status.DUPLICATE
            item.reason = f"repeats item {earlier[0]}" if earlier else "already accepted"
        else:
            item.status = Status.REJECTED
            item.reason = (f"id {item.id!r} repeats item {earlier[0]} with a different payload" if earlier
                           else f"id {item.id!r} was already accepted with a different payload")


def summary(items: list[Item]) -> dict[str, Any]:
    """Counts by status (``accepted``, ``duplicate``, ``rejected``, ``failed``) plus the per-item results."""
    counts: dict[str, Any] = {status.value: 0 for status in Status}
    for item in items:
        counts[item.status.value] += 1
    return {**counts, "items": [item.result() for item in items]}
