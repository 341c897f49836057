"""Meter definitions, the YAML override and the aggregation functions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.core.errors import ConfigError
from billing.core.meters import DEFAULT_METERS, Accumulator, Aggregation, aggregate, load_meters, window_start

quantities = st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)


def test_defaults_cover_the_five_meters():
    meters = load_meters(None)
    assert meters.names == ("api_calls", "storage_gb_hours", "bandwidth_gb", "compute_seconds", "active_seats")
    assert meters["active_seats"].aggregation is Aggregation.UNIQUE_COUNT
    assert meters["active_seats"].value_field == "user_id"
    assert all(m.aggregation is Aggregation.SUM for m in DEFAULT_METERS if m.name != "active_seats")


def test_yaml_file_replaces_the_set(tmp_path):
    path = tmp_path / "meters.yaml"
    path.write_text("meters:\n  - {name: gpu_hours, unit: hours, aggregation: MAX, group_by: [region]}\n")
    meters = load_meters(path)
    assert meters.names == ("gpu_hours",)
    assert meters["gpu_hours"].aggregation is Aggregation.MAX
    assert "api_calls" not in meters


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("meters: 3\n", "top-level `meters:` list"),
        ("meters:\n  - {name: x, unit: u, aggregation: MEDIAN}\n", "aggregation"),
        ("meters:\n  - {name: x, unit: u, aggregation: SUM}\n  - {name: x, unit: u, aggregation: SUM}\n", "defined twice"),
        ("meters:\n  - {name: x, unit: u, aggregation: SUM, group_by: [a, a]}\n", "twice"),
        ("meters: [\n", "not valid YAML"),
        ("meters: []\n", "at least one meter"),
    ],
)
def test_bad_meter_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / "meters.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_meters(path)


def test_missing_meter_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read meters file"):
        load_meters(tmp_path / "absent.yaml")


@given(st.lists(quantities))
def test_sum_count_max(values):
    assert aggregate(Aggregation.SUM, values) == sum(values, Decimal(0))
    assert aggregate(Aggregation.COUNT, values) == len(values)
    assert aggregate(Aggregation.MAX, values) == (max(values) if values else 0)


@given(st.lists(st.sampled_from(["u1", "u2", "u3", "u4", "u5"])))
def test_unique_count_counts_distinct_values(values):
    assert aggregate(Aggregation.UNIQUE_COUNT, values) == len(set(values))


@given(st.lists(quantities, min_size=1))
def test_latest_is_the_last_value(values):
    assert aggregate(Aggregation.LATEST, values) == values[-1]


def test_empty_window_is_zero():
    assert all(aggregate(agg, []) == 0 for agg in Aggregation)


@given(st.sampled_from(list(Aggregation)), st.lists(quantities), st.integers(min_value=0, max_value=50))
def test_merging_split_windows_equals_aggregating_the_whole(aggregation, values, cut):
    cut = min(cut, len(values))
    left, right = Accumulator(aggregation), Accumulator(aggregation)
    for value in values[:cut]:
        left.add(value)
    for value in values[cut:]:
        right.add(value)
    left.merge(right)
    assert left.value() == aggregate(aggregation, values)
    assert left.events == len(values)


@given(st.sampled_from([Aggregation.SUM, Aggregation.COUNT, Aggregation.MAX, Aggregation.UNIQUE_COUNT]),
       st.lists(quantities), st.randoms(use_true_random=False))
def test_order_independent_aggregations(aggregation, values, rnd):
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert aggregate(aggregation, shuffled) == aggregate(aggregation, values)


def test_merge_rejects_other_aggregation():
    with pytest.raises(ValueError):
        Accumulator(Aggregation.SUM).merge(Accumulator(Aggregation.MAX))


def test_window_start_aligns_to_epoch():
    moment = datetime(2024, 3, 5, 13, 47, 12, 500, tzinfo=UTC)
    assert window_start(moment, 3600) == datetime(2024, 3, 5, 13, tzinfo=UTC)
    assert window_start(moment, 60) == datetime(2024, 3, 5, 13, 47, tzinfo=UTC)
