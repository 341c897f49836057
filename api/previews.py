"""Invoice previews for the API: the invoicing module's preview, as the warehouse's read-only user.

The invoicing engine keeps one warehouse session, so one worker computes one preview at a time
(a preview is a few small queries plus pricing in memory).
"""

from __future__ import annotations

import threading
from datetime import datetime

from billing.invoicing.run import Invoicing, Preview
from billing.settings import Settings


class Previews:
    """Running totals of open periods, computed by :meth:`billing.invoicing.run.Invoicing.preview`."""

    def __init__(self, settings: Settings):
        self.settings = settings.model_copy(update={
            "clickhouse_user": settings.clickhouse_readonly_user,
            "clickhouse_password": settings.clickhouse_readonly_password,
        })
        self._invoicing: Invoicing | None = None
        self._lock = threading.Lock()

    def preview(self, customer_id: str, now: datetime) -> Preview:
        """The running total of ``customer_id``'s current month up to ``now`` (blocking)."""
        with self._lock:
            if self._invoicing is None:
                self._invoicing = Invoicing(self.settings)
            return self._invoicing.preview(customer_id, now=now)
