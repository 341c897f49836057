"""Property test of every endpoint against the app's own OpenAPI document (schemathesis): generated
valid and invalid requests never get a server error other than a documented 503, and every
response conforms to the documented status codes, content types and schemas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.keys import KeyStore, store_path
from billing.core.contracts import (
    BillingInterval,
    Customer,
    Invoice,
    InvoiceStatus,
    LineItem,
    LineKind,
    Segment,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)
from billing.settings import get_settings
from tests.integration.api_fixtures import bearer, insert, insert_rollups, scratch_settings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 9, 1, tzinfo=UTC)
CUSTOMER = Customer(id="cust-s", company_name="Schema Co", email="a@schema.example", country="US", region="NA",
                    currency="USD", segment=Segment.SMB, signup_time=T0, updated_at=T0)
SUBSCRIPTION = SubscriptionEvent(event_id="se-s", subscription_id="sub-s", customer_id="cust-s",
                                 type=SubscriptionEventType.CREATED, sequence=1, plan_id="starter",
                                 billing_interval=BillingInterval.MONTH, status=SubscriptionStatus.ACTIVE,
                                 start_time=T0, effective_time=T0, event_time=T0)
INVOICE = Invoice(id="inv-cust-s-202609", customer_id="cust-s", period_start=T0, period_end=datetime(2026, 10, 1, tzinfo=UTC),
                  currency="USD", line_items=(LineItem(kind=LineKind.SUBSCRIPTION, charge="starter.platform_fee",
                                                       quantity=Decimal(1), unit_price=Decimal(29), amount=Decimal(29)),),
                  subtotal=Decimal(29), total=Decimal(29), status=InvoiceStatus.DRAFT, event_time=T0)


@pytest.fixture(scope="module")
def scoped(settings, kafka, warehouse, tmp_path_factory):
    with scratch_settings(settings, tmp_path_factory) as scoped:
        insert(scoped, CUSTOMER, SUBSCRIPTION, INVOICE)
        insert_rollups(scoped, [("cust-s", "api_calls", 3600, T0, {"region": "eu", "endpoint": "/a"}, "SUM", "5", 1, 1)])
        yield scoped


@pytest.fixture(scope="module")
def token(scoped) -> str:
    return KeyStore(store_path(scoped)).create([], admin=True)[1]


SPEC = create_app(get_settings()).openapi()
SCHEMA = schemathesis.openapi.from_dict(SPEC)
KNOWN_IDS = {"customer_id": "cust-s", "invoice_id": "inv-cust-s-202609", "subscription_id": "sub-s"}


def _cases() -> list[tuple[str, str, GenerationMode, bool]]:
    """Every operation with valid requests, with valid requests for the stored customer, invoice and
    subscription (where the path names one), and with invalid requests (where it has inputs)."""
    cases = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE, False))
            if "{" in path:
                cases.append((method.upper(), path, GenerationMode.POSITIVE, True))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE, False))
    return cases


CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api(scoped) -> Iterator[TestClient]:
    with TestClient(create_app(scoped)) as client:
        yield client


def _httpx_kwargs(kwargs: dict) -> dict:
    """schemathesis' request arguments in the form the TestClient (httpx) takes without deprecation warnings."""
    if isinstance(kwargs.get("data"), (bytes, str)):
        kwargs["content"] = kwargs.pop("data")
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)
    return kwargs


@pytest.mark.parametrize(("method", "path", "mode", "known"), _cases())
def test_every_endpoint_answers_as_documented(api, token, method, path, mode, known):
    operation = SCHEMA[path][method]
    fixed = {name: value for name, value in KNOWN_IDS.items() if known and "{" + name + "}" in path}

    @given(case=operation.as_strategy(mode, path_parameters=fixed or None))
    @hypothesis_settings(max_examples=25, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))
    def answers_as_documented(case):
        response = api.request(**_httpx_kwargs(case.as_transport_kwargs(base_url=str(api.base_url), headers=bearer(token))))
        if response.status_code >= 500:
            assert response.status_code == 503 and "503" in operation.definition.raw["responses"], response.text
        case.validate_response(response, checks=CHECKS)

    answers_as_documented()
