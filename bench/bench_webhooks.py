"""Webhook delivery: throughput and end-to-end latency to a local receiver, alone and next to a failing endpoint.

Starts the local broker and warehouse when they are not running, and uses topics and a database of
the run's own (deleted afterwards). Payment events (the payments topic, each a ``payment.succeeded``
webhook) are delivered by the service running in-process with the default concurrency settings to
a stdlib HTTP server in a thread answering 204: a backlog (throughput), then single events at a low
rate (latency from the broker's acknowledgement to the receiver reading the request). The second
round adds an endpoint that answers 500 to every event (retries at the default backoff, base 2 s):
the healthy endpoint's numbers should barely move.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from billing.core.contracts import PaymentMethod, PaymentStatus, PaymentTransaction
from billing.core.webhooks.endpoints import EndpointSet, parse_endpoints
from billing.kafka.publish import publish
from billing.kafka.topics import admin_client, ensure_topics, topic_specs
from billing.platform import stack
from billing.settings import Settings, get_settings
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate
from billing.webhooks.service import DeliveryService

EVENTS = 3_000
BATCH = 500
SINGLES = 100
SINGLE_RATE = 10
SECRET = "bench-secret-of-sixteen-bytes-or-more"


class Receiver:
    """Records when each webhook id arrived; answers ``status``."""

    def __init__(self, status: int):
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers["content-length"]))
                receiver.arrived.setdefault(self.headers["webhook-id"], time.monotonic())
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


def _payments(count: int) -> list[PaymentTransaction]:
    now = datetime.now(UTC)
    return [PaymentTransaction(event_id=f"pe-{uuid.uuid4().hex}", id=f"tx-{i}", invoice_id=f"inv-{i}", customer_id=f"cus-{i % 50}",
                               method=PaymentMethod.CARD, amount=Decimal("49.00"), currency="EUR", status=PaymentStatus.SUCCEEDED,
                               attempt=1, sequence=1, initiated_at=now, completed_at=now, event_time=now) for i in range(count)]


def _round(settings: Settings, endpoints: EndpointSet, good: Receiver) -> tuple[float, list[float]]:
    """(deliveries/s to the healthy endpoint draining a backlog, latencies in ms of single events after it)."""
    backlog = _payments(EVENTS)
    for i in range(0, EVENTS, BATCH):
        publish(settings, "payments", [(p.customer_id, p) for p in backlog[i:i + BATCH]], "payment")
    stop = threading.Event()
    thread = threading.Thread(target=DeliveryService(settings, endpoints).run, args=(stop,), daemon=True)
    thread.start()
    try:
        _wait(good, [p.event_id for p in backlog])
        arrivals = [good.arrived[p.event_id] for p in backlog]
        rate = (EVENTS - 1) / (max(arrivals) - min(arrivals))
        sent = {}
        for single in _payments(SINGLES):
            publish(settings, "payments", [(single.customer_id, single)], "payment")
            sent[single.event_id] = time.monotonic()
            time.sleep(1 / SINGLE_RATE)
        _wait(good, list(sent))
    finally:
        stop.set()
        thread.join(60)
    return rate, [(good.arrived[event_id] - at) * 1000 for event_id, at in sent.items()]


def _wait(receiver: Receiver, ids: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not all(event_id in receiver.arrived for event_id in ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sum(i in receiver.arrived for i in ids)} of {len(ids)} webhooks arrived")
        time.sleep(0.02)


def _endpoints(**urls: str) -> EndpointSet:
    found = EndpointSet()
    found.add(parse_endpoints({"endpoints": [{"id": name, "url": url, "secret": SECRET, "types": ["payment.succeeded"]}
                                             for name, url in urls.items()]}, "bench"), "bench")
    return found


def run() -> str:
    base = get_settings()
    services = [stack.service(base, name) for name in ("warehouse", "kafka")]
    started = [service.start() for service in services]
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"clickhouse_database": f"bench_webhooks_{tag}", "webhook_group_id": f"bench-webhooks-{tag}",
                                       **{f"topic_{name}": f"bench-webhooks-{tag}.{name}" for name in base.topics()}})
    migrate(settings)
    admin = admin_client(settings.kafka_bootstrap)
    ensure_topics(admin, list(topic_specs(settings).values()))
    results = []
    try:
        for label, failing in (("alone", False), ("next to an endpoint answering 500", True)):
            good, bad = Receiver(204), Receiver(500)
            urls = {"good": good.url, **({"bad": bad.url} if failing else {})}
            own = settings.model_copy(update={"webhook_group_id": f"{settings.webhook_group_id}-{len(results)}"})
            rate, latencies = _round(own, _endpoints(**urls), good)
            cuts = statistics.quantiles(latencies, n=100)
            results.append((label, rate, cuts[49], cuts[94], max(latencies), len(bad.arrived)))
            for receiver in (good, bad):
                receiver.server.shutdown()
    finally:
        for deleted in admin.delete_topics(list(settings.topics().values())).values():
            deleted.result()
        client(base).command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
        for service, was_started in zip(services, started, strict=True):
            if was_started:
                service.stop()
    lines = ["## webhooks (`bench/bench_webhooks.py`)", "",
             f"`DeliveryService` with the default concurrency ({base.webhook_concurrency} senders, {base.webhook_per_endpoint} per "
             "endpoint; every attempt logged in the warehouse before its record's offset is committed) POSTing "
             "`payment.succeeded` events to a stdlib HTTP server answering 204 on loopback (in the same process: the receivers "
             "share its GIL). Throughput: a backlog of "
             f"{EVENTS:,} events published before the service starts, first to last arrival. Latency: then {SINGLES} single "
             f"events at {SINGLE_RATE}/s, from the broker's acknowledgement to the receiver reading the request. The second "
             "round adds an endpoint subscribed to the same events that answers 500 to every POST (retried at the default "
             "backoff).", "",
             "| healthy endpoint | backlog deliveries/s | p50 ms | p95 ms | max ms | POSTs to the failing endpoint |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {label} | {rate:,.0f} | {p50:,.0f} | {p95:,.0f} | {worst:,.0f} | {failed:,} |"
              for label, rate, p50, p95, worst, failed in results]
    return "\n".join(lines) + "\n"
