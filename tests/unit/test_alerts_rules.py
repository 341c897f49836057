"""Alert rules files: the example loads; each bad rule raises its own located, actionable error."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml

from billing.core.alerts.errors import (
    AlertRuleError,
    DuplicateRule,
    DuplicateThreshold,
    InvalidThreshold,
    InvalidWebhook,
    UnknownMeter,
    UnreachableRule,
)
from billing.core.alerts.rules import EXAMPLE_RULES, UsageAnomalyRule, UsageThresholdRule, load_rules
from billing.core.contracts import ThresholdUnit
from billing.core.errors import ConfigError
from billing.core.meters import MeterSet, load_meters
from billing.core.pricing import builtin_catalog

METERS = load_meters(None)
CATALOG = builtin_catalog()


def write(tmp_path, *rules, name="rules.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"rules": list(rules)}))
    return path


def load(*paths, meters: MeterSet = METERS):
    return load_rules(paths, meters=meters, catalog=CATALOG)


def threshold_rule(**fields) -> dict:
    return {"id": "api", "kind": "usage_threshold", "meter": "api_calls", "thresholds": [100, 200], **fields}


def anomaly_rule(**fields) -> dict:
    return {"id": "spikes", "kind": "usage_anomaly", "meter": "api_calls", **fields}


def test_the_example_rules_load():
    rules = load(EXAMPLE_RULES)
    assert [rule.id for rule in rules] == ["api-allowance", "bandwidth-1tb", "api-anomaly"]
    allowance = rules.rules["api-allowance"]
    assert isinstance(allowance, UsageThresholdRule) and allowance.unit is ThresholdUnit.PERCENT
    assert allowance.thresholds == (Decimal(50), Decimal(80), Decimal(100))
    assert isinstance(rules.rules["api-anomaly"], UsageAnomalyRule)


def test_thresholds_are_exact_and_sorted_and_json_works_too(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [threshold_rule(thresholds=[1000, 0.1, "250.5"])]}).replace('"0.1"', "0.1"))
    rule = load(path).rules["api"]
    assert rule.thresholds == (Decimal("0.1"), Decimal("250.5"), Decimal(1000))


def test_rules_filter_by_customer_and_meter(tmp_path):
    rules = load(write(tmp_path, threshold_rule(customers=["cus-1"]), anomaly_rule()))
    assert [rule.id for rule in rules.watching("cus-1", "api_calls")] == ["api", "spikes"]
    assert [rule.id for rule in rules.watching("cus-2", "api_calls")] == ["spikes"]
    assert rules.watching("cus-1", "bandwidth_gb") == []


@pytest.mark.parametrize(
    ("rule", "error", "message"),
    [
        (threshold_rule(meter="api_cals"), UnknownMeter, "rule 'api' > meter: unknown meter 'api_cals'; configured meters: api_calls"),
        (threshold_rule(thresholds=[50, "eighty"]), InvalidThreshold, "rule 'api' > thresholds[2]: 'eighty' is not a number"),
        (threshold_rule(thresholds=["80%"]), InvalidThreshold, "thresholds[1]: '80%' is not a number; write a plain number"),
        (threshold_rule(thresholds=[True]), InvalidThreshold, "thresholds[1]: True is not a number"),
        (threshold_rule(thresholds=[".nan"]), InvalidThreshold, "is not a number"),
        (threshold_rule(thresholds=[0]), InvalidThreshold, "thresholds[1]: 0 is not positive"),
        (threshold_rule(thresholds=[50, -5]), InvalidThreshold, "thresholds[2]: -5 is not positive"),
        (threshold_rule(thresholds=["1e25"]), InvalidThreshold, "thresholds[1]: 1e25 is out of range; write a number below 10^20"),
        (threshold_rule(thresholds=["0.0000000001"]), InvalidThreshold, "at most 9 decimal places"),
        (threshold_rule(thresholds=[80, 50, 80.0]), DuplicateThreshold,
         "rule 'api' > thresholds: threshold 80.0 repeats 80; list each threshold once"),
        (threshold_rule(thresholds=[]), UnreachableRule, "rule 'api' > thresholds: no thresholds, so the rule never fires"),
        (threshold_rule(meter="storage_gb_hours", unit="percent"), UnreachableRule,
         "no plan includes units of storage_gb_hours, so a percent of them is never reached; use unit: units"),
        (threshold_rule(customers=[]), UnreachableRule, "rule 'api' > customers: an empty customers list watches nobody"),
        (threshold_rule(webhook="ftp://example.com/x"), InvalidWebhook,
         "rule 'api' > webhook: webhook 'ftp://example.com/x' is not an absolute http(s) URL; write e.g. https://"),
        (threshold_rule(webhook="example.com/hook"), InvalidWebhook, "is not an absolute http(s) URL"),
        (threshold_rule(webhook="https:///path"), InvalidWebhook, "is not an absolute http(s) URL"),
        (threshold_rule(unit="dollars"), AlertRuleError, "rule 'api' > unit: Input should be 'units' or 'percent'"),
        (threshold_rule(threshold=[1]), AlertRuleError, "rule 'api' > threshold: unknown field (typo?)"),
        (threshold_rule(kind="spend"), AlertRuleError, "rule 'api': unknown rule kind; use one of: usage_threshold, usage_anomaly"),
        ({"id": "x", "meter": "api_calls"}, AlertRuleError, "rule 'x': kind is required"),
        (anomaly_rule(weeks=2, min_history=3), UnreachableRule,
         "rule 'spikes': min_history 3 is more than the 2 weeks compared, so the rule never has enough history"),
        (anomaly_rule(direction="drops", min_change_percent=150), UnreachableRule,
         "usage cannot drop by more than 100 %, so min_change_percent 150 never fires for drops"),
        (anomaly_rule(score=0), InvalidThreshold, "rule 'spikes' > score: 0 is not positive"),
        (anomaly_rule(direction="up"), AlertRuleError, "rule 'spikes' > direction: Input should be 'spikes', 'drops' or 'both'"),
    ],
)
def test_a_bad_rule_raises_its_own_error(tmp_path, rule, error, message):
    with pytest.raises(error) as raised:
        load(write(tmp_path, rule))
    assert type(raised.value) is error
    assert isinstance(raised.value, ConfigError), "the CLI prints ConfigErrors as one line"
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"{tmp_path / 'rules.yaml'}: ")


def test_every_problem_of_a_file_is_listed(tmp_path):
    with pytest.raises(UnknownMeter) as raised:
        load(write(tmp_path, threshold_rule(meter="nope"), anomaly_rule(score=-1)))
    assert "rule 'api' > meter: unknown meter 'nope'" in str(raised.value)
    assert "rule 'spikes' > score: -1 is not positive" in str(raised.value)


def test_meters_come_from_the_configuration(tmp_path):
    custom = MeterSet([METERS["api_calls"].model_copy(update={"name": "tokens"})])
    assert [rule.meter for rule in load(write(tmp_path, threshold_rule(meter="tokens")), meters=custom)] == ["tokens"]
    with pytest.raises(UnknownMeter, match="configured meters: tokens"):
        load(write(tmp_path, threshold_rule()), meters=custom)


def test_a_rule_id_defined_twice_is_an_error(tmp_path):
    first = write(tmp_path, threshold_rule(), name="a.yaml")
    second = write(tmp_path, threshold_rule(thresholds=[5]), name="b.yaml")
    with pytest.raises(DuplicateRule, match=r"b.yaml: rule 'api' is defined twice; give each rule its own id"):
        load(tmp_path)
    assert len(load(first)) == len(load(second)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [("rules: [", "not valid YAML"), ("- 1", "expected a mapping with a `rules:` list"), ("{}", r"rules.yaml: rules: Field required")],
)
def test_a_malformed_file_is_an_error(tmp_path, text, message):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(path)


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file or directory"):
        load(tmp_path / "absent.yaml")
