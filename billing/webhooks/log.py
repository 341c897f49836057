"""The webhook delivery log: one ``webhook_deliveries`` row per attempt, and what it says of each delivery."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing.core.webhooks.endpoints import Endpoint
from billing.core.webhooks.events import EventType, WebhookEvent
from billing.settings import Settings
from billing.warehouse import facts
from billing.warehouse.client import client
from billing.webhooks.sender import Outcome

TABLE = "webhook_deliveries"
COLUMNS = facts.COLUMNS[TABLE]


class State(StrEnum):
    """Where a delivery stands after an attempt."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One logged attempt to deliver ``event`` to ``endpoint``."""

    delivery_id: str
    attempt: int
    event: WebhookEvent
    endpoint: Endpoint
    state: State
    outcome: Outcome
    attempted_at: datetime

    def row(self) -> list:
        """The attempt's row, in the order of :data:`COLUMNS`."""
        e, o = self.event, self.outcome
        return [self.delivery_id, self.attempt, e.id, e.type.value, e.customer_id, self.endpoint.id, self.endpoint.url,
                self.state.value, o.status_code, o.error, o.latency_ms, self.attempted_at, e.body]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as the log last saw it: its latest attempt."""

    delivery_id: str
    event: WebhookEvent
    endpoint_id: str
    url: str
    attempts: int
    state: State
    status_code: int | None
    error: str | None
    latency_ms: float
    attempted_at: datetime


_LATEST = ", ".join(f"argMax({column}, attempt)" for column in COLUMNS if column not in ("delivery_id", "attempt"))


class DeliveryLog:
    """Reads and writes the delivery log of the warehouse named by ``settings``."""

    def __init__(self, settings: Settings):
        self.ch = client(settings)
        self.table = f"{settings.clickhouse_database}.{TABLE}"

    def write(self, attempts: Sequence[Attempt]) -> None:
        """Insert the rows of ``attempts`` (one insert)."""
        if attempts:
            self.ch.insert(self.table, [attempt.row() for attempt in attempts], column_names=COLUMNS)

    def states(self, delivery_ids: Iterable[str]) -> dict[str, tuple[int, State]]:
        """Delivery id -> (last attempt, its state) of the ids among ``delivery_ids`` the log has."""
        ids = sorted(set(delivery_ids))
        if not ids:
            return {}
        rows = self.ch.query(f"SELECT delivery_id, max(attempt), argMax(state, attempt) FROM {self.table} "
                             "WHERE delivery_id IN {ids:Array(String)} GROUP BY delivery_id", parameters={"ids": ids}).result_rows
        return {delivery_id: (attempt, State(state)) for delivery_id, attempt, state in rows}

    def deliveries(self, *, delivery_id: str | None = None, state: State | None = None, endpoint_id: str | None = None,
                   limit: int = 50) -> list[Delivery]:
        """The latest attempt of each delivery (newest first), filtered by id, state or endpoint."""
        having = [condition for condition, value in (("delivery_id = {id:String}", delivery_id),
                                                      ("argMax(state, attempt) = {state:String}", state),
                                                      ("argMax(endpoint_id, attempt) = {endpoint:String}", endpoint_id))
                  if value is not None]
        rows = self.ch.query(
            f"SELECT delivery_id, max(attempt), {_LATEST} FROM {self.table} GROUP BY delivery_id "
            f"{'HAVING ' + ' AND '.join(having) if having else ''} "
            "ORDER BY argMax(attempted_at, attempt) DESC, delivery_id LIMIT {limit:UInt32}",
            parameters={"id": delivery_id, "state": state and state.value, "endpoint": endpoint_id, "limit": limit},
        ).result_rows
        return [_delivery(row) for row in rows]


def _delivery(row: Sequence) -> Delivery:
    (delivery_id, attempts, event_id, event_type, customer_id, endpoint_id, url, state, status_code, error, latency_ms,
     attempted_at, body) = row
    event = WebhookEvent(event_id, EventType(event_type), customer_id, body.encode() if isinstance(body, str) else body)
    return Delivery(delivery_id, event, endpoint_id, url, attempts, State(state), status_code, error, latency_ms, attempted_at)
