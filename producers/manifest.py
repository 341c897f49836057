"""The ground-truth manifest of a simulator run, and the reader other components' tests use.

A manifest is a directory:

- ``summary.json``: run parameters and counts (records per topic, unique valid usage events,
  duplicates, late and malformed events);
- ``usage_hourly.parquet`` / ``usage_daily.parquet``: the exact value of every customer x meter x
  window after dedup, aggregated with the meter's aggregation (``value`` is a decimal string),
  with the number of unique valid events;
- ``faults.parquet``: every injected duplicate, late and malformed event;
- ``anomalies.parquet``: every injected usage anomaly (:mod:`producers.anomalies`): customer,
  meter, hour, kind (spike or drop) and the factor its quantities were multiplied by;
- ``record_counts.parquet``: records sent per topic and key (customer id);
- ``invoices.parquet`` / ``payments.parquet``, written by the payer simulator
  (`billing simulate payers`, :mod:`producers.paying`): the engine's invoices the payers saw with
  their final state, and the final state of every payment transaction.

Typical use in a test::

    manifest = Manifest.load(path)
    expected = manifest.usage_totals("hour")   # {(customer, meter, window_start): Decimal}
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from billing.core.contracts import Invoice, PaymentTransaction
from billing.core.errors import ConfigError
from billing.core.meters import Aggregation, Meter
from producers.anomalies import AnomalyKind
from producers.customers import CustomerProfile
from producers.usage import DAY_US, HOUR_US, UsageGenerator

GRANULARITIES = {"hour": (HOUR_US, "usage_hourly.parquet"), "day": (DAY_US, "usage_daily.parquet")}
_TS = pa.timestamp("us", tz="UTC")


def default_manifest_dir(state_dir: Path, seed: int) -> Path:
    """Where `billing simulate --seed SEED` writes its manifest unless told otherwise."""
    return state_dir / "manifests" / f"seed-{seed}"


@dataclass(frozen=True)
class UsageTotal:
    """Expected value of one customer x meter x window."""

    customer_id: str
    meter: str
    window_start: datetime
    value: Decimal
    events: int


@dataclass(frozen=True)
class Anomaly:
    """One injected usage anomaly: the quantities of the customer's meter in the hour were times ``factor``."""

    customer_id: str
    meter: str
    window_start: datetime
    kind: AnomalyKind
    factor: Decimal


@dataclass(frozen=True)
class Fault:
    """One injected fault: kind is duplicate, late or malformed."""

    kind: str
    event_id: str
    customer_id: str
    meter: str | None
    reason: str | None
    event_time: datetime | None
    emitted_at: datetime | None


def _decimal(value: Any, scale: int) -> Decimal:
    return Decimal(value).scaleb(-scale) if scale > 0 else Decimal(value)


def _usage_rows(generator: UsageGenerator, hourly: dict, window_us: int) -> list[tuple]:
    """(customer index, meter index, window start us, value, events) for one granularity."""
    daily_distinct = generator.truth.daily_distinct if window_us != HOUR_US else {}
    merged: dict[tuple, list] = {}
    for (ci, mi, hour), (value, events) in hourly.items():
        key = (ci, mi, hour - hour % window_us)
        slot = merged.get(key)
        if slot is None:
            merged[key] = [value, events]
            continue
        slot[1] += events
        agg = generator.meter_agg[mi]
        if agg is Aggregation.SUM:
            slot[0] += value
        elif agg is Aggregation.MAX:
            slot[0] = max(slot[0], value)
        elif agg is Aggregation.LATEST:
            slot[0] = max(slot[0], value, key=lambda c: c[:2])
    rows = []
    for (ci, mi, start), (value, events) in merged.items():
        agg = generator.meter_agg[mi]
        scale = max(generator.meter_scale[mi], 0) if generator.value_is_quantity[mi] else 0
        if agg is Aggregation.UNIQUE_COUNT:
            distinct = value if window_us == HOUR_US else daily_distinct[(ci, mi, start)]
            exact = Decimal(len(distinct))
        elif agg is Aggregation.COUNT:
            exact = Decimal(events)
        elif agg is Aggregation.LATEST:
            exact = _decimal(value[2], scale)
        else:
            exact = _decimal(value, scale)
        rows.append((ci, mi, start, exact, events))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return rows


