"""The local ClickHouse endpoint: insert throughput and query latency over HTTP vs chdb in-process.

The same client library (clickhouse-connect) runs the same workload twice: through the endpoint
(``python -m billing.warehouse.server``, HTTP with lz4) and against chdb embedded in the benchmark
process (clickhouse-connect's ``interface="chdb"`` backend). The ratio is the cost of the HTTP
layer: serving, compression, the extra process hop.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import clickhouse_connect

from billing.platform.warehouse import ping
from billing.settings import REPO_ROOT

ROWS = 1_000_000
BATCH = 100_000
QUERY_RUNS = 40
PARALLEL = 4
PARALLEL_RUNS = 10
CUSTOMERS = 1000
METERS = ("api_calls", "storage_gb", "egress_gb", "seats")
DDL = (
    "CREATE TABLE usage (event_id UInt64, customer String, meter LowCardinality(String), quantity Float64, "
    "ts DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (customer, meter, ts)"
)
GROUP_BY = (
    "SELECT customer, meter, sum(quantity) AS q, count() AS n FROM usage "
    "GROUP BY customer, meter ORDER BY customer, meter"
)


def _batches() -> list[list[list]]:
    """Column-oriented insert batches (the same data for both runs)."""
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
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


def _measure(client, batches: list[list[list]], connect: Callable[[], object]) -> dict[str, float]:
    client.command("DROP TABLE IF EXISTS usage")
    client.command(DDL)
    names = ["event_id", "customer", "meter", "quantity", "ts"]
    client.insert("usage", [column[:1000] for column in batches[0]], column_names=names, column_oriented=True)
    client.command("TRUNCATE TABLE usage")  # the warm-up above pays the client's one-time imports
    began = time.perf_counter()
    for columns in batches:
        client.insert("usage", columns, column_names=names, column_oriented=True)
    insert_s = time.perf_counter() - began
    assert client.command("SELECT count() FROM usage") == ROWS

    def latencies(run: Callable[[], object]) -> list[float]:
        for _ in range(3):
            run()
        samples = []
        for _ in range(QUERY_RUNS):
            began = time.perf_counter()
            run()
            samples.append((time.perf_counter() - began) * 1000)
        return sorted(samples)

    group_by = latencies(lambda: client.query(GROUP_BY).result_rows)
    point = latencies(lambda: client.query("SELECT 1").result_rows)
    clients = [connect() for _ in range(PARALLEL)]

    def worker(own) -> None:
        for _ in range(PARALLEL_RUNS):
            own.query(GROUP_BY).result_rows

    began = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(worker, clients))
    parallel_qps = PARALLEL * PARALLEL_RUNS / (time.perf_counter() - began)
    for own in clients:
        own.close()
    return {
        "parallel_qps": parallel_qps,
        "insert_rows_s": ROWS / insert_s,
        "group_p50": statistics.median(group_by),
        "group_p95": group_by[int(len(group_by) * 0.95) - 1],
        "point_p50": statistics.median(point),
        "point_p95": point[int(len(point) * 0.95) - 1],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _endpoint(data_dir: Path, batches: list[list[list]]) -> dict[str, float]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "billing.warehouse.server", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ping(f"http://127.0.0.1:{port}"):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the warehouse endpoint did not start")
            time.sleep(0.2)
        def connect():
            return clickhouse_connect.get_client(host="127.0.0.1", port=port, compress="lz4")

        client = connect()
        try:
            return _measure(client, batches, connect)
        finally:
            client.close()
    finally:
        server.terminate()
        server.wait(timeout=60)


def _in_process(data_dir: Path, batches: list[list[list]]) -> dict[str, float]:
    def connect():
        return clickhouse_connect.get_client(interface="chdb", path=str(data_dir))

    client = connect()
    try:
        return _measure(client, batches, connect)
    finally:
        client.close()


def run() -> str:
    """Run both sides and return the Markdown section."""
    batches = _batches()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        http = _endpoint(Path(tmp) / "endpoint", batches)
        local = _in_process(Path(tmp) / "inprocess", batches)
    rows = [
        ("insert rows/s (clickhouse-connect, 10 x 100k rows)", "insert_rows_s", "{:,.0f}", lambda h, i: i / h),
        ("GROUP BY 4k groups over 1M rows, p50 ms", "group_p50", "{:.1f}", lambda h, i: h / i),
        ("GROUP BY 4k groups over 1M rows, p95 ms", "group_p95", "{:.1f}", lambda h, i: h / i),
        ("`SELECT 1` round trip, p50 ms", "point_p50", "{:.2f}", lambda h, i: h / i),
        ("`SELECT 1` round trip, p95 ms", "point_p95", "{:.2f}", lambda h, i: h / i),
        (f"GROUP BY with {PARALLEL} clients in parallel, queries/s", "parallel_qps", "{:.1f}", lambda h, i: i / h),
    ]
    lines = [
        "## warehouse: ClickHouse HTTP endpoint vs chdb in-process",
        "",
        f"Same client (clickhouse-connect) and data: {ROWS:,} usage rows inserted in batches of {BATCH:,}, then "
        f"{QUERY_RUNS} timed runs per query. *Endpoint* = `python -m billing.warehouse.server` over HTTP with lz4; "
        "*in-process* = clickhouse-connect's chdb backend in the benchmark process. Overhead = how many times "
        "slower the endpoint is (1.00 = no HTTP cost). Both sides share the machine with whatever else runs: "
        f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
        "",
        "| measure | endpoint (HTTP) | in-process chdb | HTTP overhead |",
        "|---|---:|---:|---:|",
    ]
    for label, key, fmt, overhead in rows:
        lines.append(f"| {label} | {fmt.format(http[key])} | {fmt.format(local[key])} | "
                     f"{overhead(http[key], local[key]):.2f}x |")
    return "\n".join(lines) + "\n"
