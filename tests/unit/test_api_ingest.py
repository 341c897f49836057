"""The pure ingest logic: decoding, validation, repeats, summaries."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.ingest import BATCH, JSON, SINGLE, Status, check_media, decode, forbidden_subjects, mark_repeats, summary, validate
from api.keys import ApiKey
from api.problems import Problem
from api.recent import RecentIds
from billing.contracts import UsageEvent, describe_error, fast_usage, to_bytes, validate_usage
from billing.meters import MeterSet, DEFAULT_METERS

NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
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


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**16), st.decimals(allow_nan=True, places=None),
    st.sampled_from(["1", "0", "01", "1.5", "1.50", "0.000000001", "1e3", " 1", "-1", "1000000000000000",
                     "1000000000000001", "x", "", "a" * 257, "2025-06-01T11:00:00Z", "2025-06-01T11:00:00.5+02:00",
                     "2025-06-01T11:00:00.1234567Z", "2025-06-01 11:00:00Z", "2025-06-01T11:00Z",
                     "2025-06-01T13:00:00+02:00", "2025-06-01T12:04:59Z", "2025-06-01T12:05:01Z",
                     "2025-06-01T11:00:00-00:00", "2025-06-01T24:00:00Z",
                     "1.0", "api_calls", "storage_gb_hours", "application/json", "text/plain", "c-1", "_x", "a b"]),
)
_KEYS = st.sampled_from(["specversion", "id", "source", "type", "subject", "time", "datacontenttype",
                         "schema_version", "data", "extra"])
_DATA_KEYS = st.sampled_from(["quantity", "region", "endpoint", "_private", "gb_hours"])


@st.composite
def _documents(draw) -> dict:
    doc = event(draw(st.integers(0, 3)))
    for key, value in draw(st.dictionaries(_KEYS, _VALUES, max_size=2)).items():
        doc[key] = value
    if isinstance(doc.get("data"), dict):
        doc["data"] = {**doc["data"], **draw(st.dictionaries(_DATA_KEYS, _VALUES, max_size=2))}
    for key in draw(st.lists(_KEYS, max_size=1)):
        doc.pop(key, None)
    return doc


@settings(max_examples=600, deadline=None)
@given(_documents())
def test_fast_usage_path_equals_pydantic_validation(doc):
    try:
        expected = UsageEvent.model_validate(doc, context=CONTEXT)
    except ValidationError:
        expected = None
    fast = fast_usage(doc, CONTEXT["meters"], NOW, CONTEXT["future_tolerance"])
    if fast is not None:
        assert expected is not None, doc
        event_, payload = fast
        assert event_ == expected and payload == to_bytes(expected)
        assert event_.model_fields_set == expected.model_fields_set
        assert event_.data.model_fields_set == expected.data.model_fields_set
        assert type(event_.time.tzinfo) is type(expected.time.tzinfo)


def test_common_events_take_the_fast_path():
    docs = [event(0), event(1, time="2025-06-01T13:00:00.25+02:00", data={"quantity": 3, "region": "eu"}),
            event(2, data={"quantity": Decimal("0.5"), "endpoint": "/x"}, schema_version=1)]
    for doc in docs:
        assert fast_usage(doc, CONTEXT["meters"], NOW, CONTEXT["future_tolerance"]) is not None, doc
        assert validate_usage(doc, CONTEXT) == (expected := UsageEvent.model_validate(doc, context=CONTEXT),
                                                to_bytes(expected))


def _error(call) -> str:
    with pytest.raises(ValidationError) as caught:
        call()
    return describe_error(caught.value)


def test_invalid_events_fail_as_pydantic_says():
    doc = event(0, id="", data={"quantity": "-1"})
    assert _error(lambda: validate_usage(doc, CONTEXT)) == _error(lambda: UsageEvent.model_validate(doc, context=CONTEXT))
    assert "data.quantity" in _error(lambda: validate_usage(doc, CONTEXT))
