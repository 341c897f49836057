"""What every request handler of one API worker shares: settings, keys, limits, producer, warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

from api.connections import ConnectionBudget
from api.keys import KeyCache
from api.previews import Previews
from api.producer import EventProducer
from api.ratelimit import RateLimiter
from api.readonly_client import Warehouse
from api.recent import RecentIds
from api.sessions import Session
from billing.alerts.rule_store import AlertRules
from billing.core.meters import MeterSet
from billing.core.pricing import PlanCatalog
from billing.reports.requests import Reports
from billing.settings import Settings


@dataclass
class ApiContext:
    """Process-wide state of one API worker (``app.state.ctx``)."""

    settings: Settings
    keys: KeyCache
    meters: MeterSet
    limiter: RateLimiter
    recent: RecentIds
    warehouse: Warehouse
    previews: Previews
    catalog: PlanCatalog
    connections: ConnectionBudget
    report_jobs: Session[Reports]
    alert_rules: Session[AlertRules]
    producer: EventProducer | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When this worker loaded its configuration (meters among it)."""


def context(request: Request) -> ApiContext:
    """The context of the app serving ``request``."""
    return request.app.state.ctx
