"""Worker scaling on one usage topic of 12 partitions: 1, 2 and 4 `billing worker` processes in one
consumer group drain the same pre-produced history (bench_streams' throughput run, its own topics and
database per count). Broker, warehouse and workers share the machine; 4 workers exceed its cores on
purpose (docs/scaling.md says what happens)."""

from __future__ import annotations

import os

import psutil

from bench.bench_streams import clean, local_stack, throughput
from billing.settings import default_state_dir

STATE = default_state_dir() / "bench-workers"
PARTITIONS = 12
COUNTS = (1, 2, 4)


def run() -> str:
    clean(STATE)
    base, services = local_stack(STATE, PARTITIONS)
    load = os.getloadavg()[0]
    try:
        runs = {count: throughput(base, workers=count) for count in COUNTS}
    finally:
        for service in reversed(services):
            service.stop()
        clean(STATE)
    one = runs[1]["sustained"]
    rows = [f"| {count} | {r['sustained']:,.0f} | {r['sustained'] / one:.2f} | {r['sustained'] / count:,.0f} | "
            f"{' / '.join(f'{share:.0%}' for share in r['worker_shares'])} |"
            for count, r in runs.items()]
    return "\n".join([
        "## workers (`bench/bench_workers.py`)",
        "",
        f"{runs[1]['events']:,} usage events (1% duplicates) pre-produced into {PARTITIONS} partitions, drained by 1, 2 "
        f"and 4 worker processes in one consumer group; broker and warehouse on the same {psutil.cpu_count()} cores "
        f"(1-minute load average {load:.1f} at start). Throughput from 10% to 90% of the records consumed.",
        "",
        "| workers | events/s | x one worker | events/s per worker | share of the records per worker |",
        "|---:|---:|---:|---:|---|",
        *rows,
    ])