def write_manifest(path: Path, summary: dict, customers: list[CustomerProfile], generator: UsageGenerator,
                   record_counts: dict[str, Counter]) -> None:
    """Write the manifest of a finished run to the directory ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    ids = [c.id for c in customers]
    names = generator.meter_names
    hourly = generator.truth.hourly
    for window_us, file_name in GRANULARITIES.values():
        rows = _usage_rows(generator, hourly, window_us)
        table = pa.table({
            "customer_id": pa.array([ids[r[0]] for r in rows], pa.string()),
            "meter": pa.array([names[r[1]] for r in rows], pa.string()),
            "window_start": pa.array([r[2] for r in rows], pa.int64()).cast(_TS),
            "value": pa.array([str(r[3]) for r in rows], pa.string()),
            "events": pa.array([r[4] for r in rows], pa.int64()),
        })
        pq.write_table(table, path / file_name)
    truth = generator.truth
    faults = (
        [("duplicate", eid, ids[ci], names[mi], None, t, None) for eid, ci, mi, t in truth.duplicates]
        + [("late", eid, ids[ci], names[mi], None, t, at) for eid, ci, mi, t, at in truth.late]
        + [("malformed", eid, ids[ci], None, reason, None, None) for eid, ci, reason in truth.malformed]
    )
    pq.write_table(pa.table({
        "kind": pa.array([f[0] for f in faults], pa.string()),
        "event_id": pa.array([f[1] for f in faults], pa.string()),
        "customer_id": pa.array([f[2] for f in faults], pa.string()),
        "meter": pa.array([f[3] for f in faults], pa.string()),
        "reason": pa.array([f[4] for f in faults], pa.string()),
        "event_time": pa.array([f[5] for f in faults], pa.int64()).cast(_TS),
        "emitted_at": pa.array([f[6] for f in faults], pa.int64()).cast(_TS),
    }), path / "faults.parquet")
    pq.write_table(pa.table({
        "customer_id": pa.array([ids[a.customer_index] for a in generator.anomalies], pa.string()),
        "meter": pa.array([names[a.meter_index] for a in generator.anomalies], pa.string()),
        "window_start": pa.array([a.hour_us for a in generator.anomalies], pa.int64()).cast(_TS),
        "kind": pa.array([a.kind.value for a in generator.anomalies], pa.string()),
        "factor": pa.array([str(a.factor) for a in generator.anomalies], pa.string()),
    }), path / "anomalies.parquet")
    counts = [(topic, key, n) for topic, counter in sorted(record_counts.items()) for key, n in sorted(counter.items())]
    pq.write_table(pa.table({
        "topic": pa.array([c[0] for c in counts], pa.string()),
        "key": pa.array([c[1] for c in counts], pa.string()),
        "records": pa.array([c[2] for c in counts], pa.int64()),
    }), path / "record_counts.parquet")
    (path / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


def _write_rows(path: Path, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({"id": pa.array([], pa.string())}), path)


def _merge_rows(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` to ``path``, keeping the rows already there whose ``id`` is not among them."""
    kept = {} if not path.exists() else {r["id"]: r for r in pq.read_table(path).to_pylist() if len(r) > 1}
    kept.update((r["id"], r) for r in rows)
    _write_rows(path, [kept[i] for i in sorted(kept)])


def invoice_fact(invoice: Invoice) -> dict:
    """The manifest row of an invoice as the payers left it."""
    return {"id": invoice.id, "customer_id": invoice.customer_id, "currency": invoice.currency,
            "period_start": invoice.period_start, "period_end": invoice.period_end, "subtotal": str(invoice.subtotal),
            "discount_total": str(invoice.discount_total), "tax": str(invoice.tax), "total": str(invoice.total),
            "status": invoice.status.value, "issued_at": invoice.issued_at, "due_at": invoice.due_at,
            "paid_at": invoice.paid_at}


