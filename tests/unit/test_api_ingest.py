"""The pure ingest logic: decoding, validation, repeats, summaries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from api.ingest import (
    BATCH,
    JSON,
    SINGLE,
    Status,
    check_media,
    decode,
    forbidden_subjects,
    mark_repeats,
    summary,
    validate,
)
from api.keys import ApiKey
from api.problems import Problem
from api.recent import RecentIds
from billing.core.contracts import to_bytes
from billing.core.meters import DEFAULT_METERS, MeterSet

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
CONTEXT = {"meters": MeterSet(DEFAULT_METERS), "now": NOW, "future_tolerance": 300.0}


def event(i: int = 0, subject: str = "c1", **overrides) -> dict:
    doc = {"specversion": "1.0", "id": f"e{i}", "source": "s", "type": "api_calls", "subject": subject,
           "time": "2025-06-01T11:00:00Z", "data": {"quantity": "1", "region": "eu"}}
    return {**doc, **overrides}


@pytest.mark.parametrize("header", ["application/json", "Application/JSON; charset=utf-8", SINGLE, BATCH])
def test_accepted_media_types(header):
    assert check_media(header) in (JSON, SINGLE, BATCH)


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/xml", "multipart/form-data"])
def test_other_media_types_are_415(header):
    with pytest.raises(Problem) as caught:
        check_media(header)
    assert caught.value.status == 415


def test_decode_single_and_batch():
    assert decode(orjson.dumps(event()), JSON, 10) == [event()]
    assert decode(orjson.dumps([event(1), event(2)]), BATCH, 10) == [event(1), event(2)]


def test_decimal_numbers_are_read_exactly():
    [doc] = decode(b'{"data": {"quantity": 9007199254.740975}}', JSON, 10)
    assert str(doc["data"]["quantity"]) == "9007199254.740975"


def test_one_fraction_makes_the_whole_batch_exact():
    docs = decode(b'[{"specversion": "1.0", "q": 1}, {"q": 0.1}, {"q": 12345678901234567890123}]', BATCH, 10)
    assert docs == [{"specversion": "1.0", "q": 1}, {"q": Decimal("0.1")}, {"q": 12345678901234567890123}]
    assert type(docs[1]["q"]) is Decimal


def test_huge_integers_are_not_malformed_json():
    [doc] = decode(b'{"q": 123456789012345678901234567890}', JSON, 10)
    assert doc["q"] == 123456789012345678901234567890


@pytest.mark.parametrize(
    ("raw", "media", "status", "kind"),
    [(b"{", JSON, 400, "malformed-json"), (b"[]", JSON, 400, "empty-batch"), (b"3", JSON, 400, "wrong-shape"),
     (b"[{}]", SINGLE, 400, "wrong-shape"), (b"{}", BATCH, 400, "wrong-shape"),
     (b"[{},{},{}]", JSON, 413, "batch-too-large")],
)
def test_decode_errors(raw, media, status, kind):
    with pytest.raises(Problem) as caught:
        decode(raw, media, 2)
    assert (caught.value.status, caught.value.kind) == (status, kind)


def test_validate_keeps_valid_and_explains_invalid():
    items = validate([event(0), event(1, type="nope"), 7, event(3, data={"quantity": "-1"})], CONTEXT)
    assert items[0].status is None and items[0].payload == to_bytes(items[0].event)
    assert [i.status for i in items[1:]] == [Status.REJECTED] * 3
    assert "unknown meter 'nope'" in items[1].reason
    assert items[2].reason == "expected a JSON object, got int" and items[2].id is None
    assert items[3].reason.startswith("data.quantity")


def test_future_time_is_rejected_relative_to_context_now():
    [item] = validate([event(time="2025-06-01T12:10:00Z")], CONTEXT)
    assert "in the future" in item.reason


def test_tenant_key_may_not_write_other_subjects():
    items = validate([event(0, "c1"), event(1, "c2"), event(2, "c3", type="bad")], CONTEXT)
    assert forbidden_subjects(items, ApiKey("k", frozenset({"c1"}), False)) == {1: "c2"}
    assert forbidden_subjects(items, ApiKey("k", frozenset(), True)) == {}


def test_repeats_within_a_request_and_across_requests():
    recent = RecentIds(10)
    items = validate([event(0), event(0), event(1), {**event(1), "data": {"quantity": "2"}}], CONTEXT)
    mark_repeats(items, recent)
    assert [i.status for i in items] == [None, Status.DUPLICATE, None, Status.REJECTED]
    assert "different payload" in items[3].reason
    from api.ingest import digest

    recent.remember("c1", "e0", digest(items[0].payload))
    again = validate([event(0), {**event(0), "source": "other"}], CONTEXT)
    mark_repeats(again, recent)
    assert [i.status for i in again] == [Status.DUPLICATE, Status.REJECTED]


def test_same_id_of_another_customer_is_not_a_repeat():
    recent = RecentIds(10)
    from api.ingest import digest

    [mine] = validate([event(0, "c1")], CONTEXT)
    recent.remember("c1", "e0", digest(mine.payload))
    [theirs] = validate([event(0, "c2")], CONTEXT)
    mark_repeats([theirs], recent)
    assert theirs.status is None


def test_summary_counts_every_status():
    items = validate([event(0), 1], CONTEXT)
    items[0].status = Status.ACCEPTED
    body = summary(items)
    assert {k: body[k] for k in ("accepted", "duplicate", "rejected", "failed")} == \
        {"accepted": 1, "duplicate": 0, "rejected": 1, "failed": 0}
    assert body["items"][0] == {"index": 0, "id": "e0", "status": "accepted"}
