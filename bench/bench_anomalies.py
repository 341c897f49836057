"""Usage anomaly detection: precision and recall against the anomalies the simulator injects.

A simulated month after three weeks of history (the detector's minimum) with injected spikes and
drops (:mod:`producers.anomalies`); the detector (:func:`~billing.core.alerts.anomaly.detect`) runs
over the manifest's exact hourly totals, which are what the stream worker writes as hourly rollups
and what `billing alerts scan` reads. Every customer x meter the anomalies can hit is judged, so
every alert outside the injected hours counts as a false positive.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from billing.core.alerts.anomaly import detect
from billing.core.alerts.rules import EXAMPLE_RULES, UsageAnomalyRule, parse_rules
from billing.core.meters import Aggregation, load_meters
from billing.core.pricing import builtin_catalog
from billing.core.pricing.catalog import read_document
from producers.anomalies import WARMUP
from producers.manifest import Manifest
from producers.simulator import SimulationConfig, Simulator

START = datetime(2024, 6, 3, tzinfo=UTC)
MONTH = timedelta(days=30)
CUSTOMERS = 10
EVENTS = 5_000_000
ANOMALIES = 60
SEEDS = (5, 6)
TARGET = 0.9
RULE = {name: value for name, value in next(rule for rule in read_document(EXAMPLE_RULES)["rules"]
                                            if rule["kind"] == "usage_anomaly").items() if name not in ("id", "name", "meter")}
"""The options of the example rules' anomaly rule (billing/core/alerts/rules.yaml): the benchmark measures the example."""


class NullSink:
    """Drops the records: the benchmark needs the manifest only."""

    def send_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Discard ``records``."""

    def close(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class Score:
    """Detected versus injected cell-hours ``(customer, meter, hour)``."""

    injected: frozenset
    detected: frozenset

    @property
    def hits(self) -> int:
        return len(self.injected & self.detected)

    @property
    def precision(self) -> float:
        return self.hits / len(self.detected) if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.hits / len(self.injected) if self.injected else 1.0


def simulate(folder: Path, *, customers: int, events: int, anomalies: int, days: float, seed: int) -> Manifest:
    """Simulate ``days`` of usage with ``anomalies`` injected; its manifest."""
    config = SimulationConfig(customers=customers, events=events, rate=None, start=START, days=days, seed=seed,
                              anomalies=anomalies)
    Simulator(config, load_meters(None), NullSink(), folder).run()
    return Manifest.load(folder)


def rules(manifest: Manifest, **fields) -> dict[str, UsageAnomalyRule]:
    """One anomaly rule per meter summed from the quantity, with ``RULE`` and ``fields``."""
    meters = load_meters(None)
    names = [name for name in manifest.summary["meters"] if manifest.meter(name).aggregation is Aggregation.SUM
             and manifest.meter(name).value_field == "quantity"]
    document = {"rules": [{"id": f"anomaly-{name}", "meter": name, **RULE, **fields} for name in names]}
    return {rule.meter: rule for rule in parse_rules(document, "bench", meters=meters, catalog=builtin_catalog())}


def score(manifest: Manifest, by_meter: dict[str, UsageAnomalyRule]) -> Score:
    """Detect over the manifest's hourly totals after the warm-up; compare with the injected anomalies."""
    start = datetime.fromisoformat(manifest.summary["window"]["start"])
    end = datetime.fromisoformat(manifest.summary["window"]["end"])
    series: dict[tuple[str, str], list[tuple[datetime, Decimal]]] = defaultdict(list)
    for total in manifest.usage("hour"):
        if total.meter in by_meter:
            series[(total.customer_id, total.meter)].append((total.window_start, total.value))
    detected = {(customer, meter, anomaly.hour) for (customer, meter), points in series.items()
                for anomaly in detect(points, by_meter[meter], start=start + WARMUP, end=end)}
    injected = {(a.customer_id, a.meter, a.window_start) for a in manifest.anomalies()}
    return Score(frozenset(injected), frozenset(detected))


def measure(seed: int) -> tuple[Score, Counter[str], Counter[str]]:
    """The score of one simulated month, and the injected and detected anomalies by kind and factor."""
    with tempfile.TemporaryDirectory() as folder:
        manifest = simulate(Path(folder), customers=CUSTOMERS, events=EVENTS, anomalies=ANOMALIES,
                            days=(WARMUP + MONTH).days, seed=seed)
        result = score(manifest, rules(manifest))
        injected = {(a.customer_id, a.meter, a.window_start): f"{a.kind.value} x{format(a.factor.normalize(), 'f')}"
                    for a in manifest.anomalies()}
    return result, Counter(injected.values()), Counter(kind for key, kind in injected.items() if key in result.detected)


def run() -> str:
    rows, kinds, found = [], Counter(), Counter()
    for seed in SEEDS:
        result, injected, detected = measure(seed)
        kinds.update(injected)
        found.update(detected)
        verdict = "met" if min(result.precision, result.recall) >= TARGET else "NOT met"
        rows.append(f"| {seed} | {result.precision:.3f} | {result.recall:.3f} | {len(result.detected)} | {result.hits} "
                    f"| {len(result.injected)} | {verdict} |")
    return "\n".join([
        "## anomalies",
        "",
        f"`billing simulate --anomalies {ANOMALIES}`: {CUSTOMERS} customers, {EVENTS:,} usage events over "
        f"{WARMUP.days} days of history plus a {MONTH.days}-day month, anomalies injected in the month only "
        "(spikes x4-x10, drops to a tenth or to zero, in customer x meters with >= 100 events in an average hour). "
        "The detector runs per customer x meter (the four meters summed from the quantity) over the manifest's exact "
        f"hourly totals (what the worker's hourly rollups hold), the example rule's options "
        f"`{', '.join(f'{name}: {value}' for name, value in RULE.items())}` (billing/core/alerts/rules.yaml); "
        "every alert outside an injected hour is a false positive.",
        "",
        "| seed | precision | recall | alerts | true positives | injected | target >= 0.9 |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| injected (all seeds) | count | detected |",
        "|---|---|---|",
        *(f"| {kind} | {kinds[kind]} | {found[kind]} |" for kind in sorted(kinds)),
    ])
