"""The API's input contract over real HTTP: a uvicorn server (the protocol `billing api` uses) in
this process, the real broker behind it. Every bad input of the table gets its status and reason,
nothing of it reaches Kafka, and the API is healthy afterwards."""

from __future__ import annotations

import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from api.keys import KeyStore, store_path
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.settings import Settings, get_settings
from tests.integration.api_fixtures import TopicTail, serve, usage_event

pytestmark = pytest.mark.integration

BROKER_MESSAGE_LIMIT = 4096
"""max.message.bytes of this module's usage topic: an event with many long dimensions exceeds it."""
CUSTOMER = f"cust-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def server(kafka, warehouse, api_settings: Settings) -> Iterator[tuple[str, Settings]]:
    """(base URL, settings) of a uvicorn server of the API on a usage topic of its own."""
    topic = f"tests-api-contract-{uuid.uuid4().hex[:8]}.usage"
    admin = admin_client(api_settings.kafka_bootstrap)
    ensure_topics(admin, [TopicSpec(topic, 1, 1, {"max.message.bytes": str(BROKER_MESSAGE_LIMIT)})])
    try:
        with serve(api_settings.model_copy(update={"topic_usage": topic})) as served:
            yield served
    finally:
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result()


@pytest.fixture(scope="module")
def token(server) -> str:
    _url, settings = server
    return KeyStore(store_path(settings)).create([CUSTOMER], label="contract")[1]


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:
    url, _settings = server
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _event(**overrides) -> dict:
    return {**usage_event(CUSTOMER), **overrides}


def _data(**fields) -> dict:
    return _event(data={"quantity": "1", "region": "eu", **fields})


def _quantity(value) -> dict:
    return _event(data={"quantity": value})


def _time(value) -> dict:
    return _event(time=value)


def _without(name: str) -> dict:
    event = _event()
    event.pop(name)
    return event


def _days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def _binary(body: bytes = b'{"quantity": "1"}', content_type: str = "application/json", **attributes: str) -> Callable:
    """A binary-mode request: ``attributes`` over valid ones as ce-* headers (None drops one)."""
    def build() -> tuple[dict[str, str], bytes]:
        event = _event()
        values = {name: event[name] for name in ("specversion", "id", "source", "type", "subject", "time")}
        values.update(attributes)
        headers = {f"ce-{name}": value for name, value in values.items() if value is not None}
        return {**headers, "Content-Type": content_type}, body
    return build


def _json(document, content_type: str = "application/json") -> Callable:
    """A request with ``document`` (built per request, so ids are fresh) as its JSON body."""
    def build() -> tuple[dict[str, str], bytes]:
        value = document() if callable(document) else document
        return {"Content-Type": content_type}, value if isinstance(value, bytes) else orjson.dumps(value)
    return build


def _raw(text_of_event: Callable[[bytes], bytes], content_type: str = "application/json") -> Callable:
    """A request whose body is a valid event's JSON rewritten by ``text_of_event``."""
    return lambda: ({"Content-Type": content_type}, text_of_event(orjson.dumps(_event())))


MEGABYTE = "x" * 1_000_000

