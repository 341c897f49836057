"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.context import context
from api.metrics import metrics_response
from api.problems import Problem
from billing.warehouse.client import ping

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: Kafka and the warehouse answer",
            responses={503: {"description": "A dependency is down (see `checks`)."}})
async def readyz(request: Request) -> dict:
    ctx = context(request)
    kafka_ok, warehouse_ok = await asyncio.gather(
        asyncio.to_thread(ctx.producer.ping), asyncio.to_thread(ping, ctx.settings.clickhouse_url))
    checks = {"kafka": "ok" if kafka_ok else "unreachable", "warehouse": "ok" if warehouse_ok else "unreachable"}
    if not (kafka_ok and warehouse_ok):
        down = ", ".join(name for name, state in checks.items() if state != "ok")
        raise Problem(503, f"not ready: {down} unreachable", kind="not-ready", checks=checks)
    return {"status": "ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return metrics_response()
