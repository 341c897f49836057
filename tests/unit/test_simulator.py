"""The traffic simulator: determinism, contract validity, exact manifest, fault injection, CLI errors."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.contracts import TOPIC_MODELS, ContractViolation, parse_topic, parse_usage
from billing.core.errors import ConfigError, ServiceUnavailable
from billing.core.meters import aggregate, load_meters, window_start
from producers.manifest import Manifest
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, KafkaSink, read_records

START = datetime(2024, 5, 30, tzinfo=UTC)
LATER = START + timedelta(days=200)  # after every simulated history here, within the past horizon
BILLING = str(Path(sys.executable).with_name("billing"))


def simulate(tmp: Path, **options) -> tuple[Path, Manifest]:
    config = SimulationConfig(**{"customers": 40, "events": 3000, "rate": None, "start": START, "days": 3, **options})
    out = tmp / "records.tsv"
    Simulator(config, load_meters(None), FileSink(out), tmp / "manifest").run()
    return out, Manifest.load(tmp / "manifest")


def test_same_seed_same_bytes(tmp_path):
    faults = {"duplicate_rate": 0.05, "late_rate": 0.05, "malformed_rate": 0.05}
    first, _ = simulate(tmp_path / "a", seed=11, **faults)
    second, _ = simulate(tmp_path / "b", seed=11, **faults)
    other, _ = simulate(tmp_path / "c", seed=12, **faults)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert (tmp_path / "a/manifest/usage_hourly.parquet").read_bytes() == (tmp_path / "b/manifest/usage_hourly.parquet").read_bytes()


def test_every_record_of_every_topic_validates(tmp_path):
    out, manifest = simulate(tmp_path, seed=3, customers=60, days=45, events=4000)
    topics = Counter()
    for topic, key, value in read_records(out):
        model = parse_usage(value, now=LATER) if topic == "usage" else parse_topic(topic, value)
        customer = model.subject if topic == "usage" else (model.id if topic == "customers" else model.customer_id)
        assert key.decode() == customer
        topics[topic] += 1
    engine_owned = {"dead_letters", "invoices", "credit_notes", "payments", "alerts", "report_jobs"}
    assert set(topics) == set(TOPIC_MODELS) - engine_owned, "the engine owns invoices"
    assert dict(topics) == manifest.summary["records"]
    assert manifest.invoices() == [] and manifest.payments() == []


def test_no_usage_after_a_canceled_subscription_stops_serving(tmp_path):
    out, _ = simulate(tmp_path, seed=5, customers=60, days=150, events=30000)
    ends, usage = {}, []
    for topic, _, value in read_records(out):
        if topic == "subscriptions":
            event = parse_topic(topic, value)
            if event.type.value == "canceled":
                ends[event.customer_id] = event.end_time
        elif topic == "usage":
            usage.append(parse_usage(value, now=LATER))
    assert ends and any(end < START + timedelta(days=150) for end in ends.values())
    assert not [e for e in usage if e.subject in ends and e.time >= ends[e.subject]]
    assert {e.subject for e in usage} & set(ends)


def _replay(out: Path, lateness: timedelta):
    """Recompute what the manifest should say from the records alone."""
    meters = load_meters(None)
    seen, duplicates, malformed, late, order = {}, [], set(), set(), []
    hourly, daily = defaultdict(list), defaultdict(list)
    newest = None
    per_key = Counter()
    for topic, key, value in read_records(out):
        if topic != "usage":
            continue
        per_key[key.decode()] += 1
        try:
            event = parse_usage(value, now=LATER)
        except ContractViolation:
            malformed.add(value)
            continue
        if event.id in seen:
            assert seen[event.id] == value, "a duplicate must be byte-identical"
            duplicates.append(event.id)
            continue
        seen[event.id] = value
        if newest is not None and event.time < newest - lateness:
            late.add(event.id)
        newest = max(newest or event.time, event.time)
        order.append((event.id, event.time))
        ordered = (event.time, event.id, event.measured_value(meters))
        hourly[(event.subject, event.type, window_start(event.time, 3600))].append(ordered)
        daily[(event.subject, event.type, window_start(event.time, 86400))].append(ordered)
    def totals(groups):
        return {k: aggregate(meters[k[1]].aggregation, [v for *_, v in sorted(vals)]) for k, vals in groups.items()}
    return totals(hourly), totals(daily), duplicates, malformed, late, per_key, order


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), dup=st.sampled_from([0, 0.02, 0.2]), late=st.sampled_from([0, 0.03, 0.3]),
       bad=st.sampled_from([0, 0.05, 0.3]))
def test_manifest_is_exactly_what_was_sent(tmp_path_factory, seed, dup, late, bad):
    tmp = tmp_path_factory.mktemp("run")
    out, manifest = simulate(tmp, seed=seed, duplicate_rate=dup, late_rate=late, malformed_rate=bad, lateness_s=1800)
    hourly, daily, duplicates, malformed, late_ids, per_key, order = _replay(out, timedelta(seconds=1800))
    assert manifest.usage_totals("hour") == hourly
    assert manifest.usage_totals("day") == daily
    assert sorted(f.event_id for f in manifest.faults("duplicate")) == sorted(duplicates)
    assert len(manifest.faults("malformed")) == len(malformed)
    late_faults = manifest.faults("late")
    declared_late = {f.event_id for f in late_faults}
    assert late_ids <= declared_late
    assert all(f.emitted_at - f.event_time > timedelta(seconds=1800) for f in late_faults)
    on_time = [t for event_id, t in order if event_id not in declared_late]
    assert on_time == sorted(on_time), "every event not declared late arrives in event-time order"
    assert manifest.record_counts("usage") == dict(per_key)
    usage = manifest.summary["usage"]
    assert usage["unique_valid"] + usage["duplicates"] + usage["malformed"] == sum(per_key.values())
    assert usage["unique_valid"] + usage["malformed"] == 3000


def test_malformed_records_cover_every_reason(tmp_path):
    _, manifest = simulate(tmp_path, seed=1, malformed_rate=0.5)
    reasons = Counter(f.reason for f in manifest.faults("malformed"))
    assert set(reasons) == {"invalid_json", "missing_field", "negative_quantity", "unknown_meter",
                            "future_timestamp", "naive_timestamp"}


def test_traffic_is_heavy_tailed_and_seasonal(tmp_path):
    _, manifest = simulate(tmp_path, seed=5, customers=200, events=20_000, days=7)
    per_customer = Counter()
    per_hour_of_day = Counter()
    for total in manifest.usage("hour"):
        per_customer[total.customer_id] += total.events
        per_hour_of_day[total.window_start.hour] += total.events
    ranked = sorted(per_customer.values(), reverse=True)
    assert sum(ranked[:20]) > 0.4 * sum(ranked), "top 10% of customers should send a large share"
    assert max(per_hour_of_day.values()) > 1.5 * min(per_hour_of_day.values())


def test_history_run_leaves_the_garbage_collector_as_it_was(tmp_path):
    simulate(tmp_path / "on", seed=2)
    assert gc.isenabled()
    gc.disable()
    try:
        simulate(tmp_path / "off", seed=2)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_fault_rates_and_meter_mix_follow_the_configuration(tmp_path):
    _, manifest = simulate(tmp_path, seed=8, customers=100, events=60_000, days=2,
                           duplicate_rate=0.02, late_rate=0.05, malformed_rate=0.01)
    usage = manifest.summary["usage"]
    assert usage["malformed"] == pytest.approx(600, rel=0.15)
    assert usage["late"] == pytest.approx(0.05 * 59_400, rel=0.1)
    assert usage["duplicates"] == pytest.approx(0.02 * 59_400, rel=0.12)
    per_meter = Counter()
    for total in manifest.usage("hour"):
        per_meter[total.meter] += total.events
    assert per_meter.most_common(1)[0][0] == "api_calls"
    assert set(per_meter) == {"api_calls", "storage_gb_hours", "bandwidth_gb", "compute_seconds", "active_seats"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 0}, "--rate must be positive"),
        ({"customers": -1}, "--customers must be at least 1"),
        ({"duplicate_rate": 1.5}, "--duplicate-rate must be between 0 and 1"),
        ({"duration_s": 5, "events": 10}, "either --duration or --events"),
        ({"start": START, "days": 1, "rate": None, "duration_s": 5}, "history mode"),
        ({"days": -2, "events": 5}, "--days must be positive"),
        ({"start": datetime(2024, 1, 1), "events": 5}, "needs a time zone"),
        ({"lateness_s": 0, "events": 5}, "--lateness must be positive"),
    ],
)
def test_impossible_configurations(options, message):
    with pytest.raises(ConfigError, match=message):
        SimulationConfig(**options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "--rate must be positive"),
        (["--rate", "fast"], "--rate must be a number"),
        (["--customers", "-5"], "--customers must be at least 1"),
        (["--duplicate-rate", "2"], "between 0 and 1"),
        (["--duration", "5", "--events", "10"], "either --duration or --events"),
        (["--start", "yesterday"], "--start must be an ISO 8601"),
    ],
)
def test_cli_rejects_bad_input_in_one_line(tmp_path, args, message):
    done = subprocess.run([BILLING, "simulate", "--output", str(tmp_path / "o.tsv"), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_broker_is_reported(tmp_path):
    with pytest.raises(ServiceUnavailable, match="not reachable"):
        KafkaSink(f"127.0.0.1:{_closed_port()}", {"usage": "u"}, connect_timeout_s=2)


def test_cli_unreachable_broker_exits_non_zero(tmp_path):
    env = {"BILLING_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}", "BILLING_STATE_DIR": str(tmp_path)}
    done = subprocess.run([BILLING, "simulate", "--events", "10"], capture_output=True, text=True, timeout=30,
                          env={**__import__("os").environ, **env})
    assert done.returncode != 0
    assert "not reachable" in done.stderr


def test_cli_writes_file_and_manifest(tmp_path):
    out, manifest_dir = tmp_path / "o.tsv", tmp_path / "m"
    done = subprocess.run([BILLING, "simulate", "--customers", "10", "--events", "500", "--rate", "max",
                           "--start", "2024-06-01", "--output", str(out), "--manifest", str(manifest_dir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    manifest = Manifest.load(manifest_dir)
    assert manifest.summary["usage"]["unique_valid"] == 500
    assert sum(manifest.record_counts("usage").values()) == sum(1 for t, *_ in read_records(out) if t == "usage")
    assert sum(v.events for v in manifest.usage("day")) == 500
    assert all(v.value >= Decimal(0) for v in manifest.usage("hour"))
