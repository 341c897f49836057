"""The local ClickHouse endpoint: insert throughput and query latency over HTTP vs chdb in-process.

The same client library (clickhouse-connect) runs the same workload against two targets: the
endpoint (``python -m billing.chdb_server.server``, HTTP with lz4) and chdb embedded in the
benchmark process (clickhouse-connect's ``interface="chdb"`` backend). The two are measured in
alternation (batch by batch, query by query), so load from other programs on the machine hits
both alike. The ratio is the cost of the HTTP layer: serving, compression, the process hop.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect

from billing.warehouse.client import ping

ROWS = 1_000_000
BATCH = 100_000
QUERY_RUNS = 40
PARALLEL = 4
PARALLEL_ROUNDS = 3
PARALLEL_RUNS = 5
CUSTOMERS = 1000
METERS = ("api_calls", "storage_gb", "egress_gb", "seats")
COLUMNS = ["event_id", "customer", "meter", "quantity", "ts"]
DDL = (
    "CREATE TABLE usage (event_id UInt64, customer String, meter LowCardinality(String), quantity Float64, "
    "ts DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (customer, meter, ts)"
)
GROUP_BY = (
    "SELECT customer, meter, sum(quantity) AS q, count() AS n FROM usage "
    "GROUP BY customer, meter ORDER BY customer, meter"
)
SIDES = ("endpoint", "in-process")


def _batches() -> list[list[list]]:
    """Column-oriented insert batches (the same data for both targets)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    customers = [f"cust-{i:04d}" for i in range(CUSTOMERS)]
    out = []
    for first in range(0, ROWS, BATCH):
        ids = list(range(first, first + BATCH))
        out.append([
            ids,
            [customers[i % CUSTOMERS] for i in ids],
            [METERS[i % len(METERS)] for i in ids],
            [float(i % 100) for i in ids],
            [start + timedelta(seconds=i) for i in ids],
        ])
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _endpoint(data_dir: Path) -> Iterator[Callable[[], object]]:
    """Run the endpoint on a private data dir and port; yields a client factory."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "billing.chdb_server.server", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ping(f"http://127.0.0.1:{port}"):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the warehouse endpoint did not start")
            time.sleep(0.2)
        yield lambda: clickhouse_connect.get_client(host="127.0.0.1", port=port, compress="lz4")
    finally:
        server.terminate()
        server.wait(timeout=60)


def _timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def _parallel_qps(connect: Callable[[], object]) -> float:
    clients = [connect() for _ in range(PARALLEL)]

    def worker(client) -> None:
        for _ in range(PARALLEL_RUNS):
            client.query(GROUP_BY)

    with ThreadPoolExecutor(PARALLEL) as pool:
        elapsed = _timed(lambda: list(pool.map(worker, clients)))
    for client in clients:
        client.close()
    return PARALLEL * PARALLEL_RUNS / elapsed


def _measure(connects: dict[str, Callable[[], object]], batches: list[list[list]]) -> dict[str, dict[str, float]]:
    clients = {side: connect() for side, connect in connects.items()}
    for client in clients.values():
        client.command("DROP TABLE IF EXISTS usage")
        client.command(DDL)
        client.insert("usage", [column[:1000] for column in batches[0]], column_names=COLUMNS, column_oriented=True)
        client.command("TRUNCATE TABLE usage")  # the warm-up above pays the client's one-time imports
    insert_s = dict.fromkeys(SIDES, 0.0)
    for columns in batches:
        for side, client in clients.items():
            insert_s[side] += _timed(
                lambda client=client, columns=columns: client.insert("usage", columns, column_names=COLUMNS, column_oriented=True))
    samples: dict[str, dict[str, list[float]]] = {side: {"group": [], "point": []} for side in SIDES}
    for run in range(QUERY_RUNS + 3):
        for side, client in clients.items():
            group_ms = _timed(lambda client=client: client.query(GROUP_BY)) * 1000
            point_ms = _timed(lambda client=client: client.query("SELECT 1")) * 1000
            if run >= 3:
                samples[side]["group"].append(group_ms)
                samples[side]["point"].append(point_ms)
    parallel = {side: [] for side in SIDES}
    for _ in range(PARALLEL_ROUNDS):
        for side, connect in connects.items():
            parallel[side].append(_parallel_qps(connect))
    results = {}
    for side, client in clients.items():
        assert client.command("SELECT count() FROM usage") == ROWS
        client.close()
        group, point = sorted(samples[side]["group"]), sorted(samples[side]["point"])
        results[side] = {
            "insert_rows_s": ROWS / insert_s[side],
            "group_p50": statistics.median(group),
            "group_p95": group[int(len(group) * 0.95) - 1],
            "point_p50": statistics.median(point),
            "point_p95": point[int(len(point) * 0.95) - 1],
            "parallel_qps": statistics.median(parallel[side]),
        }
    return results


def run() -> str:
    """Measure both targets and return the Markdown section."""
    batches = _batches()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp, _endpoint(Path(tmp) / "endpoint") as http:
        local_dir = str(Path(tmp) / "in-process")
        results = _measure({
            "endpoint": http,
            "in-process": lambda: clickhouse_connect.get_client(interface="chdb", path=local_dir),
        }, batches)
    rows = [
        ("insert rows/s (clickhouse-connect, 10 x 100k rows)", "insert_rows_s", "{:,.0f}", lambda h, i: i / h),
        ("GROUP BY 4k groups over 1M rows, p50 ms", "group_p50", "{:.1f}", lambda h, i: h / i),
        ("GROUP BY 4k groups over 1M rows, p95 ms", "group_p95", "{:.1f}", lambda h, i: h / i),
        ("`SELECT 1` round trip, p50 ms", "point_p50", "{:.2f}", lambda h, i: h / i),
        ("`SELECT 1` round trip, p95 ms", "point_p95", "{:.2f}", lambda h, i: h / i),
        (f"GROUP BY, {PARALLEL} clients in parallel, queries/s", "parallel_qps", "{:.1f}", lambda h, i: i / h),
    ]
    lines = [
        "## warehouse: ClickHouse HTTP endpoint vs chdb in-process",
        "",
        f"Same client (clickhouse-connect) and data: {ROWS:,} usage rows inserted in batches of {BATCH:,}, then "
        f"{QUERY_RUNS} timed runs per query ({PARALLEL_ROUNDS} rounds for the parallel one, median). *Endpoint* = "
        "`python -m billing.chdb_server.server` over HTTP with lz4; *in-process* = clickhouse-connect's chdb backend "
        "in the benchmark process. The two run in alternation, so other load on the machine hits both alike "
        f"(1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after). Overhead = how many "
        "times slower the endpoint is (1.00 = no HTTP cost).",
        "",
        "| measure | endpoint (HTTP) | in-process chdb | HTTP overhead |",
        "|---|---:|---:|---:|",
    ]
    http, local = results["endpoint"], results["in-process"]
    for label, key, fmt, overhead in rows:
        lines.append(f"| {label} | {fmt.format(http[key])} | {fmt.format(local[key])} | "
                     f"{overhead(http[key], local[key]):.2f}x |")
    return "\n".join(lines) + "\n"