# (case, request builder, status, a piece of the reason)
BAD_INPUTS: list[tuple[str, Callable, int, str]] = [
    # event time: RFC 3339 strings from 1970 on, within the horizon and the tolerance
    ("time-year-1", _json(lambda: _time("0001-01-01T00:00:00Z")), 422, "never before 1970"),
    ("time-1900", _json(lambda: _time("1900-01-01T00:00:00Z")), 422, "never before 1970"),
    ("time-1969", _json(lambda: _time("1969-12-31T23:59:59Z")), 422, "never before 1970"),
    ("time-beyond-horizon", _json(lambda: _time(_days_ago(get_settings().usage_past_horizon_days + 1))), 422,
     "days old"),
    ("time-epoch-number", _json(lambda: _time(1_700_000_000)), 422, "must be an RFC 3339 string"),
    ("time-epoch-float", _json(lambda: _time(1_700_000_000.5)), 422, "must be an RFC 3339 string"),
    ("time-epoch-string", _json(lambda: _time("1700000000")), 422, "is not an RFC 3339 time"),
    ("time-date-only", _json(lambda: _time("2026-12-01")), 422, "is not an RFC 3339 time"),
    ("time-words", _json(lambda: _time("yesterday")), 422, "is not an RFC 3339 time"),
    ("time-naive", _json(lambda: _time("2026-12-01T10:00:00")), 422, "timezone"),
    ("time-future", _json(lambda: _time((datetime.now(UTC) + timedelta(days=2)).isoformat())), 422, "in the future"),
    ("time-offset-overflow", _json(lambda: _time("0001-01-01T00:00:00+01:00")), 422, "out of range"),
    ("time-missing", _json(lambda: _without("time")), 422, "time: Field required"),
    # quantity: JSON numbers or canonical ASCII decimal strings, >= 0, < 10^12, 9 places
    ("quantity-arabic-digits", _json(lambda: _quantity("\u0661\u0662")), 422, "not a canonical decimal string"),
    ("quantity-fullwidth-digit", _json(lambda: _quantity("\uff15")), 422, "not a canonical decimal string"),
    ("quantity-underscore", _json(lambda: _quantity("1_000")), 422, "not a canonical decimal string"),
    ("quantity-leading-space", _json(lambda: _quantity(" 5")), 422, "not a canonical decimal string"),
    ("quantity-trailing-space", _json(lambda: _quantity("5 ")), 422, "not a canonical decimal string"),
    ("quantity-plus", _json(lambda: _quantity("+5")), 422, "not a canonical decimal string"),
    ("quantity-exponent-string", _json(lambda: _quantity("1e3")), 422, "not a canonical decimal string"),
    ("quantity-hex", _json(lambda: _quantity("0x10")), 422, "not a canonical decimal string"),
    ("quantity-leading-zeros", _json(lambda: _quantity("007")), 422, "not a canonical decimal string"),
    ("quantity-comma", _json(lambda: _quantity("1,5")), 422, "not a canonical decimal string"),
    ("quantity-empty", _json(lambda: _quantity("")), 422, "not a canonical decimal string"),
    ("quantity-nan-string", _json(lambda: _quantity("NaN")), 422, "not a canonical decimal string"),
    ("quantity-nan-literal", _raw(lambda raw: raw.replace(b'"quantity":"2"', b'"quantity":NaN')), 422, "finite number"),
    ("quantity-1e15-number", _raw(lambda raw: raw.replace(b'"quantity":"2"', b'"quantity":1e15')), 422, "less than"),
    ("quantity-10^12", _json(lambda: _quantity("1000000000000")), 422, "less than"),
    ("quantity-huge-integer", _raw(lambda raw: raw.replace(b'"quantity":"2"', b'"quantity":' + b"9" * 40)), 422,
     "less than"),
    ("quantity-10-places", _json(lambda: _quantity("0.0000000001")), 422, "decimal places"),
    ("quantity-negative", _json(lambda: _quantity("-1")), 422, "greater than or equal to 0"),
    ("quantity-boolean", _json(lambda: _quantity(True)), 422, "not bool"),
    ("quantity-null", _json(lambda: _quantity(None)), 422, "not NoneType"),
    ("quantity-list", _json(lambda: _quantity([1])), 422, "not list"),
    ("quantity-missing", _json(lambda: _event(data={"region": "eu"})), 422, "data.quantity: Field required"),
    # printable ids, source, type, subject, dimensions
    ("source-crlf", _json(lambda: _event(source="svc\r\nX-Injected: 1")), 422, "non-printable character '\\r'"),
    ("source-nul", _json(lambda: _event(source="svc\x00")), 422, "non-printable character '\\x00'"),
    ("source-ansi", _json(lambda: _event(source="\x1b[31mred")), 422, "non-printable character '\\x1b'"),
    ("source-bidi-override", _json(lambda: _event(source="abc\u202egpj.exe")), 422, "non-printable"),
    ("source-empty", _json(lambda: _event(source="")), 422, "source: String should have at least 1 character"),
    ("source-too-long", _json(lambda: _event(source="s" * 257)), 422, "at most 256 characters"),
    ("id-newline", _json(lambda: _event(id="evt-1\n")), 422, "id: String should match pattern"),
    ("id-space", _json(lambda: _event(id="evt 1")), 422, "id: String should match pattern"),
    ("id-empty", _json(lambda: _event(id="")), 422, "id: String should have at least 1 character"),
    ("id-number", _json(lambda: _event(id=5)), 422, "id: Input should be a valid string"),
    ("id-one-megabyte", _json(lambda: _event(id=MEGABYTE)), 422, "id: String should have at most 128 characters"),
    ("subject-escape", _json(lambda: _event(subject="cust\x1b[2J")), 422, "subject: String should match pattern"),
    ("subject-missing", _json(lambda: _without("subject")), 422, "subject: Field required"),
    ("type-unknown", _json(lambda: _event(type="gpu_hours")), 422, "unknown meter 'gpu_hours'"),
    ("type-newline", _json(lambda: _event(type="api_calls\n")), 422, "non-printable character '\\n'"),
    ("dimension-lf", _json(lambda: _data(region="eu\nus")), 422, "data.region: contains the non-printable"),
    ("dimension-too-long", _json(lambda: _data(region="r" * 257)), 422, "at most 256 characters"),
    ("dimension-object", _json(lambda: _data(region={"a": 1})), 422, "data.region: Input should be a valid string"),
    ("dimensions-65", _json(lambda: _data(**{f"d{i}": "x" for i in range(64)})), 422, "65 dimensions; at most 64"),
    ("dimensions-60k", _json(lambda: _data(**{f"d{i}": "x" for i in range(60_000)})), 422, "at most 64"),
    ("dimension-name-long", _json(lambda: _data(**{"n" * 65: "x"})), 422, "dimension name"),
    ("dimension-name-one-megabyte", _json(lambda: _data(**{MEGABYTE: "x"})), 422, "dimension name"),
    ("dimension-name-control", _json(lambda: _data(**{"a\x07": "x"})), 422, "dimension name"),
    # CloudEvents attributes
    ("specversion-missing", _json(lambda: _without("specversion")), 422, "specversion: Field required"),
    ("specversion-0.3", _json(lambda: _event(specversion="0.3")), 422, "specversion"),
    ("specversion-number", _json(lambda: _event(specversion=1.0)), 422, "specversion"),
    ("datacontenttype-text", _json(lambda: _event(datacontenttype="text/plain")), 422, "data is JSON"),
    ("datacontenttype-utf16", _json(lambda: _event(datacontenttype="application/json; charset=utf-16")), 422,
     "data is JSON"),
    ("data-base64", _json(lambda: _event(data_base64="eyJxIjoxfQ==")), 422, "data_base64: unknown attribute"),
    ("unknown-attribute", _json(lambda: _event(traceparent="00-x")), 422,
     "traceparent: unknown attribute: CloudEvents extension attributes are not accepted"),
    ("unknown-attribute-one-megabyte", _json(lambda: _event(**{MEGABYTE: 1})), 422, "unknown attribute"),
    ("schema-version-2", _json(lambda: _event(schema_version=2)), 422, "schema_version"),
    ("data-missing", _json(lambda: _without("data")), 422, "data: Field required"),
    ("data-string", _json(lambda: _event(data="3")), 422, "data: Input should be a valid dictionary"),
    # bodies: UTF-8 JSON of the declared media type
    ("charset-utf16-declared", _json(lambda: _event(), "application/json; charset=utf-16"), 415, "charset"),
    ("charset-latin1-declared", _json(lambda: _event(), "application/cloudevents+json; charset=iso-8859-1"), 415,
     "charset"),
    ("body-utf16", _raw(lambda raw: raw.decode().encode("utf-16")), 400, "not UTF-8"),
    ("body-utf32", _raw(lambda raw: raw.decode().encode("utf-32")), 400, "not UTF-8"),
    ("body-latin1", _raw(lambda raw: raw.replace(b'"tests/api"', "\"caf\u00e9\"".encode("latin-1"))), 400, "not UTF-8"),
    ("body-utf8-bom", _raw(lambda raw: b"\xef\xbb\xbf" + raw), 400, "malformed JSON"),
    ("media-text-plain", _json(lambda: _event(), "text/plain"), 415, "is not accepted"),
    ("media-missing", lambda: ({}, orjson.dumps(_event())), 415, "is not accepted"),
    ("batch-not-array", _json(lambda: _event(), "application/cloudevents-batch+json"), 400, "must be a JSON array"),
    ("single-not-object", _json(lambda: [_event()], "application/cloudevents+json"), 400, "must be one event"),
    ("batch-empty", _json([]), 400, "the batch is empty"),
    ("json-truncated", _raw(lambda raw: raw[:-5]), 400, "malformed JSON"),
    ("json-nested-deeply", _json(b"[" * 100_000 + b"]" * 100_000), 400, "malformed JSON"),
    # binary content mode
    ("binary-array-body", _binary(body=b"[1]"), 400, "binary-mode body is the event's data"),
    ("binary-text-body", _binary(content_type="text/plain"), 415, "is not accepted"),
    ("binary-no-specversion", _binary(specversion=None), 422, "specversion: Field required"),
    ("binary-epoch-time", _binary(time="1700000000"), 422, "is not an RFC 3339 time"),
    ("binary-crlf-source", _binary(source="svc%0D%0Aevil"), 422, "non-printable character '\\r'"),
    ("binary-bad-percent-encoding", _binary(source="svc%FF"), 400, "not percent-encoded UTF-8"),
    ("binary-canonical-quantity", _binary(body=b'{"quantity": "+5"}'), 422, "not a canonical decimal string"),
    ("binary-charset-utf16", _binary(content_type="application/json; charset=utf-16"), 415, "charset"),
    # too large for the broker: refused per item, never a retryable 503
    ("too-large-for-the-broker", _json(lambda: _data(**{f"d{i}": secrets.token_urlsafe(192) for i in range(63)})), 422,
     "Kafka refuses this event"),
]


