"""The FastAPI application factory (``uvicorn --factory api.app:create_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from api import problems
from api.context import ApiContext
from api.keys import KeyCache, KeyStore, store_path
from api.metrics import MetricsMiddleware
from api.producer import EventProducer
from api.ratelimit import RateLimiter
from api.recent import RecentIds
from api.routes import events, health
from billing.meters import active_meters
from billing.settings import Settings, get_settings

DESCRIPTION = """\
Usage ingest and billing queries of the metering pipeline.

Authenticate with `Authorization: Bearer <key>` (create keys with `billing apikey create`).
Errors are RFC 7807 problem documents (`application/problem+json`).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new API app; its Kafka producer lives for the app's lifespan."""
    settings = settings or get_settings()
    ctx = ApiContext(
        settings=settings,
        keys=KeyCache(KeyStore(store_path(settings))),
        meters=active_meters(),
        limiter=RateLimiter(),
        recent=RecentIds(settings.api_recent_ids),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.producer = EventProducer(settings)
        try:
            yield
        finally:
            ctx.producer.close()

    app = FastAPI(title="Billing API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=ORJSONResponse)
    app.state.ctx = ctx
    problems.install(app)
    app.add_middleware(MetricsMiddleware)
    for module in (events, health):
        app.include_router(module.router)
    return app
