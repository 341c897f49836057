"""Pure parts of the OpenMeter-compatible surface: meter and subject ids, meter shapes, groupBy and
merge rules, time-zone windows, and the merging of rollup rows into OpenMeter rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.openmeter import (
    WindowSize,
    check_aligned,
    check_group_by,
    check_mergeable,
    local_day,
    meter_shape,
    query_rows,
    ulid_of,
    window_end,
)
from api.problems import Problem
from billing.core.meters import DEFAULT_METERS, Aggregation, Meter, MeterSet

METERS = MeterSet(DEFAULT_METERS)
CALLS, SEATS = METERS["api_calls"], METERS["active_seats"]
PEAK = Meter(name="peak", unit="x", aggregation=Aggregation.MAX, group_by=("region",))
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")
T = datetime(2026, 9, 10, 10, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


@given(st.text(min_size=1, max_size=80))
def test_ids_are_stable_ulid_shaped_digests(text):
    assert ULID.match(ulid_of(text)) and ulid_of(text) == ulid_of(text)


def test_meter_shapes_name_the_measured_field_and_dimensions():
    shape = meter_shape(SEATS, T).model_dump(by_alias=True)
    assert (shape["slug"], shape["eventType"], shape["valueProperty"], shape["groupBy"]) == (
        "active_seats", "active_seats", "$.user_id", {})
    assert meter_shape(CALLS, T).group_by == {"region": "$.region", "endpoint": "$.endpoint"}


def test_group_by_names_subject_or_the_meters_dimensions():
    assert check_group_by(CALLS, ["subject", "region", "region"], {"endpoint": "/a"}) == ["region"]
    for group_by, filters in ((["tier"], {}), ([], {"subject": "x"}), ([], {"tier": "x"})):
        with pytest.raises(Problem) as raised:
            check_group_by(CALLS, group_by, filters)
        assert raised.value.status == 400 and "region, endpoint" in raised.value.detail


def test_only_sum_count_and_max_values_are_merged():
    check_mergeable(CALLS, False, [], {})
    check_mergeable(SEATS, True, [], {})
    with pytest.raises(Problem) as raised:
        check_mergeable(SEATS, False, [], {})
    assert "groupBy=subject" in raised.value.detail


def _row(customer, dims, value, bucket=T, aggregation="SUM"):
    value = Decimal(value)
    return (customer, "m", "g", dims, aggregation, bucket, value, value, value, 1)


def test_rows_merge_by_the_aggregation():
    rows = [_row("a", {"region": "eu"}, "1.5"), _row("b", {"region": "eu"}, "4"), _row("a", {"region": "us"}, "2")]
    merged = query_rows(rows, CALLS, False, [], WindowSize.HOUR, UTC_ZONE, T)
    assert [(r.subject, r.group_by, r.value, r.window_end) for r in merged] == [(None, {}, 7.5, T + timedelta(hours=1))]
    by_subject = query_rows(rows, CALLS, True, ["region"], WindowSize.HOUR, UTC_ZONE, T)
    assert [(r.subject, r.group_by, r.value) for r in by_subject] == [
        ("a", {"region": "eu"}, 1.5), ("a", {"region": "us"}, 2.0), ("b", {"region": "eu"}, 4.0)]
    peaks = query_rows([_row(c, {"region": "eu"}, v, aggregation="MAX") for c, v in (("a", "3"), ("b", "5"))],
                       PEAK, False, [], None, UTC_ZONE, T + timedelta(days=1))
    assert [(r.value, r.window_end) for r in peaks] == [(5.0, T + timedelta(days=1))]


def test_days_of_the_window_time_zone_follow_daylight_saving():
    berlin = ZoneInfo("Europe/Berlin")
    start = local_day(berlin)(datetime(2026, 10, 25, 12, tzinfo=UTC))
    assert start == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert window_end(start, WindowSize.DAY, berlin, start) == datetime(2026, 10, 25, 23, tzinfo=UTC)  # a 25-hour day


@pytest.mark.parametrize(("name", "window", "aligned"), [
    ("Europe/Berlin", WindowSize.DAY, True), ("Asia/Kolkata", WindowSize.DAY, False),
    ("Asia/Kolkata", WindowSize.HOUR, False), ("Asia/Kolkata", WindowSize.MINUTE, True), ("Asia/Kathmandu", None, False)])
def test_windows_must_align_with_the_utc_rollups(name, window, aligned):
    try:
        check_aligned(ZoneInfo(name), window, T, T + timedelta(days=3))
    except Problem as problem:
        assert not aligned and problem.status == 400 and "fraction of an hour" in problem.detail
    else:
        assert aligned
