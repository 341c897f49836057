"""Usage anomalies: injected spikes and drops in weekly-seasonal series are found, clean series stay quiet."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.alerts.anomaly import HOUR, WEEK, detect, hourly, judge, median, noise
from billing.core.alerts.events import anomaly_alert
from billing.core.alerts.rules import UsageAnomalyRule
from billing.core.contracts import AlertEvent, AlertType, AnomalyDirection, parse, to_bytes
from billing.core.meters import load_meters
from billing.core.pricing import builtin_catalog

CONTEXT = {"meters": load_meters(None), "catalog": builtin_catalog()}
START = datetime(2026, 1, 5, tzinfo=UTC)
"""A Monday, 00:00 UTC."""
WEEKS = 6


def rule(**fields) -> UsageAnomalyRule:
    return UsageAnomalyRule.model_validate({"id": "anomaly", "kind": "usage_anomaly", "meter": "api_calls", **fields},
                                           context=CONTEXT)


RULE = rule()


def seasonal(rng: random.Random, level: float, noise: float = 0.05) -> dict[datetime, Decimal]:
    """Six weeks of hourly usage: busy days, quiet nights and weekends, multiplicative noise."""
    series = {}
    for offset in range(WEEKS * 168):
        hour = START + offset * HOUR
        daily = 0.2 + 0.8 * max(0.0, math.sin(math.pi * (hour.hour - 6) / 16))
        weekly = 0.4 if hour.weekday() >= 5 else 1.0
        series[hour] = Decimal(round(level * daily * weekly * rng.gauss(1, noise)))
    return series


def inject(rng: random.Random, series: dict[datetime, Decimal], count: int) -> set[datetime]:
    """Spikes (x2.5-6), drops (to 0-40 %) and drops to zero at distinct hours of the week, after the cold start."""
    injected = set()
    for slot in rng.sample(range(168), count):
        hour = START + (rng.randrange(RULE.min_history, WEEKS) * 168 + slot) * HOUR
        kind = rng.choice(("spike", "drop", "zero"))
        factor = {"spike": rng.uniform(2.5, 6), "drop": rng.uniform(0, 0.4), "zero": 0}[kind]
        series[hour] = Decimal(round(float(series[hour]) * factor))
        injected.add(hour)
    return injected


def points(series: dict[datetime, Decimal]) -> list[tuple[datetime, Decimal]]:
    return [(hour, value) for hour, value in series.items() if value]


def test_injected_spikes_and_drops_are_found_with_precision_and_recall_above_0_9():
    rng = random.Random(22)
    true_positives = flagged = injected_total = 0
    for _ in range(20):
        series = seasonal(rng, level=rng.uniform(200, 20000), noise=0.1)
        injected = inject(rng, series, count=10)
        found = {anomaly.hour for anomaly in detect(points(series), RULE, end=START + WEEKS * WEEK)}
        true_positives += len(found & injected)
        flagged += len(found)
        injected_total += len(injected)
    precision, recall = true_positives / flagged, true_positives / injected_total
    print(f"anomaly detection on 20 synthetic series x {WEEKS} weeks, 10 % noise, {injected_total} injected: "
          f"precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.9 and recall >= 0.9


def test_a_clean_seasonal_series_stays_quiet():
    rng = random.Random(7)
    for _ in range(10):
        assert detect(points(seasonal(rng, level=rng.uniform(200, 20000))), RULE, end=START + WEEKS * WEEK) == []


def test_a_customer_who_stops_is_a_drop_to_zero_once_the_hours_are_evaluated():
    series = seasonal(random.Random(1), level=1000)
    last = START + 4 * WEEK
    before = [(hour, value) for hour, value in series.items() if hour < last]
    assert detect(before, RULE) == []
    silent = detect(before, RULE, start=last, end=last + 3 * HOUR)
    assert [(a.hour, a.value, a.direction) for a in silent] == [(last + n * HOUR, 0, AnomalyDirection.DROP) for n in range(3)]


def test_directions_filter_and_the_material_change_guard():
    history = [Decimal(100), Decimal(101), Decimal(99)]
    hour = START + 3 * WEEK
    assert judge(hour, Decimal(300), history, rule(direction="drops")) is None
    assert judge(hour, Decimal(300), history, rule(direction="spikes")).direction is AnomalyDirection.SPIKE
    assert judge(hour, Decimal(20), history, rule(direction="spikes")) is None
    assert judge(hour, Decimal(125), history, RULE) is None, "25 % off is far in MADs but not material (30 %)"
    assert judge(hour, Decimal(125), history, rule(min_change_percent=20)).score == Decimal(25) / (Decimal("1.4826") * 1)
    assert judge(hour, Decimal(300), history[:2], RULE) is None, "cold start: fewer than min_history past hours"


def test_the_series_noise_keeps_a_lucky_small_mad_from_raising_alarms():
    history = [Decimal(99), Decimal(100), Decimal(101)]
    hour = START + 3 * WEEK
    assert judge(hour, Decimal(140), history, RULE).score > 20, "alone, a MAD of 1 makes 40 % look extreme"
    assert judge(hour, Decimal(140), history, RULE, series_noise=Decimal("0.1")) is None, "40 % is 2.7 sigma at 10 % noise"
    assert judge(hour, Decimal(200), history, RULE, series_noise=Decimal("0.1")).score == Decimal(100) / (Decimal("1.4826") * 10)


def test_noise_is_the_median_relative_distance_to_the_baseline():
    flat = [Decimal(100)] * 3
    observations = [(Decimal(110), flat), (Decimal(90), flat), (Decimal(100), flat), (Decimal(500), flat),
                    (Decimal(7), [Decimal(0)] * 3)]
    assert noise(observations) == Decimal("0.1"), "the outlier does not move it, a zero baseline is skipped"
    assert noise([]) == 0


def test_an_anomaly_becomes_a_valid_alert_event():
    hour = START + 3 * WEEK
    flat = judge(hour, Decimal(0), [Decimal(40)] * 3, RULE)
    assert flat.score is None and flat.mad == 0, "a baseline that never varied has no finite score"
    alert = anomaly_alert(RULE, "cus-1", flat, time=hour + 2 * HOUR)
    assert alert.type is AlertType.USAGE_ANOMALY and alert.data.period_end == hour + HOUR
    assert alert.data.baseline == 40 and alert.data.direction is AnomalyDirection.DROP and alert.data.score is None
    assert parse(AlertEvent, to_bytes(alert)) == alert
    again = anomaly_alert(RULE, "cus-1", judge(hour, Decimal(1), [Decimal(40)] * 3, RULE), time=hour + 9 * HOUR)
    assert again.id == alert.id, "one alert per rule, customer and hour"


def test_hourly_sums_points_of_one_hour_and_median():
    at = START + 90 * HOUR
    assert hourly([(at.replace(minute=5), Decimal(2)), (at.replace(minute=55), Decimal(3))]) == {at: Decimal(5)}
    assert median([Decimal(3), Decimal(1), Decimal(2), Decimal(10)]) == Decimal("2.5")


day_pattern = st.lists(st.integers(0, 10**6), min_size=24, max_size=24)


def periodic(pattern: list[int], weeks: int) -> dict[datetime, Decimal]:
    return {START + offset * HOUR: Decimal(pattern[offset % 24] * (1 + (offset // 24) % 7)) for offset in range(weeks * 168)}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, RULE.min_history * 168 - 1), st.integers(0, 10**9)), max_size=60))
def test_cold_start_emits_nothing(samples):
    assert detect([(START + offset * HOUR, Decimal(value)) for offset, value in samples], RULE,
                  end=START + RULE.min_history * WEEK) == []


@settings(max_examples=25, deadline=None)
@given(day_pattern, st.integers(RULE.min_history, 6))
def test_an_exactly_weekly_series_is_quiet(pattern, weeks):
    assert detect(periodic(pattern, weeks).items(), RULE) == []


@settings(max_examples=25, deadline=None)
@given(day_pattern, st.integers(RULE.min_history * 168, 6 * 168 - 1), st.sampled_from(["spike", "zero"]))
def test_one_injected_spike_or_drop_to_zero_is_found_and_only_it(pattern, offset, kind):
    series = periodic(pattern, 6)
    hour = START + offset * HOUR
    normal = series[hour]
    series[hour] = normal * 3 + 10 if kind == "spike" else Decimal(0)
    found = [(a.hour, a.direction) for a in detect(series.items(), RULE)]
    if kind == "zero" and normal < RULE.min_delta:
        assert found == [], "no drop below the smallest change that counts"
    else:
        direction = AnomalyDirection.SPIKE if kind == "spike" else AnomalyDirection.DROP
        assert found == [(hour, direction)]


def test_the_log_scale_sees_a_drop_to_a_tenth_in_a_noisy_series():
    history = [Decimal(1000), Decimal(1300), Decimal(800)]
    hour = START + 3 * WEEK
    assert judge(hour, Decimal(100), history, RULE, series_noise=Decimal("0.3")) is None, "linear: at most 2.2 sigma"
    log = rule(scale="log")
    drop = judge(hour, Decimal(100), history, log, series_noise=Decimal("0.3"))
    assert drop.direction is AnomalyDirection.DROP and drop.baseline == 1000 and drop.score < -5
    spike = judge(hour, Decimal(10000), history, log, series_noise=Decimal("0.3"))
    assert spike.score == pytest.approx(-drop.score, rel=0.01), "a tenfold spike is as far as a drop to a tenth"
    assert judge(hour, Decimal(1500), history, log, series_noise=Decimal("0.3")) is None


def test_a_series_noisier_than_max_noise_is_not_judged():
    rng = random.Random(3)
    series = seasonal(rng, level=5000, noise=0.15)
    spiked = START + 5 * WEEK + 10 * HOUR
    series[spiked] *= 10
    assert [a.hour for a in detect(points(series), rule(scale="log"))] == [spiked]
    assert detect(points(series), rule(scale="log", max_noise="0.05")) == []
