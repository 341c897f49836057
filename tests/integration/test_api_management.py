"""Customer and subscription writes against the real broker: each accepted write is exactly one
contract event on its topic (keyed by the customer id, equal to the 202 body); rejected writes
publish nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from billing.core.contracts import (
    BillingInterval,
    BillingTime,
    Customer,
    Segment,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
    parse_topic,
)
from tests.integration.api_fixtures import TopicTail, bearer, insert, scratch_settings

pytestmark = pytest.mark.integration

SIGNUP = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
STORED = Customer(id="cust-m", company_name="Mercury SA", email="ap@mercury.example", country="FR", region="EMEA",
                  currency="EUR", segment=Segment.MID_MARKET, signup_time=SIGNUP, updated_at=SIGNUP)
START = datetime(2026, 3, 1, tzinfo=UTC)


def _subscription(subscription_id: str, **changes) -> SubscriptionEvent:
    fields = dict(event_id=f"se-{subscription_id}", subscription_id=subscription_id, customer_id="cust-m",
                  type=SubscriptionEventType.CREATED, sequence=1, plan_id="business",
                  billing_interval=BillingInterval.MONTH, status=SubscriptionStatus.ACTIVE, start_time=START,
                  effective_time=START, event_time=START)
    return SubscriptionEvent(**{**fields, **changes})


SUBSCRIPTIONS = [
    _subscription("sub-plan", billing_time=BillingTime.ANNIVERSARY),
    _subscription("sub-cancel"),
    _subscription("sub-done", event_id="se-done-2", type=SubscriptionEventType.CANCELED, sequence=2,
                  status=SubscriptionStatus.CANCELED, end_time=START, effective_time=START),
]
NEW_CUSTOMER = {"id": "cust-new", "company_name": "Néon Café", "email": "hi@neon.example", "country": "DE",
                "region": "EMEA", "currency": "EUR", "segment": "startup", "tax_exempt": True}


@pytest.fixture(scope="module")
def api_settings(settings, kafka, warehouse, tmp_path_factory):
    with scratch_settings(settings, tmp_path_factory) as scoped:
        insert(scoped, STORED, *SUBSCRIPTIONS)
        yield scoped


@pytest.fixture(scope="module")
def tokens(keys) -> dict[str, str]:
    return {"admin": keys.create([], admin=True)[1], "tenant": keys.create(["cust-m"])[1]}


@pytest.fixture()
def topics(api_settings):
    tails = {name: TopicTail(api_settings, api_settings.topics()[name]) for name in ("customers", "subscriptions")}
    yield tails
    for tail in tails.values():
        tail.close()


def _only_event(response, tail, topic: str, key: str):
    """The one message the write put on ``tail``: equal to the 202 body, keyed by ``key``, a valid contract."""
    assert response.status_code == 202, response.text
    body = response.json()
    [message] = tail.drain()
    assert body["topic"] == tail.topic
    assert message.key() == key.encode()
    assert orjson.loads(message.value()) == body["event"]
    return parse_topic(topic, message.value())


def _send(api, tokens, method, path, body, who="admin"):
    return api.request(method, path, json=body, headers=bearer(tokens[who]))


def test_create_customer_publishes_one_customer_event(api, tokens, topics):
    response = _send(api, tokens, "POST", "/v1/customers", NEW_CUSTOMER)
    event = _only_event(response, topics["customers"], "customers", "cust-new")
    assert event.model_dump(include=set(NEW_CUSTOMER)) == {**NEW_CUSTOMER, "segment": Segment.STARTUP}
    assert event.signup_time == event.updated_at
    assert abs((datetime.now(UTC) - event.updated_at).total_seconds()) < 600


def test_creating_a_stored_customer_is_409_and_publishes_nothing(api, tokens, topics):
    response = _send(api, tokens, "POST", "/v1/customers", {**NEW_CUSTOMER, "id": "cust-m"})
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert topics["customers"].drain() == []


def test_put_replaces_attributes_and_keeps_the_stored_signup_time(api, tokens, topics):
    body = {k: v for k, v in NEW_CUSTOMER.items() if k != "id"} | {"company_name": "Mercury SAS", "tax_region": "IDF"}
    event = _only_event(_send(api, tokens, "PUT", "/v1/customers/cust-m", body), topics["customers"], "customers", "cust-m")
    assert (event.id, event.company_name, event.tax_region, event.signup_time) == ("cust-m", "Mercury SAS", "IDF", SIGNUP)
    assert event.updated_at > SIGNUP


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/customers", NEW_CUSTOMER),
    ("PUT", "/v1/customers/cust-m", {k: v for k, v in NEW_CUSTOMER.items() if k != "id"}),
    ("POST", "/v1/subscriptions", {"customer_id": "cust-m", "plan_id": "business"}),
    ("PATCH", "/v1/subscriptions/sub-plan", {"status": "past_due"}),
])
def test_writes_need_an_admin_key(api, tokens, topics, method, path, body):
    response = _send(api, tokens, method, path, body, who="tenant")
    assert response.status_code == 403, response.text
    assert topics["customers"].drain() == [] and topics["subscriptions"].drain() == []


@pytest.mark.parametrize(("body", "reason"), [
    ({**NEW_CUSTOMER, "email": "not-an-email"}, "email"),
    ({**NEW_CUSTOMER, "currency": "eur"}, "currency"),
    ({**NEW_CUSTOMER, "signup_time": "2026-01-01T00:00:00"}, "signup_time"),
    ({**NEW_CUSTOMER, "updated_at": "2026-01-01T00:00:00Z"}, "updated_at"),
    ({k: v for k, v in NEW_CUSTOMER.items() if k != "segment"}, "segment"),
])
def test_invalid_customers_are_422_naming_the_field(api, tokens, topics, body, reason):
    response = _send(api, tokens, "POST", "/v1/customers", body)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert topics["customers"].drain() == []


def test_create_subscription_publishes_created_with_sequence_1(api, tokens, topics):
    response = _send(api, tokens, "POST", "/v1/subscriptions",
                     {"customer_id": "cust-m", "plan_id": "business", "subscription_id": "sub-new",
                      "status": "trialing", "start_time": "2026-04-01T00:00:00+02:00", "billing_time": "anniversary"})
    event = _only_event(response, topics["subscriptions"], "subscriptions", "cust-m")
    assert (event.subscription_id, event.type, event.sequence, event.plan_id, event.status, event.billing_time) == (
        "sub-new", SubscriptionEventType.CREATED, 1, "business", SubscriptionStatus.TRIALING, BillingTime.ANNIVERSARY)
    assert event.start_time == event.effective_time == datetime(2026, 3, 31, 22, tzinfo=UTC)


@pytest.mark.parametrize(("body", "status", "kind"), [
    ({"customer_id": "cust-m", "plan_id": "nope"}, 422, "unknown-plan"),
    ({"customer_id": "cust-m", "plan_id": "payments"}, 422, "unknown-plan"),  # not priced in EUR
    ({"customer_id": "cust-zz", "plan_id": "business"}, 422, "unknown-customer"),
    ({"customer_id": "cust-m", "plan_id": "business", "subscription_id": "sub-plan"}, 409, "subscription-exists"),
    ({"customer_id": "cust-m", "plan_id": "business", "status": "canceled"}, 422, "invalid-request"),
])
def test_rejected_subscriptions_publish_nothing(api, tokens, topics, body, status, kind):
    response = _send(api, tokens, "POST", "/v1/subscriptions", body)
    assert response.status_code == status, response.text
    assert response.json()["type"].endswith("/" + kind)
    assert topics["subscriptions"].drain() == []


def test_plan_change_publishes_the_next_sequence_with_the_previous_plan(api, tokens, topics):
    """The change keeps what the subscription was created with: its start and its (anniversary) billing time."""
    response = _send(api, tokens, "PATCH", "/v1/subscriptions/sub-plan",
                     {"plan_id": "growth", "effective_time": "2026-03-15T12:00:00Z"})
    event = _only_event(response, topics["subscriptions"], "subscriptions", "cust-m")
    assert (event.type, event.sequence, event.plan_id, event.previous_plan_id, event.status, event.start_time,
            event.billing_time) == (
        SubscriptionEventType.PLAN_CHANGED, 2, "growth", "business", SubscriptionStatus.ACTIVE, START, BillingTime.ANNIVERSARY)
    assert event.effective_time == datetime(2026, 3, 15, 12, tzinfo=UTC)


def test_cancel_publishes_canceled_with_the_end_of_service(api, tokens, topics):
    response = _send(api, tokens, "PATCH", "/v1/subscriptions/sub-cancel",
                     {"status": "canceled", "effective_time": "2026-03-20T00:00:00Z", "end_time": "2026-03-31T00:00:00Z"})
    event = _only_event(response, topics["subscriptions"], "subscriptions", "cust-m")
    assert (event.type, event.sequence, event.status, event.plan_id, event.end_time) == (
        SubscriptionEventType.CANCELED, 2, SubscriptionStatus.CANCELED, "business", datetime(2026, 3, 31, tzinfo=UTC))


@pytest.mark.parametrize(("path", "body", "status", "kind"), [
    ("/v1/subscriptions/sub-done", {"status": "active"}, 409, "subscription-canceled"),
    ("/v1/subscriptions/sub-plan", {"plan_id": "business"}, 409, "no-change"),
    ("/v1/subscriptions/sub-plan", {"status": "active"}, 409, "no-change"),
    ("/v1/subscriptions/sub-nope", {"status": "past_due"}, 404, "unknown-subscription"),
    ("/v1/subscriptions/sub-plan", {"plan_id": "growth", "status": "past_due"}, 422, "invalid-request"),
    ("/v1/subscriptions/sub-plan", {}, 422, "invalid-request"),
    ("/v1/subscriptions/sub-plan", {"status": "past_due", "end_time": "2026-04-01T00:00:00Z"}, 422, "invalid-request"),
    ("/v1/subscriptions/sub-plan", {"status": "canceled", "end_time": "2026-01-01T00:00:00Z"}, 422, "invalid-change"),
    ("/v1/subscriptions/sub-plan", {"plan_id": "nope"}, 422, "unknown-plan"),
])
def test_rejected_changes_publish_nothing(api, tokens, topics, path, body, status, kind):
    response = _send(api, tokens, "PATCH", path, body)
    assert response.status_code == status, response.text
    assert response.json()["type"].endswith("/" + kind)
    assert topics["subscriptions"].drain() == []
