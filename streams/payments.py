"""Payment lifecycle: the state machine of one transaction and the facts derived from it.

A transaction moves initiated -> succeeded | failed; a failed attempt is retried with a new
``initiated`` (next attempt); a succeeded payment may be refunded (possibly in parts) or disputed,
and a dispute may end in a refund. Events are applied in ``sequence`` order and at most once: an
event whose sequence is not above the last applied one is a replay or duplicate and changes
nothing. Transitions the machine does not allow are still applied (the event is a fact) but
reported as anomalies, as are gaps in the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import orjson

from billing.core.contracts import PaymentStatus, PaymentTransaction
from billing.warehouse.facts import COLUMNS as TABLE_COLUMNS

S = PaymentStatus
ALLOWED: dict[PaymentStatus | None, frozenset[PaymentStatus]] = {
    None: frozenset({S.INITIATED}),
    S.INITIATED: frozenset({S.SUCCEEDED, S.FAILED}),
    S.FAILED: frozenset({S.INITIATED}),
    S.SUCCEEDED: frozenset({S.REFUNDED, S.DISPUTED}),
    S.REFUNDED: frozenset({S.REFUNDED, S.DISPUTED}),
    S.DISPUTED: frozenset({S.REFUNDED, S.SUCCEEDED}),
}
"""Status -> statuses that may follow it."""

COLUMNS = TABLE_COLUMNS["payment_transactions"]
"""Columns of ``payment_transactions``, in the order of :meth:`PaymentState.row`."""


@dataclass
class PaymentState:
    """Current state and derived facts of one payment transaction."""

    transaction_id: str
    invoice_id: str
    customer_id: str
    method: str
    amount: Decimal
    currency: str
    status: PaymentStatus | None = None
    last_failure: str | None = None
    attempts: int = 0
    failures: int = 0
    first_initiated_at: datetime | None = None
    last_completed_at: datetime | None = None
    succeeded_at: datetime | None = None
    processing_seconds: float | None = None
    refunded_amount: Decimal = Decimal(0)
    disputed: bool = False
    path: list[str] = field(default_factory=list)
    sequence: int = 0

    @classmethod
    def start(cls, event: PaymentTransaction) -> PaymentState:
        """The state before the first event of ``event``'s transaction."""
        return cls(event.id, event.invoice_id, event.customer_id, event.method.value, event.amount, event.currency)

    def apply(self, event: PaymentTransaction) -> tuple[bool, str | None]:
        """Apply one event: (applied, anomaly). Not applied when its sequence was seen already."""
        if event.sequence <= self.sequence:
            return False, None
        anomaly = None
        if event.sequence != self.sequence + 1:
            anomaly = f"sequence gap: {self.sequence} -> {event.sequence}"
        elif event.status not in ALLOWED[self.status]:
            previous = self.status.value if self.status else "start"
            anomaly = f"unexpected transition {previous} -> {event.status.value}"
        self.sequence = event.sequence
        self.status = event.status
        self.path.append(event.status.value)
        self.method, self.amount, self.currency = event.method.value, event.amount, event.currency
        if event.status is S.INITIATED:
            self.attempts = max(self.attempts, event.attempt)
            if self.first_initiated_at is None or event.initiated_at < self.first_initiated_at:
                self.first_initiated_at = event.initiated_at
        elif event.status in (S.SUCCEEDED, S.FAILED):
            self.last_completed_at = event.completed_at
            self.processing_seconds = event.processing_seconds
            if event.status is S.FAILED:
                self.failures += 1
                self.last_failure = event.failure_reason.value
            else:
                self.succeeded_at = event.completed_at
        elif event.status is S.REFUNDED:
            self.refunded_amount = event.refunded_amount
        elif event.status is S.DISPUTED:
            self.disputed = True
        if self.first_initiated_at is None:
            self.first_initiated_at = event.initiated_at
        self.attempts = max(self.attempts, event.attempt)
        return True, anomaly

    @property
    def status_path(self) -> str:
        """Statuses in order, e.g. ``initiated>failed>initiated>succeeded``."""
        return ">".join(self.path)

    def row(self, updated_at: datetime) -> list:
        """The ``payment_transactions`` row (version = sequence of the last applied event)."""
        return [self.transaction_id, self.invoice_id, self.customer_id, self.method, self.amount, self.currency,
                self.status.value if self.status else "", self.last_failure, self.attempts, self.failures,
                self.first_initiated_at, self.last_completed_at, self.succeeded_at, self.processing_seconds,
                self.refunded_amount, int(self.disputed), self.status_path, self.sequence, updated_at]

    def encode(self) -> bytes:
        """Bytes stored in the payments table."""
        return orjson.dumps({
            "t": self.transaction_id, "i": self.invoice_id, "c": self.customer_id, "m": self.method,
            "a": str(self.amount), "cur": self.currency, "s": self.status.value if self.status else None,
            "lf": self.last_failure, "at": self.attempts, "f": self.failures,
            "fi": _iso(self.first_initiated_at), "lc": _iso(self.last_completed_at), "su": _iso(self.succeeded_at),
            "ps": self.processing_seconds, "r": str(self.refunded_amount), "d": self.disputed, "p": self.path,
            "q": self.sequence,
        })

    @classmethod
    def decode(cls, raw: bytes) -> PaymentState:
        """Inverse of :meth:`encode`."""
        d = orjson.loads(raw)
        return cls(d["t"], d["i"], d["c"], d["m"], Decimal(d["a"]), d["cur"], S(d["s"]) if d["s"] else None,
                   d["lf"], d["at"], d["f"], _time(d["fi"]), _time(d["lc"]), _time(d["su"]), d["ps"],
                   Decimal(d["r"]), d["d"], d["p"], d["q"])


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
