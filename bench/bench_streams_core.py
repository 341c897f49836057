"""The stream worker's processing core without Kafka or the warehouse: CPU microseconds per usage
event of validation, dedup, minute and hour windows, closing, the rows and their encoding.

The simulator's history of ``bench_streams`` (seed 2, 200 customers, 1% duplicates) is generated
into a file, spread over 12 partitions by key and fed to :class:`~streams.pipeline.UsageProcessor`
in batches of the worker's size over in-memory stores; every batch's rows are encoded as the sink
sends them. Process CPU time over the events is far less sensitive to other load than a rate, but
on a busy machine it still grows (shared caches, frequency): compare runs taken side by side.
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from billing.core.meters import active_meters
from billing.settings import Settings
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import FileSink, read_records
from streams.pipeline import DictStore, Output, Record, UsageProcessor, WindowConfig
from streams.sink import encode

EVENTS = 300_000
PARTITIONS = 12
SEED = 2
CUSTOMERS = 200
START = datetime(2026, 12, 1, tzinfo=UTC)


def batches(events: int, size: int) -> list[dict[int, list[Record]]]:
    """The simulated usage records as the worker's batches: each takes an equal share of ``size``
    from every partition, in offset order."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "usage.tsv"
        config = SimulationConfig(customers=CUSTOMERS, rate=None, events=events, start=START, days=2, seed=SEED,
                                  duplicate_rate=0.01)
        Simulator(config, active_meters(), FileSink(path)).run()
        parts: dict[int, list[Record]] = {}
        for topic, key, value in read_records(path):
            if topic == "usage":
                partition = zlib.crc32(key) % PARTITIONS
                records = parts.setdefault(partition, [])
                records.append(Record("usage", "usage", partition, len(records), key, value, 0))
    share = max(1, size // PARTITIONS)
    longest = max(len(records) for records in parts.values())
    return [{p: records[i:i + share] for p, records in parts.items() if records[i:i + share]}
            for i in range(0, longest, share)]


def measure(work: list[dict[int, list[Record]]]) -> dict:
    """Process ``work`` once; CPU us per record, rows and windows."""
    now = (START + timedelta(days=3)).timestamp()
    stores = DictStore(), DictStore(), DictStore()
    processor = UsageProcessor(active_meters(), WindowConfig(), *stores, clock=lambda: now)
    records = rows = 0
    began = time.process_time()
    for batch in work:
        out = Output()
        for part in batch.values():
            processor.process(part, out)
            records += len(part)
        out.finish(datetime.now(UTC))
        for table_rows in out.rows.values():
            encode(table_rows)
            rows += len(table_rows)
    cpu = time.process_time() - began
    return {"cpu_us": cpu / records * 1e6, "records": records, "rows": rows, "windows": len(stores[1])}


def run() -> str:
    events = int(os.environ.get("BENCH_STREAMS_CORE_EVENTS", EVENTS))
    work = batches(events, Settings().worker_batch_size)
    load = os.getloadavg()[0]
    runs = [measure(work) for _ in range(3)]
    best = min(runs, key=lambda r: r["cpu_us"])
    return "\n".join([
        "## streams core (`bench/bench_streams_core.py`)",
        "",
        f"The worker's processing core alone (validation, dedup, windows, closing, rows and their encoding; no Kafka, "
        f"no RocksDB, no warehouse) on {best['records']:,} simulated usage records (seed {SEED}, {CUSTOMERS} customers, "
        f"1% duplicates, {PARTITIONS} partitions), in the worker's batches: {best['rows']:,} rows, "
        f"{best['windows']:,} windows. Three runs, 1-minute load average {load:.1f} at start (2 cores: above 1, other "
        "work competed and CPU time per record grows with it).",
        "",
        "| run | CPU us/record |",
        "|---|---|",
        *(f"| {n} | {r['cpu_us']:.1f} |" for n, r in enumerate(runs, 1)),
    ])
