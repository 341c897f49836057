"""Pure parts of the query and management endpoints: usage time ranges, day values by the billing
rules, write bodies, and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api.problems import Problem
from api.routes.usage import DEFAULT_SPAN, MAX_SPAN, SECONDS, series, time_range
from api.schemas import CustomerCreate, SubscriptionChange, Window
from billing.core.contracts import SubscriptionEventType
from billing.core.meters import DEFAULT_METERS, MeterSet

NOW = datetime(2026, 11, 23, 18, 7, 30, tzinfo=UTC)


def test_defaults_end_now_and_start_a_window_aligned_span_earlier():
    assert time_range(Window.HOUR, None, None, NOW) == (datetime(2026, 11, 22, 18, tzinfo=UTC), NOW)
    assert time_range(Window.MINUTE, None, None, NOW)[0] == datetime(2026, 11, 23, 17, 7, tzinfo=UTC)
    assert time_range(Window.DAY, None, None, NOW)[0] == datetime(2026, 10, 24, tzinfo=UTC)


@given(window=st.sampled_from(list(Window)),
       start=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       length=st.integers(1, 800 * 86400))
def test_ranges_are_window_aligned_and_bounded_or_refused(window, start, length):
    end = start + timedelta(seconds=length)
    try:
        low, high = time_range(window, start, end, NOW)
    except Problem as problem:
        assert problem.status == 400
        assert end - start + timedelta(seconds=SECONDS[window]) > MAX_SPAN[window]
        return
    assert high == end and low <= start < low + timedelta(seconds=SECONDS[window])
    assert int(low.timestamp()) % SECONDS[window] == 0
    assert high - low <= MAX_SPAN[window]


@pytest.mark.parametrize("moment", [datetime(1969, 12, 31, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC),
                                    datetime(1, 1, 1, tzinfo=UTC)])
def test_times_outside_the_warehouse_range_are_400(moment):
    with pytest.raises(Problem) as raised:
        time_range(Window.DAY, None, moment, NOW)
    assert raised.value.status == 400 and "1970-01-01" in raised.value.detail


def test_default_spans_fit_the_limits():
    assert all(DEFAULT_SPAN[w] <= MAX_SPAN[w] for w in Window)


def test_day_values_follow_the_billing_rule_of_each_aggregation():
    day = datetime(2026, 9, 10, tzinfo=UTC)
    rows = [  # meter, group, dimensions, aggregation, day, sum, peak, last, events
        ("active_seats", "", {}, "UNIQUE_COUNT", day, Decimal(12), Decimal(5), Decimal(4), 13),
        ("api_calls", "region=eu", {"region": "eu"}, "SUM", day, Decimal("42.500000000"), Decimal(30), Decimal(30), 6),
        ("gauge", "", {}, "LATEST", day, Decimal(9), Decimal(7), Decimal(2), 3),
        ("peak", "", {}, "MAX", day, Decimal(9), Decimal(7), Decimal(2), 3),
    ]
    found = {s.meter: (s.unit, s.points[0].value, s.points[0].events) for s in series(rows, MeterSet(DEFAULT_METERS))}
    assert found == {"active_seats": ("seats", Decimal(5), 13), "api_calls": ("calls", Decimal("42.5"), 6),
                     "gauge": ("", Decimal(2), 3), "peak": ("", Decimal(7), 3)}
    assert str(found["api_calls"][1]) == "42.5"


def test_series_split_by_meter_and_dimension_group():
    t = datetime(2026, 9, 10, tzinfo=UTC)
    rows = [("api_calls", "a", {"region": "a"}, "SUM", t, Decimal(1), Decimal(1), Decimal(1), 1),
            ("api_calls", "a", {"region": "a"}, "SUM", t + timedelta(hours=1), Decimal(2), Decimal(2), Decimal(2), 1),
            ("api_calls", "b", {"region": "b"}, "SUM", t, Decimal(3), Decimal(3), Decimal(3), 1)]
    found = series(rows, MeterSet(DEFAULT_METERS))
    assert [(s.dimensions, [p.value for p in s.points]) for s in found] == [
        ({"region": "a"}, [Decimal(1), Decimal(2)]), ({"region": "b"}, [Decimal(3)])]


@pytest.mark.parametrize(("body", "kind"), [
    ({"plan_id": "growth"}, SubscriptionEventType.PLAN_CHANGED),
    ({"status": "past_due"}, SubscriptionEventType.STATUS_CHANGED),
    ({"status": "canceled", "end_time": "2026-12-31T00:00:00Z"}, SubscriptionEventType.CANCELED),
])
def test_a_change_names_its_event(body, kind):
    assert SubscriptionChange.model_validate(body).event_type() is kind


@pytest.mark.parametrize("body", [
    {}, {"plan_id": "growth", "status": "active"}, {"status": "active", "end_time": "2026-12-31T00:00:00Z"},
    {"plan_id": "growth", "effective_time": "2026-12-31T00:00:00"}, {"status": "canceled", "end_time": "0999-01-01T00:00:00Z"},
    {"plan_id": "bad plan"}, {"plan_id": "growth", "extra": 1},
])
def test_invalid_changes_are_refused(body):
    with pytest.raises(ValidationError):
        SubscriptionChange.model_validate(body)


def test_customer_bodies_use_the_contract_rules():
    good = {"id": "cust-1", "company_name": "A", "email": "a@b.co", "country": "DE", "region": "EMEA",
            "currency": "EUR", "segment": "smb"}
    assert CustomerCreate.model_validate(good).signup_time is None
    for bad in ({"id": "-x"}, {"country": "de"}, {"segment": "huge"}, {"updated_at": "2026-01-01T00:00:00Z"},
                {"signup_time": "1800-01-01T00:00:00Z"}):
        with pytest.raises(ValidationError):
            CustomerCreate.model_validate({**good, **bad})


def test_openapi_documents_problems_for_every_operation(tmp_path):
    from api.app import create_app
    from billing.settings import Settings

    spec = create_app(Settings(state_dir=tmp_path)).openapi()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                errors = {code: r for code, r in operation["responses"].items() if code.startswith(("4", "5"))}
                assert {"401", "422", "429"} <= set(errors), (method, path)
                assert all("application/problem+json" in r.get("content", {}) for code, r in errors.items()
                           if path != "/v1/events"), (method, path)
