"""Simulated data for the dbt marts and report tests, loaded into a scratch raw database.

The simulator writes its records to a file; every record is parsed with the contracts and mapped
with :mod:`billing.warehouse.facts` (the stream worker's mapping), then inserted. The hourly usage rollups
the stream worker would write are folded here with :class:`billing.core.meters.Accumulator`, and every
window also gets a stale lower version holding a wrong value, so the marts must read the rollups
replay-safely (FINAL) to pass. June is then billed by the engine (`billing invoice run --finalize`,
its own invoices topic) and paid by the payers (`billing simulate payers`), whose payment records
are loaded like the worker loads them; invoices keep every version the engine wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billing.core.contracts import (
    ContractViolation,
    Customer,
    Invoice,
    PaymentTransaction,
    SubscriptionEvent,
    UsageEvent,
    parse_topic,
)
from billing.core.meters import Accumulator, MeterSet, active_meters
from billing.core.pricing.proration import month_period
from billing.invoicing.run import Invoicing
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.settings import Settings
from billing.warehouse import facts
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate
from producers.paying import pay_period
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, read_records

START = datetime(2026, 6, 1, tzinfo=UTC)
CONFIG = SimulationConfig(customers=120, rate=None, events=6000, start=START, days=30, seed=7,
                          duplicate_rate=0.02, late_rate=0.01, malformed_rate=0.01)
BILLED_AT = datetime(2026, 7, 1, 2, tzinfo=UTC)  # the engine bills June
PAID_BY = datetime(2026, 8, 20, tzinfo=UTC)  # payments sent up to here; later ones are still to come
ROLLUP_COLUMNS = facts.COLUMNS["usage_rollups"]


@dataclass
class SimulatedData:
    """The parsed models the simulator sent (the source of every independent expectation)."""

    manifest_dir: Path
    customers: dict[str, Customer] = field(default_factory=dict)
    subscriptions: list[SubscriptionEvent] = field(default_factory=list)
    invoices: dict[str, Invoice] = field(default_factory=dict)  # latest version per id (the engine's)
    payments: list[PaymentTransaction] = field(default_factory=list)
    usage: dict[str, UsageEvent] = field(default_factory=dict)  # unique by event id

    def payments_by_transaction(self) -> dict[str, list[PaymentTransaction]]:
        """Events of each transaction, in sequence order."""
        grouped: dict[str, list[PaymentTransaction]] = defaultdict(list)
        for event in sorted(self.payments, key=lambda p: (p.id, p.sequence)):
            grouped[event.id].append(event)
        return dict(grouped)


def simulate(workdir: Path) -> tuple[Path, Path]:
    """Run the simulator into a file; returns (records file, manifest directory)."""
    output, manifest = workdir / "records.tsv", workdir / "manifest"
    Simulator(CONFIG, active_meters(), FileSink(output), manifest).run()
    return output, manifest


def rollup_rows(events: list[UsageEvent], meters: MeterSet, written_at: datetime) -> list[list]:
    """Hourly rollups as the stream worker writes them: a stale wrong version 1, the true version 2."""
    windows: dict[tuple, list[UsageEvent]] = defaultdict(list)
    for event in events:
        meter = meters[event.type]
        hour = event.time.replace(minute=0, second=0, microsecond=0)
        group_key = facts.usage_row(event, 0, 0, meter)[facts.COLUMNS["usage_events"].index("group_key")]
        windows[(event.subject, event.type, hour, group_key)].append(event)
    rows = []
    for (customer, meter_name, hour, key), window in sorted(windows.items()):
        meter = meters[meter_name]
        acc = Accumulator(meter.aggregation)
        for event in sorted(window, key=lambda e: (e.time, e.id)):
            acc.add(event.measured_value(meters))
        dimensions = {name: window[0].data.dimensions.get(name, "") for name in meter.group_by}
        base = [customer, meter_name, 3600, hour, key, dimensions, meter.aggregation.value]
        rows.append(base + [acc.value() + 1000, len(window) + 1, 1, 1, written_at])
        rows.append(base + [acc.value(), len(window), 2, 1, written_at + timedelta(seconds=1)])
    return rows


def load(settings: Settings, records: Path, manifest: Path) -> SimulatedData:
    """Create the raw schema in ``settings.clickhouse_database``, load the simulated records, bill June
    with the engine and let the payers pay it (their records go through the worker's mapping too)."""
    migrate(settings)
    data = SimulatedData(manifest)
    ch = client(settings, database=settings.clickhouse_database)
    _insert(ch, _parse(data, read_records(records)))
    written_at = max(e.time for e in data.usage.values()) + timedelta(hours=2)
    ch.insert("usage_rollups", rollup_rows(list(data.usage.values()), active_meters(), written_at),
              column_names=ROLLUP_COLUMNS)
    invoicing = Invoicing(settings)
    invoicing.run_period(f"{START:%Y-%m}", now=BILLED_AT, finalize=True)
    payments = records.with_name("payments.tsv")
    june = invoicing.store.invoices(period=month_period(START))
    pay_period(june, CONFIG.seed, PAID_BY, FileSink(payments), invoicing.mark_paid, manifest)
    _insert(ch, _parse(data, read_records(payments)))
    data.invoices = {invoice.id: invoice for invoice in invoicing.store.invoices()}
    return data


def _parse(data: SimulatedData, records) -> facts.Rows:
    """Parse records into ``data`` and return their warehouse rows (malformed and duplicate usage left out)."""
    rows: facts.Rows = {}
    for offset, (topic, _key, value) in enumerate(records):
        try:
            model = parse_topic(topic, value, now=datetime.now(UTC), future_tolerance=300)
        except ContractViolation:
            continue  # malformed on purpose: the stream worker sends these to dead letters
        if isinstance(model, UsageEvent):
            if model.id in data.usage:
                continue  # duplicate on purpose: the stream worker's dedup drops it
            data.usage[model.id] = model
        elif isinstance(model, Customer):
            data.customers[model.id] = model
        elif isinstance(model, SubscriptionEvent):
            data.subscriptions.append(model)
        elif isinstance(model, PaymentTransaction):
            data.payments.append(model)
        facts.merge(rows, facts.rows_for(model, 0, offset))
    return rows


def _insert(ch, rows: facts.Rows) -> None:
    for table, table_rows in rows.items():
        ch.insert(table, table_rows, column_names=facts.COLUMNS[table])


@dataclass
class BuiltMarts:
    """A scratch raw database loaded with simulated data and the marts dbt built from it."""

    settings: Settings
    data: SimulatedData
    build_output: str

    def query(self, sql: str) -> list[tuple]:
        """Rows of ``sql`` run in the marts database."""
        ch = client(self.settings, database=self.settings.clickhouse_marts_database)
        return [tuple(row) for row in ch.query(sql).result_rows]


def billing_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """Run the `billing` CLI with ``settings``' databases and state folder."""
    env = {**os.environ, "BILLING_CLICKHOUSE_URL": settings.clickhouse_url,
           "BILLING_CLICKHOUSE_PASSWORD": settings.clickhouse_password,
           "BILLING_CLICKHOUSE_READONLY_PASSWORD": settings.clickhouse_readonly_password,
           "BILLING_CLICKHOUSE_DATABASE": settings.clickhouse_database,
           "BILLING_CLICKHOUSE_MARTS_DATABASE": settings.clickhouse_marts_database,
           "BILLING_STATE_DIR": str(settings.state_dir), "COLUMNS": "200"}
    command = [str(Path(sys.executable).with_name("billing")), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def copy_database(settings: Settings, source: str, target: str, engines: str = "%") -> None:
    """Create ``target`` with a copy of every table of ``source`` whose engine is LIKE ``engines``."""
    ch = client(settings)
    ch.command(f"CREATE DATABASE IF NOT EXISTS {target}")
    tables = ch.query("SELECT name FROM system.tables WHERE database = {d:String} AND engine LIKE {e:String}",
                      parameters={"d": source, "e": engines}).result_rows
    for (table,) in tables:
        ch.command(f"CREATE TABLE {target}.{table} AS {source}.{table}")
        ch.command(f"INSERT INTO {target}.{table} SELECT * FROM {source}.{table}")


def drop_databases(settings: Settings, *names: str) -> None:
    """Drop scratch databases."""
    ch = client(settings)
    for name in names:
        ch.command(f"DROP DATABASE IF EXISTS {name}")


_BUILT: dict[str, BuiltMarts] = {}


@pytest.fixture(scope="session")
def marts(warehouse, kafka, settings: Settings, tmp_path_factory) -> Iterator[BuiltMarts]:
    """Simulated data in a scratch raw database and the marts built once by `billing dbt build`.

    Test modules import this fixture; the build is shared through a module-level cache."""
    if "session" not in _BUILT:
        workdir = tmp_path_factory.mktemp("marts")
        suffix = uuid.uuid4().hex[:8]
        scoped = settings.model_copy(update={"clickhouse_database": f"marts_raw_{suffix}",
                                             "clickhouse_marts_database": f"marts_{suffix}",
                                             "state_dir": workdir / "state",
                                             "topic_invoices": f"billing.invoices.marts_{suffix}"})
        ensure_topics(admin_client(settings.kafka_bootstrap), [TopicSpec(scoped.topic_invoices, 1, 1)])
        records, manifest = simulate(workdir)
        data = load(scoped, records, manifest)
        result = billing_cli(scoped, "dbt", "build")
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
        _BUILT["session"] = BuiltMarts(scoped, data, result.stdout)
    built = _BUILT["session"]
    yield built
    if not os.environ.get("BILLING_TEST_KEEP"):
        drop_databases(settings, built.settings.clickhouse_database, built.settings.clickhouse_marts_database)
        admin_client(settings.kafka_bootstrap).delete_topics([built.settings.topic_invoices])
