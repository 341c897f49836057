"""The FastAPI application factory (``uvicorn --factory api.app:create_app``; `billing api` serves :func:`serve_app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api import problems
from api.alert_rules import alert_rules
from api.connections import ConnectionBudget
from api.context import ApiContext
from api.direct import BillingApi
from api.keys import KeyCache, KeyStore, store_path
from api.metrics import MetricsMiddleware
from api.previews import Previews
from api.producer import EventProducer
from api.ratelimit import RateLimiter
from api.readonly_client import Warehouse
from api.recent import RecentIds
from api.reports import report_jobs
from api.routes import alert_rules as alert_rule_routes
from api.routes import customers, events, health, invoices, openmeter, reports, subscriptions, usage
from billing.core.meters import active_meters
from billing.core.pricing.catalog import builtin_catalog, load_catalog
from billing.gc_tuning import tune_gc
from billing.settings import Settings, get_settings

DESCRIPTION = """\
Usage ingest, billing queries and customer management of the metering pipeline.

Authenticate with `Authorization: Bearer <key>` (create keys with `billing apikey create`). Admin keys
reach everything; a tenant key reads only the customers it was created for (403 otherwise).
Errors are RFC 7807 problem documents (`application/problem+json`).

Reads come from the warehouse (503 while it is down). Writes of customers and subscriptions are
event-sourced: the API publishes the event to Kafka (acks=all) and answers 202 with it; reads show
it once the stream worker has stored it.
"""


def create_app(settings: Settings | None = None) -> BillingApi:
    """A new API app; its Kafka producer lives for the app's lifespan."""
    settings = settings or get_settings()
    meters = active_meters()
    catalog = load_catalog([settings.plans_dir]) if settings.plans_dir else builtin_catalog()
    ctx = ApiContext(
        settings=settings,
        keys=KeyCache(KeyStore(store_path(settings))),
        meters=meters,
        limiter=RateLimiter(),
        recent=RecentIds(settings.api_recent_ids),
        warehouse=Warehouse(settings),
        previews=Previews(settings),
        catalog=catalog,
        connections=ConnectionBudget(settings.api_requests_per_connection if settings.api_workers > 1 else 0),
        report_jobs=report_jobs(settings),
        alert_rules=alert_rules(settings, meters, catalog),
    )

    @asynccontextmanager
    async def lifespan(_app: BillingApi) -> AsyncIterator[None]:
        ctx.producer = EventProducer(settings)
        try:
            yield
        finally:
            ctx.producer.close()
            ctx.warehouse.close()
            ctx.report_jobs.close()
            ctx.alert_rules.close()

    app = BillingApi(title="Billing API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = ctx
    problems.install(app)
    app.add_middleware(MetricsMiddleware)
    for module in (events, usage, invoices, customers, subscriptions, reports, alert_rule_routes, openmeter, health):
        app.include_router(module.router)
    return app


def serve_app() -> BillingApi:
    """The app of an API server process (`billing api`): :func:`create_app` with the process's garbage
    collector tuned for throughput (:func:`~billing.gc_tuning.tune_gc`)."""
    app = create_app()
    tune_gc()
    return app
