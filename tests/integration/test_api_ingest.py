"""POST /v1/events against the real broker: what is accepted is in Kafka exactly as validated,
retries are short-circuited, tenants are isolated, and every bad input gets its 4xx."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from billing.core.contracts import parse_usage, to_bytes
from tests.integration.api_fixtures import TopicTail, bearer, usage_event

pytestmark = pytest.mark.integration

BATCH = "application/cloudevents-batch+json"
SINGLE = "application/cloudevents+json"


@pytest.fixture(scope="module")
def tenant(keys) -> tuple[str, str]:
    """(customer id, token) of a fresh tenant key."""
    customer = f"cust-{uuid.uuid4().hex[:10]}"
    _key, token = keys.create([customer], label="tests")
    return customer, token


@pytest.fixture()
def tail(settings):
    reader = TopicTail(settings, settings.topic_usage)
    yield reader
    reader.close()


def _post(api, token, body, content_type="application/json"):
    return api.post("/v1/events", content=orjson.dumps(body) if not isinstance(body, bytes) else body,
                    headers={**bearer(token), "Content-Type": content_type})


def _with_ids(tail, ids) -> list:
    """Messages appended since the tail opened whose event id is one of ``ids``."""
    wanted = set(ids)
    return [m for m in tail.drain() if _event_id(m) in wanted]


def _event_id(message) -> str | None:
    try:
        return orjson.loads(message.value()).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None


def test_single_event_reaches_the_topic_as_validated(api, tenant, tail):
    customer, token = tenant
    sent = usage_event(customer, time="2025-03-01T10:00:00+02:00",
                       data={"quantity": 1.000000001, "region": "eu", "endpoint": "/x"})
    response = _post(api, token, sent, SINGLE)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "duplicate": 0, "rejected": 0, "failed": 0,
                               "items": [{"index": 0, "id": sent["id"], "status": "accepted"}]}
    [message] = _with_ids(tail, [sent["id"]])
    assert message.key() == customer.encode()
    expected = parse_usage(orjson.dumps(sent).replace(b"1.000000001", b"1.000000001"))
    assert message.value() == to_bytes(expected)
    received = parse_usage(message.value())
    assert received == expected
    assert str(received.data.quantity) == "1.000000001"
    assert received.time == datetime(2025, 3, 1, 8, tzinfo=UTC)


def test_batch_is_produced_in_order_with_the_customer_as_key(api, tenant, tail):
    customer, token = tenant
    sent = [usage_event(customer, data={"quantity": str(i), "region": "us", "endpoint": "/y"}) for i in range(50)]
    response = _post(api, token, sent, BATCH)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (50, 0)
    assert [item["id"] for item in body["items"]] == [e["id"] for e in sent]
    messages = _with_ids(tail, [e["id"] for e in sent])
    assert [m.value() for m in messages] == [to_bytes(parse_usage(orjson.dumps(e))) for e in sent]
    assert {m.key() for m in messages} == {customer.encode()}
    assert len({m.partition() for m in messages}) == 1


def test_retry_with_same_ids_is_short_circuited(api, tenant, tail):
    customer, token = tenant
    sent = [usage_event(customer) for _ in range(3)]
    first = _post(api, token, sent[:2])
    assert first.json()["accepted"] == 2
    retry = _post(api, token, sent)
    body = retry.json()
    assert retry.status_code == 202
    assert [i["status"] for i in body["items"]] == ["duplicate", "duplicate", "accepted"]
    messages = _with_ids(tail, [e["id"] for e in sent])
    assert sorted(parse_usage(m.value()).id for m in messages) == sorted(e["id"] for e in sent)


def test_repeats_inside_one_batch_are_sent_once(api, tenant, tail):
    customer, token = tenant
    event = usage_event(customer)
    body = _post(api, token, [event, event]).json()
    assert [i["status"] for i in body["items"]] == ["accepted", "duplicate"]
    assert body["items"][1]["reason"] == "repeats item 0"
    assert len(_with_ids(tail, [event["id"]])) == 1


def test_reused_id_with_other_payload_is_rejected(api, tenant, tail):
    customer, token = tenant
    event = usage_event(customer)
    assert _post(api, token, event).status_code == 202
    changed = {**event, "data": {**event["data"], "quantity": "99"}}
    response = _post(api, token, changed)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "already accepted with a different payload" in response.json()["items"][0]["reason"]
    assert len(_with_ids(tail, [event["id"]])) == 1


def test_partially_bad_batch_accepts_only_valid_items(api, tenant, tail):
    customer, token = tenant
    good = usage_event(customer)
    bad = usage_event(customer, type="no_such_meter")
    negative = usage_event(customer, data={"quantity": "-1"})
    response = _post(api, token, [good, bad, "not an object", negative])
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 3)
    statuses = [(i["index"], i["status"]) for i in body["items"]]
    assert statuses == [(0, "accepted"), (1, "rejected"), (2, "rejected"), (3, "rejected")]
    assert "unknown meter 'no_such_meter'" in body["items"][1]["reason"]
    assert "expected a JSON object" in body["items"][2]["reason"]
    assert "data.quantity" in body["items"][3]["reason"]
    messages = _with_ids(tail, [good["id"], bad["id"], negative["id"]])
    assert [parse_usage(m.value()).id for m in messages] == [good["id"]]


def test_foreign_subject_is_forbidden_and_nothing_is_written(api, tenant, keys, tail):
    customer, token = tenant
    other = f"cust-{uuid.uuid4().hex[:10]}"
    _key, other_token = keys.create([other])
    mine, theirs = usage_event(customer), usage_event(other)
    response = _post(api, token, [mine, theirs])
    assert response.status_code == 403
    problem = response.json()
    assert problem["forbidden"] == [{"index": 1, "subject": other}]
    assert other in problem["detail"]
    assert _post(api, other_token, usage_event(customer)).status_code == 403
    assert _with_ids(tail, [mine["id"], theirs["id"]]) == []


def test_admin_key_may_write_for_any_customer(api, keys, tail):
    _key, token = keys.create([], admin=True)
    event = usage_event(f"cust-{uuid.uuid4().hex[:10]}")
    assert _post(api, token, event).status_code == 202
    assert len(_with_ids(tail, [event["id"]])) == 1


def _future() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.pop("id"), "id: Field required"),
        (lambda e: e.update(type="bogus_meter"), "unknown meter"),
        (lambda e: e["data"].update(quantity="-5"), "data.quantity"),
        (lambda e: e["data"].update(quantity="abc"), "data.quantity"),
        (lambda e: e.update(time=_future()), "in the future"),
        (lambda e: e.update(time="2025-01-01T00:00:00"), "time"),
        (lambda e: e.update(specversion="0.3"), "specversion"),
        (lambda e: e.update(extra_field=1), "extra_field"),
        (lambda e: e.update(subject=""), "subject"),
    ],
    ids=["missing-id", "unknown-meter", "negative", "not-a-number", "future", "naive-time", "specversion",
         "unknown-field", "empty-subject"],
)
def test_invalid_single_event_is_422_with_reason(api, tenant, tail, change, reason):
    customer, token = tenant
    event = usage_event(customer)
    change(event)
    response = _post(api, token, event)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert reason in problem["detail"]
    assert problem["rejected"] == 1 and problem["accepted"] == 0
    assert problem["items"][0]["status"] == "rejected"
    if "id" in event:
        assert _with_ids(tail, [event["id"]]) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "kind"),
    [
        (b"{not json", "application/json", 400, "malformed-json"),
        (b"", "application/json", 400, "malformed-json"),
        (b"[]", "application/json", 400, "empty-batch"),
        (b'"text"', "application/json", 400, "wrong-shape"),
        (b"[{}]", SINGLE, 400, "wrong-shape"),
        (b"{}", BATCH, 400, "wrong-shape"),
        (b"{}", "text/plain", 415, "unsupported-media-type"),
        (b"{}", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
    ],
)
def test_bad_requests(api, tenant, body, content_type, status, kind):
    _customer, token = tenant
    response = _post(api, token, body, content_type)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith(kind) and problem["status"] == status and problem["detail"]


def test_missing_content_type_is_415(api, tenant):
    _customer, token = tenant
    response = api.post("/v1/events", content=b"{}", headers=bearer(token))
    assert response.status_code == 415


def test_oversize_body_is_413(api, tenant, settings):
    customer, token = tenant
    event = orjson.dumps(usage_event(customer))
    body = b"[" + event + b"," + b" " * settings.api_max_body_bytes + event + b"]"
    response = _post(api, token, body)
    assert response.status_code == 413
    assert f"exceeds {settings.api_max_body_bytes} bytes" in response.json()["detail"]


def test_oversize_chunked_body_is_413(api, tenant, settings):
    _customer, token = tenant
    chunk = b" " * 65536
    chunks = iter([b"["] + [chunk] * (settings.api_max_body_bytes // len(chunk) + 1) + [b"]"])
    response = api.post("/v1/events", content=chunks, headers={**bearer(token), "Content-Type": "application/json"})
    assert response.status_code == 413


def test_too_many_events_is_413(api, tenant, settings):
    customer, token = tenant
    events = [{"id": str(i)} for i in range(settings.api_max_batch_events + 1)]
    response = _post(api, token, events)
    assert response.status_code == 413
    assert f"at most {settings.api_max_batch_events}" in response.json()["detail"]


@pytest.mark.parametrize("header", [None, "Bearer bk_nope_nope", "Basic abc"])
def test_unauthenticated_is_401(api, tenant, header):
    customer, _token = tenant
    headers = {"Content-Type": "application/json", **({"Authorization": header} if header else {})}
    response = api.post("/v1/events", content=orjson.dumps(usage_event(customer)), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


def test_revoked_key_stops_working(api, keys, settings):
    from api.keys import KeyCache

    customer = f"cust-{uuid.uuid4().hex[:10]}"
    key, token = keys.create([customer])
    assert _post(api, token, usage_event(customer)).status_code == 202
    assert keys.revoke(key.key_id)
    api.app.state.ctx.keys = KeyCache(keys)
    assert _post(api, token, usage_event(customer)).status_code == 401


def test_rate_limit_is_429_with_retry_after(api, keys):
    customer = f"cust-{uuid.uuid4().hex[:10]}"
    _key, token = keys.create([customer], rate_per_s=1)
    assert _post(api, token, usage_event(customer)).status_code == 202
    response = _post(api, token, usage_event(customer))
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "rate limit" in response.json()["detail"]


def _requests_counted(api, status: int) -> float:
    prefix = f'billing_api_requests_total{{method="POST",route="/v1/events",status="{status}"}} '
    lines = [line for line in api.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_ingest_requests_are_counted_in_metrics(api, tenant):
    customer, token = tenant
    accepted, unauthenticated = _requests_counted(api, 202), _requests_counted(api, 401)
    assert _post(api, token, usage_event(customer)).status_code == 202
    assert _post(api, "bk_nope_nope", usage_event(customer)).status_code == 401
    assert (_requests_counted(api, 202), _requests_counted(api, 401)) == (accepted + 1, unauthenticated + 1)


def test_unexpected_error_is_a_500_problem(api, tenant, monkeypatch):
    customer, token = tenant

    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr("api.routes.events.validate", broken)
    response = _post(api, token, usage_event(customer))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/internal-error") and "RuntimeError" in response.json()["detail"]