def payment_facts(events: Iterable[PaymentTransaction]) -> list[dict]:
    """The manifest rows of the payment transactions ``events`` belong to: final state of each."""
    by_tx: dict[str, list[PaymentTransaction]] = defaultdict(list)
    for event in events:
        by_tx[event.id].append(event)
    rows = []
    for tx_id in sorted(by_tx):
        states = sorted(by_tx[tx_id], key=lambda s: s.sequence)
        last = states[-1]
        rows.append({
            "id": tx_id, "invoice_id": last.invoice_id, "customer_id": last.customer_id, "method": last.method.value,
            "amount": str(last.amount), "currency": last.currency, "final_status": last.status.value,
            "attempts": max(s.attempt for s in states), "events": len(states),
            "failure_reasons": ",".join(s.failure_reason.value for s in states if s.failure_reason),
            "first_initiated_at": states[0].initiated_at, "last_event_at": last.event_time,
        })
    return rows


def write_settlements(path: Path, invoices: Iterable[Invoice], payments: Iterable[PaymentTransaction]) -> None:
    """Record what the payers did with ``invoices`` (merged with earlier periods' rows in ``path``)."""
    path.mkdir(parents=True, exist_ok=True)
    _merge_rows(path / "invoices.parquet", [invoice_fact(invoice) for invoice in invoices])
    _merge_rows(path / "payments.parquet", payment_facts(payments))


class Manifest:
    """Read access to a manifest directory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not (self.path / "summary.json").is_file():
            raise ConfigError(f"{self.path} is not a simulator manifest (no summary.json)")
        self.summary: dict = json.loads((self.path / "summary.json").read_text())

    @classmethod
    def load(cls, path: Path | str) -> Manifest:
        """Open the manifest written to ``path``."""
        return cls(Path(path))

    def _rows(self, name: str) -> list[dict]:
        return pq.read_table(self.path / name).to_pylist()

    def usage(self, granularity: str = "hour") -> list[UsageTotal]:
        """Expected totals per customer x meter x window (``hour`` or ``day``)."""
        if granularity not in GRANULARITIES:
            raise ConfigError(f"granularity must be one of {', '.join(GRANULARITIES)}")
        return [UsageTotal(r["customer_id"], r["meter"], r["window_start"], Decimal(r["value"]), r["events"])
                for r in self._rows(GRANULARITIES[granularity][1])]

    def usage_totals(self, granularity: str = "hour") -> dict[tuple[str, str, datetime], Decimal]:
        """``{(customer_id, meter, window_start): value}``."""
        return {(u.customer_id, u.meter, u.window_start): u.value for u in self.usage(granularity)}

    def faults(self, kind: str | None = None) -> list[Fault]:
        """Injected faults, optionally of one kind (duplicate, late, malformed)."""
        return [Fault(**r) for r in self._rows("faults.parquet") if kind is None or r["kind"] == kind]

    def anomalies(self) -> list[Anomaly]:
        """The injected usage anomalies, in time order (none for a manifest written before they existed)."""
        if not (self.path / "anomalies.parquet").exists():
            return []
        return [Anomaly(r["customer_id"], r["meter"], r["window_start"], AnomalyKind(r["kind"]), Decimal(r["factor"]))
                for r in self._rows("anomalies.parquet")]

    def invoices(self) -> list[dict]:
        """The engine's invoices the payers saw (`billing simulate payers`): amounts as decimal strings, final status."""
        return self._settled("invoices.parquet")

    def payments(self) -> list[dict]:
        """Final state per payment transaction of the payers: status, attempts, failure reasons."""
        return self._settled("payments.parquet")

    def _settled(self, name: str) -> list[dict]:
        return [r for r in self._rows(name) if len(r) > 1] if (self.path / name).exists() else []

    def record_counts(self, topic: str) -> dict[str, int]:
        """Records sent to the logical ``topic`` per key."""
        return {r["key"]: r["records"] for r in self._rows("record_counts.parquet") if r["topic"] == topic}

    def meter(self, name: str) -> Meter:
        """The definition of a meter as used by the run."""
        return Meter.model_validate(self.summary["meters"][name])

