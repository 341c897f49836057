"""The OpenMeter-compatible surface (/api/v1): meters from the configured meters, meter queries equal to
the native usage endpoint on the same rollups (groupBy, windows, time zones, filters, merges), subjects,
tenant isolation, and all-or-nothing ingest over real HTTP into the same topic and dedup."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from platformdirs import user_cache_dir

from api.app import create_app
from api.keys import KeyStore, store_path
from api.openmeter import ulid_of
from api.problems import PROBLEM_JSON
from billing.core.contracts import Customer, Segment
from billing.core.meters import active_meters
from tests.integration.api_fixtures import TopicTail, bearer, insert, insert_rollups, scratch_settings, serve, usage_event

pytestmark = pytest.mark.integration

T = datetime(2026, 9, 10, tzinfo=UTC)
EU, US = {"region": "eu", "endpoint": "/a"}, {"region": "us", "endpoint": "/a"}
RANGE = {"from": "2026-09-10T00:00:00Z", "to": "2026-09-11T00:00:00Z"}


def _customer(customer_id: str, name: str) -> Customer:
    return Customer(id=customer_id, company_name=name, email=f"billing@{customer_id}.example", country="US", region="NA",
                    currency="USD", segment=Segment.SMB, signup_time=T - timedelta(days=30), updated_at=T - timedelta(days=1))


ROLLUPS = [
    ("om-a", "api_calls", 3600, T + timedelta(hours=10), EU, "SUM", "5", 2, 1),
    ("om-a", "api_calls", 3600, T + timedelta(hours=11), EU, "SUM", "7.25", 3, 1),
    ("om-a", "api_calls", 3600, T + timedelta(hours=10), US, "SUM", "3", 1, 1),
    ("om-b", "api_calls", 3600, T + timedelta(hours=10), EU, "SUM", "11", 4, 1),
    ("om-b", "api_calls", 3600, T + timedelta(hours=23), EU, "SUM", "2", 1, 1),
    ("om-a", "api_calls", 60, T + timedelta(hours=10), EU, "SUM", "2", 1, 1),
    ("om-a", "api_calls", 60, T + timedelta(hours=10, minutes=1), EU, "SUM", "3", 1, 1),
    ("om-a", "active_seats", 3600, T + timedelta(hours=10), {}, "UNIQUE_COUNT", "4", 9, 1),
    ("om-a", "active_seats", 3600, T + timedelta(hours=11), {}, "UNIQUE_COUNT", "6", 9, 1),
    ("om-b", "active_seats", 3600, T + timedelta(hours=10), {}, "UNIQUE_COUNT", "1", 1, 1),
]


@pytest.fixture(scope="module")
def scoped(settings, kafka, warehouse, tmp_path_factory):
    with scratch_settings(settings, tmp_path_factory) as scoped:
        insert(scoped, _customer("om-a", "Acme"), _customer("om-b", "Bolt"))
        insert_rollups(scoped, ROLLUPS)
        yield scoped


@pytest.fixture(scope="module")
def api(scoped) -> Iterator[TestClient]:
    with TestClient(create_app(scoped)) as client:
        yield client


@pytest.fixture(scope="module")
def admin(scoped) -> dict[str, str]:
    return bearer(KeyStore(store_path(scoped)).create([], admin=True)[1])


@pytest.fixture(scope="module")
def tenant(scoped) -> dict[str, str]:
    return bearer(KeyStore(store_path(scoped)).create(["om-a"], label="om-a only")[1])


def _query(api, headers, meter: str = "api_calls", **params):
    return api.get(f"/api/v1/meters/{meter}/query", params={**RANGE, **params}, headers=headers)


def _rows(response) -> list[tuple]:
    assert response.status_code == 200, response.text
    return [(row["windowStart"], row["windowEnd"], row["subject"], row["groupBy"], row["value"]) for row in response.json()["data"]]


def _problem(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert all(word in response.json()["detail"] for word in words), response.json()


def test_meters_are_the_configured_meters_in_openmeter_shape(api, admin):
    meters = api.get("/api/v1/meters", headers=admin).json()
    assert [m["slug"] for m in meters] == list(active_meters().names)
    calls = next(m for m in meters if m["slug"] == "api_calls")
    assert calls | {"createdAt": None, "updatedAt": None} == {
        "id": ulid_of("api_calls"), "slug": "api_calls", "name": "api_calls", "description": "API requests served.",
        "aggregation": "SUM", "eventType": "api_calls", "valueProperty": "$.quantity",
        "groupBy": {"region": "$.region", "endpoint": "$.endpoint"}, "createdAt": None, "updatedAt": None}
    seats = next(m for m in meters if m["slug"] == "active_seats")
    assert (seats["aggregation"], seats["valueProperty"], seats["groupBy"]) == ("UNIQUE_COUNT", "$.user_id", {})
    assert api.get(f"/api/v1/meters/{calls['id']}", headers=admin).json() == calls
    assert api.get("/api/v1/meters/api_calls", headers=admin).json() == calls
    _problem(api.get("/api/v1/meters/nope", headers=admin), 404, "no meter 'nope'", "api_calls")
    _problem(api.get("/api/v1/meters"), 401, "missing API key")


def test_hourly_rows_per_subject_and_dimension(api, admin):
    rows = _rows(_query(api, admin, windowSize="HOUR", groupBy=["subject", "region"]))
    assert rows == [
        ("2026-09-10T10:00:00Z", "2026-09-10T11:00:00Z", "om-a", {"region": "eu"}, 5.0),
        ("2026-09-10T10:00:00Z", "2026-09-10T11:00:00Z", "om-a", {"region": "us"}, 3.0),
        ("2026-09-10T10:00:00Z", "2026-09-10T11:00:00Z", "om-b", {"region": "eu"}, 11.0),
        ("2026-09-10T11:00:00Z", "2026-09-10T12:00:00Z", "om-a", {"region": "eu"}, 7.25),
        ("2026-09-10T23:00:00Z", "2026-09-11T00:00:00Z", "om-b", {"region": "eu"}, 2.0),
    ]
    body = _query(api, admin, windowSize="HOUR").json()
    assert (body["from"], body["to"], body["windowSize"]) == ("2026-09-10T00:00:00Z", "2026-09-11T00:00:00Z", "HOUR")


@pytest.mark.parametrize("window", ["MINUTE", "HOUR", "DAY"])
def test_queries_equal_the_native_usage_endpoint(api, admin, window):
    params = {"from": "2026-09-10T10:00:00Z", "to": "2026-09-10T12:00:00Z"} if window == "MINUTE" else RANGE
    rows = _rows(api.get("/api/v1/meters/api_calls/query", headers=admin,
                         params={**params, "windowSize": window, "groupBy": ["subject", "region", "endpoint"]}))
    compared = 0
    for customer in ("om-a", "om-b"):
        native = api.get(f"/v1/customers/{customer}/usage", headers=admin,
                         params={**params, "window": window.lower(), "meter": "api_calls"}).json()
        expected = sorted((point["window_start"].replace("+00:00", "Z"), sorted(series["dimensions"].items()),
                           float(Decimal(point["value"]))) for series in native["series"] for point in series["points"])
        found = sorted((start, sorted(group.items()), value) for start, _end, subject, group, value in rows if subject == customer)
        assert found == expected
        compared += len(found)
    assert compared == len(rows) > 0


def test_rows_of_customers_and_groups_merge_by_the_aggregation(api, admin):
    assert _rows(_query(api, admin, windowSize="HOUR")) == [
        ("2026-09-10T10:00:00Z", "2026-09-10T11:00:00Z", None, {}, 19.0),
        ("2026-09-10T11:00:00Z", "2026-09-10T12:00:00Z", None, {}, 7.25),
        ("2026-09-10T23:00:00Z", "2026-09-11T00:00:00Z", None, {}, 2.0)]
    assert _rows(_query(api, admin)) == [("2026-09-10T00:00:00Z", "2026-09-11T00:00:00Z", None, {}, 28.25)]
    assert _rows(_query(api, admin, subject="om-a")) == [("2026-09-10T00:00:00Z", "2026-09-11T00:00:00Z", "om-a", {}, 15.25)]


def test_filter_group_by_is_an_exact_match(api, admin):
    _problem(_query(api, admin, filterGroupBy="{'region': 'us'}"), 400, "filterGroupBy[region]=eu")
    assert _rows(_query(api, admin, **{"filterGroupBy[region]": "us", "groupBy": "endpoint"})) == [
        ("2026-09-10T00:00:00Z", "2026-09-11T00:00:00Z", None, {"endpoint": "/a"}, 3.0)]
    _problem(_query(api, admin, **{"filterGroupBy[tier]": "x"}), 400, "no dimension 'tier'")
    _problem(_query(api, admin, groupBy="tier"), 400, "no dimension 'tier'", "region, endpoint")


def test_days_follow_the_window_time_zone(api, admin):
    rows = _rows(api.get("/api/v1/meters/api_calls/query", headers=admin, params={
        "from": "2026-09-10T00:00:00+02:00", "to": "2026-09-12T00:00:00+02:00", "windowSize": "DAY",
        "windowTimeZone": "Europe/Berlin"}))
    assert rows == [("2026-09-09T22:00:00Z", "2026-09-10T22:00:00Z", None, {}, 26.25),
                    ("2026-09-10T22:00:00Z", "2026-09-11T22:00:00Z", None, {}, 2.0)]
    _problem(_query(api, admin, windowSize="DAY", windowTimeZone="Asia/Kolkata"), 400, "fraction of an hour")
    _problem(_query(api, admin, windowSize="DAY", windowTimeZone="Mars/Olympus"), 400, "not an IANA time zone")
    assert _query(api, admin, windowSize="MINUTE", windowTimeZone="Asia/Kolkata", **{
        "from": "2026-09-10T10:00:00Z", "to": "2026-09-10T11:00:00Z"}).status_code == 200


def test_distinct_counts_are_never_merged(api, admin):
    _problem(_query(api, admin, "active_seats"), 400, "UNIQUE_COUNT", "groupBy=subject")
    assert _rows(_query(api, admin, "active_seats", windowSize="DAY", groupBy="subject")) == [
        ("2026-09-10T00:00:00Z", "2026-09-11T00:00:00Z", "om-a", {}, 6.0),
        ("2026-09-10T00:00:00Z", "2026-09-11T00:00:00Z", "om-b", {}, 1.0)]


def test_subjects_are_the_customers(api, admin, tenant):
    subjects = api.get("/api/v1/subjects", headers=admin).json()
    assert [(s["key"], s["displayName"], s["id"]) for s in subjects] == [
        ("om-a", "Acme", ulid_of("om-a")), ("om-b", "Bolt", ulid_of("om-b"))]
    assert api.get("/api/v1/subjects/om-b", headers=admin).json() == subjects[1]
    _problem(api.get("/api/v1/subjects/om-zzz", headers=admin), 404, "om-zzz")


def test_tenant_keys_see_their_own_customers_only(api, tenant):
    assert [s["key"] for s in api.get("/api/v1/subjects", headers=tenant).json()] == ["om-a"]
    assert {row[2] for row in _rows(_query(api, tenant, windowSize="HOUR", groupBy="subject"))} == {"om-a"}
    assert _query(api, tenant, subject="om-b").status_code == 403
    assert api.get("/api/v1/subjects/om-b", headers=tenant).status_code == 403


# ----------------------------------------------------------------------------------------- ingest


@pytest.fixture(scope="module")
def served(scoped):
    with serve(scoped) as running:
        yield running


@pytest.fixture(scope="module")
def http(served, admin) -> Iterator[httpx.Client]:
    url, _settings = served
    with httpx.Client(base_url=url, timeout=30, headers=admin) as client:
        yield client


@pytest.fixture()
def tail(served):
    _url, settings = served
    reader = TopicTail(settings, settings.topic_usage)
    yield reader
    reader.close()


def _ids(tail) -> list[str]:
    return [orjson.loads(message.value())["id"] for message in tail.drain()]


def test_single_and_batch_ingest_answer_204_into_the_usage_topic(http, tail):
    single, batch = usage_event("om-a"), [usage_event("om-a"), usage_event("om-b")]
    response = http.post("/api/v1/events", content=orjson.dumps(single), headers={"content-type": "application/cloudevents+json"})
    assert (response.status_code, response.content) == (204, b"")
    response = http.post("/api/v1/events", content=orjson.dumps(batch), headers={"content-type": "application/cloudevents-batch+json"})
    assert response.status_code == 204, response.text
    assert sorted(_ids(tail)) == sorted(event["id"] for event in [single, *batch])


def test_repeated_events_are_deduplicated_as_on_the_native_endpoint(http, tail):
    event = usage_event("om-a")
    assert http.post("/v1/events", json=event).status_code == 202
    assert http.post("/api/v1/events", json=[event, event]).status_code == 204
    assert _ids(tail) == [event["id"]]
    changed = {**event, "data": {"quantity": "9"}}
    _problem(http.post("/api/v1/events", json=changed), 400, "already accepted with a different payload")


def test_one_invalid_event_refuses_the_whole_batch(http, tail):
    good, bad = usage_event("om-a"), usage_event("om-a", time="1969-12-31T23:59:59Z")
    response = http.post("/api/v1/events", json=[good, bad])
    _problem(response, 400, "1 of 2 events are invalid", "item 1", "nothing was written")
    [item] = response.json()["items"]
    assert (item["index"], item["id"], item["status"]) == (1, bad["id"], "rejected") and "time" in item["reason"]
    assert _ids(tail) == []


def test_unknown_extension_attributes_are_refused_by_name(http, tail):
    response = http.post("/api/v1/events", json=usage_event("om-a", traceparent="00-abc"))
    _problem(response, 400, "traceparent", "unknown attribute", "extension attributes are not accepted")
    native = http.post("/v1/events", json=usage_event("om-a", partitionkey="p1"))
    assert native.status_code == 422 and "partitionkey: unknown attribute" in native.json()["detail"]
    assert _ids(tail) == []


@pytest.mark.parametrize(("body", "headers", "status", "word"), [
    (b"{", {"content-type": "application/json"}, 400, "malformed JSON"),
    (b"[]", {"content-type": "application/json"}, 400, "empty"),
    (b"{}", {"content-type": "text/plain"}, 415, "content type"),
    (orjson.dumps(usage_event("om-a")), {"content-type": "application/json", "authorization": "Bearer nope"}, 401, "API key"),
])
def test_bad_requests_are_problems(http, body, headers, status, word):
    _problem(http.post("/api/v1/events", content=body, headers=headers), status, word)


def test_tenant_keys_write_their_own_customers_only(served, scoped, tail):
    url, _settings = served
    token = KeyStore(store_path(scoped)).create(["om-a"])[1]
    response = httpx.post(f"{url}/api/v1/events", json=[usage_event("om-a"), usage_event(f"om-{uuid.uuid4().hex[:6]}")],
                          headers=bearer(token))
    _problem(response, 403, "may not write events", "nothing was written")
    assert _ids(tail) == []


# ------------------------------------------------------------------------- the official OpenMeter SDK

SDK = "openmeter==1.0.0b236"
"""The official SDK from PyPI, in a virtualenv of its own: it requires cloudevents<2, the project pins 2.x."""


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    """The interpreter of a virtualenv with :data:`SDK` installed (built once, kept in the user cache)."""
    home = Path(user_cache_dir("billing-pipeline")) / "tests" / SDK.replace("==", "-")
    python = home / "bin" / "python"
    if not python.exists():
        building = home.with_name(f"{home.name}.{uuid.uuid4().hex[:8]}")
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
        subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SDK],
                       check=True, timeout=600)
        shutil.rmtree(home, ignore_errors=True)
        building.rename(home)
    return python


def test_the_official_sdk_ingests_lists_meters_and_queries_like_the_native_endpoint(served, admin, sdk_python, tail):
    url, _settings = served
    event, batch = usage_event("om-a"), [usage_event("om-a", data={"quantity": 1.5, "region": "us"}), usage_event("om-b")]
    query = {"meter": "api_calls", "from": "2026-09-10T00:00:00+00:00", "to": "2026-09-11T00:00:00+00:00", "windowSize": "HOUR",
             "groupBy": ["region", "endpoint"], "subject": ["om-a", "om-b"]}
    run = subprocess.run([str(sdk_python), str(Path(__file__).with_name("openmeter_sdk_client.py")), url,
                          admin["Authorization"].removeprefix("Bearer "), orjson.dumps({"event": event, "batch": batch, "query": query})],
                         capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert run.returncode == 0, run.stderr
    answers = orjson.loads(run.stdout)
    assert sorted(_ids(tail)) == sorted(e["id"] for e in [event, *batch])
    assert [m["slug"] for m in answers["meters"]] == list(active_meters().names)
    assert answers["meter"]["groupBy"] == {"region": "$.region", "endpoint": "$.endpoint"}
    assert answers["subjects"] == ["om-a", "om-b"]
    rows = answers["query"]["data"]
    assert answers["query"]["windowSize"] == "HOUR" and len(rows) == 5
    for customer in ("om-a", "om-b"):
        native = httpx.get(f"{url}/v1/customers/{customer}/usage", headers=admin,
                           params={"from": query["from"], "to": query["to"], "window": "hour", "meter": "api_calls"}).json()
        expected = sorted((datetime.fromisoformat(point["window_start"]), sorted(series["dimensions"].items()), Decimal(point["value"]))
                          for series in native["series"] for point in series["points"])
        found = sorted((datetime.fromisoformat(row["windowStart"]), sorted(row["groupBy"].items()), Decimal(str(row["value"])))
                       for row in rows if row["subject"] == customer)
        assert found == expected and found
