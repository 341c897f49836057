"""The HTTP API: single-event latency at a fixed request rate, and batch ingest throughput.

Starts the local broker when it is not running and a usage topic of the run's own (deleted
afterwards, so the benchmark's made-up customers never reach the local pipeline's warehouse), then
``billing api`` (uvicorn, httptools, uvloop)
on a free loopback port, and drives it with an open-loop asyncio load generator over keep-alive
connections: requests are scheduled at a constant rate and latency is measured from the scheduled
send time, so a stalled server cannot hide its queueing (no coordinated omission). Every event has
a unique id, so nothing is short-circuited as a retry and every event is confirmed by Kafka
(acks=all, idempotent producer) before its request is answered.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import orjson
import psutil

from api.keys import KeyStore, store_path
from billing.kafka.topics import admin_client, ensure_topics, topic_specs
from billing.platform import stack
from billing.settings import get_settings

SINGLE_RATE = 2_000
SINGLE_SECONDS = 10
SINGLE_CONNECTIONS = 64
BATCH_SIZE = 500
BATCH_SECONDS = 10
BATCH_CONCURRENCY = 8
ROUNDS = 3
CUSTOMERS = 200
PLACEHOLDER = b"ID_PLACEHOLDER"
NATIVE, OPENMETER = "/v1/events", "/api/v1/events"
PATHS = ((NATIVE, 1), (NATIVE, 2), (OPENMETER, 1))
"""Ingest paths and API workers measured: the native endpoint with one and two workers, the OpenMeter-compatible one
(all or nothing, 204) with one."""
SUCCESS = (202, 204)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _event_template(index: int, now: str) -> dict:
    return {"specversion": "1.0", "id": f"{PLACEHOLDER.decode()}-{index}", "source": "bench", "type": "api_calls",
            "subject": f"cust-{index % CUSTOMERS:04d}", "time": now,
            "data": {"quantity": "1", "region": "eu", "endpoint": "/v1/search"}}


class Requests:
    """Pre-rendered HTTP requests; each call gives one with fresh event ids."""

    def __init__(self, port: int, token: str, documents: object, path: str):
        self.template = orjson.dumps(documents)
        self.head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: ").encode()
        self.counter = 0

    def next(self) -> bytes:
        self.counter += 1
        body = self.template.replace(PLACEHOLDER, f"r{self.counter:09d}".encode())
        return self.head + str(len(body)).encode() + b"\r\n\r\n" + body


class Connection:
    """One keep-alive HTTP/1.1 connection that reconnects when the server asks to close it."""

    def __init__(self, port: int):
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes) -> int:
        """Send ``request`` and read the response; returns its status."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line.startswith(b"connection:") and b"close" in line:
                close = True
        await reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def _single_events(port: int, token: str, now: str, path: str) -> tuple[list[float], dict[int, int]]:
    requests = Requests(port, token, _event_template(0, now), path)
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        conn = Connection(port)
        while (scheduled := await queue.get()) is not None:
            status = await conn.exchange(requests.next())
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    workers = [asyncio.create_task(connection()) for _ in range(SINGLE_CONNECTIONS)]
    start = time.perf_counter() + 0.1
    total = SINGLE_RATE * SINGLE_SECONDS
    for n in range(total):
        scheduled = start + n / SINGLE_RATE
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(scheduled)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, statuses


async def _batches(port: int, token: str, now: str, path: str) -> tuple[int, float, dict[int, int]]:
    requests = Requests(port, token, [_event_template(i, now) for i in range(BATCH_SIZE)], path)
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + BATCH_SECONDS

    async def connection() -> int:
        conn = Connection(port)
        sent = 0
        while time.perf_counter() < deadline:
            status = await conn.exchange(requests.next())
            statuses[status] = statuses.get(status, 0) + 1
            sent += BATCH_SIZE if status in SUCCESS else 0
        conn.close()
        return sent

    started = time.perf_counter()
    events = sum(await asyncio.gather(*(connection() for _ in range(BATCH_CONCURRENCY))))
    return events, time.perf_counter() - started, statuses


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"billing api exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("billing api did not become ready")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time used so far by the API process and its workers."""
    root = psutil.Process(proc.pid)
    return sum(sum(p.cpu_times()[:2]) for p in (root, *root.children(recursive=True)))