@pytest.mark.parametrize(("build", "status", "reason"), [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_refused_with_its_reason(http, token, build, status, reason):
    headers, body = build()
    response = http.post("/v1/events", content=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    found = problem["detail"] if status != 422 else problem["items"][0]["reason"]
    assert reason in found, found
    assert len(response.content) < 4_000, "echoed values are clipped"
    assert "\n" not in found and "\r" not in found
    if status == 422:
        assert (problem["accepted"], problem["failed"]) == (0, 0)


def test_the_table_is_large_enough():
    assert len(BAD_INPUTS) >= 60 and len({case[0] for case in BAD_INPUTS}) == len(BAD_INPUTS)


def test_nothing_refused_reached_kafka_and_the_api_is_healthy(http, server, token):
    _url, settings = server
    tail = TopicTail(settings, settings.topic_usage)
    try:
        for _case, build, _status, _reason in BAD_INPUTS:
            headers, body = build()
            http.post("/v1/events", content=body, headers={**headers, "Authorization": f"Bearer {token}"})
        assert tail.drain() == []
        assert http.get("/healthz").status_code == 200
        good = _event()
        response = http.post("/v1/events", json=good, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 202, response.text
        assert [orjson.loads(m.value())["id"] for m in tail.drain()] == [good["id"]]
    finally:
        tail.close()


def test_a_bad_item_of_a_batch_is_rejected_beside_the_good_ones(http, token):
    good, bad = _event(), _quantity("\u0661")
    response = http.post("/v1/events", content=orjson.dumps([good, bad]),
                         headers={"Content-Type": "application/cloudevents-batch+json", "Authorization": f"Bearer {token}"})
    assert response.status_code == 202
    assert [item["status"] for item in response.json()["items"]] == ["accepted", "rejected"]


@pytest.mark.parametrize(("authorization", "reason"), [
    (None, "missing API key"),
    ("Basic dXNlcjpwYXNz", "missing API key"),
    ("Bearer bk_nope_nope", "unknown or revoked API key"),
    ("Bearer " + "x" * 8_000, "unknown or revoked API key"),
    ("Bearer bk_0123456789ab_" + "A" * 43, "unknown or revoked API key"),
])
def test_bad_credentials_are_401(http, authorization, reason):
    headers = {"Content-Type": "application/json", **({"Authorization": authorization} if authorization else {})}
    response = http.post("/v1/events", content=orjson.dumps(_event()), headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert reason in response.json()["detail"]


def _head(server, head: bytes) -> bytes:
    url, _settings = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_request_head_over_the_limit_is_431(server):
    limit = get_settings().api_max_header_bytes
    head = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * limit + b"\r\n\r\n")
    answer = _head(server, head)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"headers-too-large" in answer


def test_an_eight_megabyte_header_is_cut_off(server, http):
    """The server answers 431 and closes while the client is still sending (or resets the connection);
    it never reads the whole header, and it serves the next request."""
    url, _settings = server
    try:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
            for _ in range(128):
                sock.sendall(b"a" * 65536)
            sock.sendall(b"\r\n\r\n")
            answer = sock.recv(65536)
    except OSError:
        answer = b"(connection reset)"
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b"(connection reset)", answer[:200]
    assert http.get("/healthz").status_code == 200


def test_a_head_under_the_limit_is_served(http):
    response = http.get("/healthz", headers={"X-Padding": "p" * (get_settings().api_max_header_bytes // 2)})
    assert response.status_code == 200
