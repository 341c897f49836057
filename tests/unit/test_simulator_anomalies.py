"""Injected usage anomalies: deterministic, in the manifest, confined to their cell-hours, found by the detector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.bench_anomalies import NullSink, rules, score
from billing.core.errors import ConfigError
from billing.core.meters import load_meters
from producers.anomalies import WARMUP, AnomalyKind
from producers.manifest import Manifest
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink
from tests.unit.test_simulator import _replay

START = datetime(2024, 6, 3, tzinfo=UTC)


def simulate(folder, *, sink=None, **options) -> Manifest:
    config = SimulationConfig(**{"customers": 1, "events": 80_000, "rate": None, "start": START, "days": 22,
                                 "seed": 5, "anomalies": 10, **options})
    Simulator(config, load_meters(None), sink or FileSink(folder / "records.tsv"), folder / "manifest").run()
    return Manifest.load(folder / "manifest")


def test_same_seed_same_anomalies_and_bytes(tmp_path):
    first = simulate(tmp_path / "a", duplicate_rate=0.05, late_rate=0.05, malformed_rate=0.05)
    second = simulate(tmp_path / "b", duplicate_rate=0.05, late_rate=0.05, malformed_rate=0.05)
    assert (tmp_path / "a/records.tsv").read_bytes() == (tmp_path / "b/records.tsv").read_bytes()
    assert first.anomalies() == second.anomalies()
    assert len(first.anomalies()) == 10
    assert {a.kind for a in first.anomalies()} == {AnomalyKind.SPIKE, AnomalyKind.DROP}
    assert all(a.window_start >= START + WARMUP and a.meter != "active_seats" for a in first.anomalies())
    assert simulate(tmp_path / "c", seed=8).anomalies() != first.anomalies()


def test_the_manifest_stays_exactly_what_was_sent(tmp_path):
    manifest = simulate(tmp_path, duplicate_rate=0.02, late_rate=0.02, malformed_rate=0.02, lateness_s=1800)
    hourly, daily, *_ = _replay(tmp_path / "records.tsv", timedelta(seconds=1800))
    assert manifest.usage_totals("hour") == hourly
    assert manifest.usage_totals("day") == daily
    assert len(manifest.anomalies()) == manifest.summary["usage"]["anomalies"] == 10


def test_anomalies_change_only_their_own_cell_hours(tmp_path):
    plain = simulate(tmp_path / "plain", anomalies=0).usage("hour")
    injected_manifest = simulate(tmp_path / "injected")
    injected = {(u.customer_id, u.meter, u.window_start): u for u in injected_manifest.usage("hour")}
    anomalies = {(a.customer_id, a.meter, a.window_start): a for a in injected_manifest.anomalies()}
    assert len(plain) == len(injected), "the same events are sent, only their quantities change"
    for total in plain:
        key = (total.customer_id, total.meter, total.window_start)
        after = injected[key]
        assert after.events == total.events
        anomaly = anomalies.get(key)
        if anomaly is None:
            assert after.value == total.value
        elif anomaly.kind is AnomalyKind.SPIKE:
            assert after.value >= total.value * anomaly.factor - total.events
        else:
            assert after.value <= total.value * anomaly.factor
            assert anomaly.factor or after.value == 0


def test_detector_finds_the_injected_anomalies(tmp_path):
    manifest = simulate(tmp_path, sink=NullSink(), events=300_000, days=25, anomalies=12)
    result = score(manifest, rules(manifest))
    assert result.recall == 1.0, sorted(result.injected - result.detected)
    assert result.precision >= 0.9, sorted(result.detected - result.injected)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"anomalies": -1}, "--anomalies must not be negative"),
        ({"anomalies": 3, "start": None, "days": None, "duration_s": 5}, "--anomalies needs a simulated history"),
    ],
)
def test_impossible_anomaly_configurations(options, message):
    with pytest.raises(ConfigError, match=message):
        SimulationConfig(**{"events": 10, "rate": None, "start": START, "days": 23, **options})


@pytest.mark.parametrize(("options", "message"), [
    ({"days": WARMUP / timedelta(days=1)}, "--anomalies needs more than 21 days of history"),
    ({"events": 1000}, "with 100 events in an average hour"),
])
def test_anomalies_need_three_weeks_of_history_and_busy_cells(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        simulate(tmp_path, **options)
