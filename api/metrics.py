"""Prometheus metrics of the API and the ASGI middleware that records them.

With several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (``billing api`` does) so
``/metrics`` aggregates every worker.
"""

from __future__ import annotations

import functools
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("billing_api_requests_total", "HTTP requests by route and status.", ["method", "route", "status"])
LATENCY = Histogram(
    "billing_api_request_seconds", "HTTP request latency by route.", ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
EVENTS = Counter("billing_api_events_total", "Usage events by outcome.", ["outcome"])
DELIVERY = Histogram(
    "billing_api_kafka_delivery_seconds", "Time from produce to confirmed delivery of one request's events.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)


def record(method: str, route: str, status: int, seconds: float) -> None:
    """Count one request and observe its latency."""
    _requests(method, route, status).inc()
    _latency(route).observe(seconds)


@functools.cache
def _requests(method: str, route: str, status: int) -> Counter:
    return REQUESTS.labels(method, route, str(status))


@functools.cache
def _latency(route: str) -> Histogram:
    return LATENCY.labels(route)


@functools.cache
def events(outcome: str) -> Counter:
    """The events counter of ``outcome``."""
    return EVENTS.labels(outcome)


class MetricsMiddleware:
    """Counts requests and observes their latency, labelled by the matched route template."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            record(scope["method"], getattr(scope.get("route"), "path", "unmatched"), status,
                   time.perf_counter() - started)


def metrics_response() -> Response:
    """The exposition of this process, or of all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