def _measure(workers: int, token: str, topic: str, path: str = NATIVE) -> dict:
    port = _free_port()
    env = {**os.environ, "BILLING_API_RATE_PER_S": "1000000", "BILLING_API_RATE_BURST": "1000000",
           "BILLING_TOPIC_USAGE": topic}
    proc = subprocess.Popen([sys.executable, "-m", "billing", "api", "--port", str(port), "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        cpu_start = _cpu_seconds(proc)
        latencies, single_statuses = asyncio.run(_single_events(port, token, now, path))
        cpu_single = _cpu_seconds(proc)
        events, seconds, batch_statuses = asyncio.run(_batches(port, token, now, path))
        cpu_batch = _cpu_seconds(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "path": path, "workers": workers, "p50": _percentile(latencies, 0.50), "p95": _percentile(latencies, 0.95),
        "p99": _percentile(latencies, 0.99), "single_statuses": single_statuses,
        "events_per_s": events / seconds, "batch_statuses": batch_statuses,
        "single_cpu_us": (cpu_single - cpu_start) / len(latencies) * 1e6,
        "batch_cpu_us": (cpu_batch - cpu_single) / max(events, 1) * 1e6,
    }


def run() -> str:
    settings = get_settings()
    kafka = stack.service(settings, "kafka")
    started = kafka.start()
    own = settings.model_copy(update={"topic_usage": f"bench-api-{time.time_ns()}.usage"})
    admin = admin_client(own.kafka_bootstrap)
    ensure_topics(admin, [topic_specs(own)["usage"]])
    store = KeyStore(store_path(settings))
    key, token = store.create([], admin=True, label="bench")
    try:
        if started:
            _measure(1, token, own.topic_usage)
        load_before = os.getloadavg()[0]
        results = [_measure(workers, token, own.topic_usage, path) for path, workers in PATHS for _ in range(ROUNDS)]
        load_after = os.getloadavg()[0]
    finally:
        store.revoke(key.key_id)
        for deleted in admin.delete_topics([own.topic_usage]).values():
            deleted.result()
        if started:
            kafka.stop()
    rows = "\n".join(
        f"| `{r['path']}` | {r['workers']} | {r['p50'] * 1000:.1f} | {r['p95'] * 1000:.1f} | {r['p99'] * 1000:.1f} | "
        f"{r['single_cpu_us']:.0f} | {r['single_statuses']} | {r['events_per_s']:,.0f} | {r['batch_cpu_us']:.1f} | "
        f"{r['batch_statuses']} |"
        for r in results)
    return f"""## HTTP API (`bench/bench_api.py`)

Single events: {SINGLE_RATE:,} req/s for {SINGLE_SECONDS}s, open loop over {SINGLE_CONNECTIONS} keep-alive
connections (latency from the scheduled send time). Batches: {BATCH_SIZE} events per request,
{BATCH_CONCURRENCY} connections back to back for {BATCH_SECONDS}s. Every event has a unique id and is confirmed by the
local single-node broker (acks=all, idempotent producer) before the API answers. Load generator, API and
broker share the machine's cores. Targets: p95 < 25 ms at 2,000 req/s; >= 50,000 events/s.
A broker the benchmark starts itself first gets one unrecorded round: right after its start (JVM
warm-up) the first round's p95 was 410-510 ms. Two workers ask a client to reconnect every
20 requests (`BILLING_API_REQUESTS_PER_CONNECTION`), so the 8 batch connections spread over both.
`/api/v1/events` is the OpenMeter-compatible ingest (the same steps, all or nothing, 204 without a body).
Each configuration runs {ROUNDS} rounds (a fresh API each): on two cores shared by the load generator, the API
and the broker the rounds differ a lot, and every round is shown.
Load average (1 min) before/after the run: {load_before:.1f} / {load_after:.1f} — anything above the core
count means other work competed for the CPU and the numbers understate the API. The API's CPU time
per request (single) and per event (batch) is the load-independent cost: 2,000 req/s need
2,000 x that per second of the cores left by the load generator and the broker.

| path | API workers | single p50 ms | single p95 ms | single p99 ms | API CPU µs/request | single statuses | \
batch events/s | API CPU µs/event | batch statuses |
|---|---|---|---|---|---|---|---|---|---|
{rows}
"""
