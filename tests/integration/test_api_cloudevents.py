"""POST /v1/events with requests made by the official CloudEvents Python SDK (`cloudevents` from
PyPI, unchanged): binary, structured and batched content modes over real HTTP, each read back from
Kafka as the same usage event."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from api.keys import KeyStore, store_path
from billing.core.contracts import parse_usage
from tests.integration.api_fixtures import TopicTail, serve

pytestmark = pytest.mark.integration

CUSTOMER = f"cust-{uuid.uuid4().hex[:10]}"
BATCH = "application/cloudevents-batch+json"


@pytest.fixture(scope="module")
def served(kafka, warehouse, api_settings):
    with serve(api_settings) as running:
        yield running


@pytest.fixture(scope="module")
def http(served) -> Iterator[httpx.Client]:
    url, settings = served
    token = KeyStore(store_path(settings)).create([CUSTOMER], label="cloudevents")[1]
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture()
def tail(served):
    _url, settings = served
    reader = TopicTail(settings, settings.topic_usage)
    yield reader
    reader.close()


def _event(quantity: str = "3", **attributes) -> CloudEvent:
    when = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=250_000)
    return CloudEvent(attributes={"id": f"evt-{uuid.uuid4().hex}", "source": "/tests/sdk", "type": "api_calls",
                                  "subject": CUSTOMER, "time": when, "datacontenttype": "application/json", **attributes},
                      data={"quantity": quantity, "region": "eu", "endpoint": "/v1/search"})


def _stored(tail, events: list[CloudEvent]) -> list:
    ids = {event.get_id() for event in events}
    return [parse_usage(m.value()) for m in tail.drain() if orjson.loads(m.value())["id"] in ids]


def _same(stored, event: CloudEvent) -> None:
    assert (stored.id, stored.source, stored.type, stored.subject) == (
        event.get_id(), event.get_source(), event.get_type(), event.get_subject())
    assert stored.time == event.get_time()
    assert stored.data.quantity == Decimal(event.get_data()["quantity"])
    assert stored.datacontenttype == "application/json"
    assert stored.data.dimensions == {"region": "eu", "endpoint": "/v1/search"}


def test_binary_mode(http, tail):
    event = _event()
    message = to_binary_event(event)
    assert message.headers["ce-id"] == event.get_id() and message.headers["content-type"] == "application/json"
    response = http.post("/v1/events", content=message.body, headers=message.headers)
    assert response.status_code == 202, response.text
    assert response.json()["items"] == [{"index": 0, "id": event.get_id(), "status": "accepted"}]
    [stored] = _stored(tail, [event])
    _same(stored, event)


def test_binary_mode_with_a_percent_encoded_source(http, tail):
    event = _event(source="/tests/sdk \"caf\u00e9\" 100%")
    message = to_binary_event(event)
    assert "%" in message.headers["ce-source"]
    assert http.post("/v1/events", content=message.body, headers=message.headers).status_code == 202
    [stored] = _stored(tail, [event])
    assert stored.source == "/tests/sdk \"caf\u00e9\" 100%"


def test_structured_mode(http, tail):
    event = _event("0.000000001")
    message = to_structured_event(event)
    assert message.headers["content-type"] == "application/cloudevents+json"
    response = http.post("/v1/events", content=message.body, headers=message.headers)
    assert response.status_code == 202, response.text
    [stored] = _stored(tail, [event])
    _same(stored, event)


def test_batched_mode(http, tail):
    events = [_event(str(n)) for n in range(1, 6)]
    body = b"[" + b",".join(JSONFormat().write(event) for event in events) + b"]"
    response = http.post("/v1/events", content=body, headers={"Content-Type": BATCH})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 5
    stored = sorted(_stored(tail, events), key=lambda e: e.data.quantity)
    for record, event in zip(stored, events, strict=True):
        _same(record, event)


def test_a_binary_event_repeated_in_structured_mode_is_a_duplicate(http, tail):
    event = _event()
    binary, structured = to_binary_event(event), to_structured_event(event)
    assert http.post("/v1/events", content=binary.body, headers=binary.headers).json()["accepted"] == 1
    again = http.post("/v1/events", content=structured.body, headers=structured.headers)
    assert again.json()["items"][0]["status"] == "duplicate"
    assert len(_stored(tail, [event])) == 1


def test_binary_mode_refuses_what_structured_mode_refuses(http, tail):
    event = _event(subject="someone-else")
    message = to_binary_event(event)
    assert http.post("/v1/events", content=message.body, headers=message.headers).status_code == 403
    epoch = to_binary_event(_event())
    headers = {**epoch.headers, "ce-time": "1700000000"}
    response = http.post("/v1/events", content=epoch.body, headers=headers)
    assert response.status_code == 422 and "RFC 3339" in response.json()["detail"]
    assert _stored(tail, [event]) == []
