"""Usage thresholds fire once per (rule, customer, period, threshold), replays included; the alert contract."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.alerts.events import alert_id, threshold_alerts
from billing.core.alerts.rules import UsageThresholdRule
from billing.core.alerts.thresholds import crossed, limits
from billing.core.contracts import AlertEvent, AlertType, ContractViolation, ThresholdUnit, parse, to_bytes
from billing.core.meters import load_meters
from billing.core.pricing import builtin_catalog, month_period

CONTEXT = {"meters": load_meters(None), "catalog": builtin_catalog()}
PERIOD = month_period(datetime(2026, 3, 1, tzinfo=UTC))
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def rule(thresholds, unit="units", **fields) -> UsageThresholdRule:
    document = {"id": "api", "kind": "usage_threshold", "meter": "api_calls", "unit": unit, "thresholds": thresholds,
                **fields}
    return UsageThresholdRule.model_validate(document, context=CONTEXT)


def fire(the_rule, previous, current, *, customer="cus-1", included=Decimal(0), period=PERIOD):
    return threshold_alerts(the_rule, customer, period, Decimal(previous), Decimal(current), included=included, time=NOW)


def test_a_step_fires_the_thresholds_it_reaches():
    alerts = fire(rule([100, 200, 300]), 50, 200)
    assert [alert.data.threshold for alert in alerts] == [100, 200], "reaching a threshold exactly fires it"
    assert all(alert.type is AlertType.USAGE_THRESHOLD and alert.subject == "cus-1" for alert in alerts)
    assert alerts[0].data.value == 200 and alerts[0].data.period_start == PERIOD.start
    assert fire(rule([100]), 100, 150) == [], "a threshold reached before does not fire again"
    assert fire(rule([100]), 0, Decimal("99.999")) == []


def test_percent_thresholds_are_a_share_of_the_included_units():
    allowance = builtin_catalog().plan("starter").included_units("api_calls")
    assert allowance == 100000
    alerts = fire(rule([50, 80, 100], unit="percent"), 0, 80000, included=allowance)
    assert [(alert.data.threshold, alert.data.limit, alert.data.unit) for alert in alerts] == [
        (50, 50000, ThresholdUnit.PERCENT), (80, 80000, ThresholdUnit.PERCENT)]
    assert fire(rule([50], unit="percent"), 0, 10**9, included=Decimal(0)) == [], "nothing included: the rule does not apply"


def test_only_the_listed_customers_are_watched():
    listed = rule([10], customers=["cus-1"])
    assert len(fire(listed, 0, 20, customer="cus-1")) == 1
    assert fire(listed, 0, 20, customer="cus-2") == []


def test_the_alert_id_is_deterministic_and_distinguishes_what_it_must():
    base = alert_id("api", "cus-1", PERIOD.start, Decimal(80))
    assert base == alert_id("api", "cus-1", PERIOD.start, Decimal("80.00")), "80 and 80.00 are one threshold"
    others = {
        alert_id("api2", "cus-1", PERIOD.start, Decimal(80)),
        alert_id("api", "cus-2", PERIOD.start, Decimal(80)),
        alert_id("api", "cus-1", month_period(datetime(2026, 4, 1, tzinfo=UTC)).start, Decimal(80)),
        alert_id("api", "cus-1", PERIOD.start, Decimal(100)),
        alert_id("api", "cus-1", PERIOD.start),
    }
    assert base not in others and len(others) == 5
    assert alert_id("a:b", "c", PERIOD.start) != alert_id("a", "b:c", PERIOD.start), "the parts cannot run together"


def test_the_alert_event_round_trips_on_the_wire():
    alert = fire(rule([Decimal("0.5")]), 0, Decimal("1234567890123.123456789"))[0]
    wire = to_bytes(alert)
    assert b'"value":"1234567890123.123456789"' in wire and b'"limit":"0.500000000"' in wire
    assert parse(AlertEvent, wire) == alert


def test_the_alert_event_refuses_fields_of_the_other_kind():
    document = fire(rule([1]), 0, 5)[0].model_dump(mode="json")
    with pytest.raises(ContractViolation, match="a usage.threshold.exceeded alert has no data.score"):
        parse(AlertEvent, orjson.dumps({**document, "data": {**document["data"], "score": "3"}}))
    with pytest.raises(ContractViolation, match="a usage.anomaly.detected alert needs data.baseline"):
        parse(AlertEvent, orjson.dumps({**document, "type": "usage.anomaly.detected"}))
    with pytest.raises(ContractViolation, match="period_end must be after period_start"):
        parse(AlertEvent, orjson.dumps({**document, "data": {**document["data"], "period_end": document["data"]["period_start"]}}))


thresholds = st.lists(st.integers(1, 2000), min_size=1, max_size=6, unique=True)
increments = st.lists(st.integers(0, 500), max_size=40)


@settings(max_examples=100, deadline=None)
@given(thresholds, increments)
def test_each_threshold_fires_exactly_once_over_any_sequence_of_increments(values, steps):
    the_rule = rule(values)
    total, fired = 0, []
    for step in steps:
        fired.extend(fire(the_rule, total, total + step))
        total += step
    reached = sorted(value for value in values if value <= total)
    assert sorted(alert.data.threshold for alert in fired) == reached, "every threshold reached fires, none above"
    assert len({alert.id for alert in fired}) == len(fired), "no threshold fires twice"
    assert all(alert.data.value >= alert.data.limit for alert in fired)


@settings(max_examples=100, deadline=None)
@given(thresholds, increments, st.data())
def test_replays_and_restarts_only_repeat_ids_already_fired(values, steps, data):
    """A replay re-evaluates steps (from any earlier checkpoint) in any order: the ids dedupe to the same set."""
    the_rule = rule(values)
    totals = [0]
    for step in steps:
        totals.append(totals[-1] + step)
    once = {alert.id for before, after in zip(totals, totals[1:], strict=False) for alert in fire(the_rule, before, after)}
    replayed = set(once)
    for _ in range(data.draw(st.integers(0, 10))):
        end = data.draw(st.integers(0, len(totals) - 1))
        start = data.draw(st.integers(0, end))
        replayed |= {alert.id for alert in fire(the_rule, totals[start], totals[end])}
    assert replayed == once


@given(st.lists(st.decimals(min_value=Decimal("0.001"), max_value=10**6, places=3), min_size=1, max_size=5, unique=True),
       st.decimals(min_value=0, max_value=10**6, places=3), st.decimals(min_value=0, max_value=10**6, places=3))
def test_crossed_is_the_half_open_interval(values, previous, current):
    bounds = limits(rule(values))
    assert crossed(bounds, previous, current) == [(v, v) for v in sorted(values) if previous < v <= current]
