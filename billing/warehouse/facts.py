"""Contract models -> warehouse rows: the one mapping from events to the tables in
``clickhouse/schema/``, shared by the stream worker's sinks, the invoicing engine and tests.

Every function returns ``{table: [row, ...]}`` with rows as lists in the order of
:data:`COLUMNS[table]`, ready for ``client.insert(table, rows, column_names=COLUMNS[table])``.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import orjson

from billing.core.alerts.stored import StoredRule, definition
from billing.core.contracts import (
    AlertEvent,
    Contract,
    CreditNote,
    Customer,
    DeadLetter,
    Invoice,
    PaymentTransaction,
    ReportJob,
    SubscriptionEvent,
    UsageEvent,
)
from billing.core.meters import QUANTITY_FIELD, Meter, MeterSet, active_meters
from billing.core.reports.jobs import JobState, JobStatus, queued

Rows = dict[str, list[list]]

DERIVED_TABLES = frozenset({"usage_rollups", "payment_transactions", "webhook_deliveries", "alert_rules"})
"""Tables whose rows are not one contract's: the stream worker derives them from many messages, the webhook
service logs its delivery attempts, the alert rules API and CLI write the rules."""

COLUMNS: dict[str, tuple[str, ...]] = {
    "usage_events": ("event_id", "customer_id", "meter", "event_time", "quantity", "value", "dimensions",
                     "group_key", "source", "kafka_partition", "kafka_offset"),
    "customers": ("customer_id", "company_name", "email", "country", "region", "currency", "segment",
                  "signup_time", "updated_at", "tax_region", "tax_exempt"),
    "subscription_events": ("event_id", "subscription_id", "customer_id", "type", "sequence", "plan_id",
                            "previous_plan_id", "billing_interval", "billing_time", "status", "start_time",
                            "end_time", "effective_time", "event_time"),
    "invoices": ("invoice_id", "customer_id", "subscription_id", "period_start", "period_end", "currency",
                 "subtotal", "discount_total", "tax_rate", "tax", "total", "status", "issued_at", "due_at",
                 "paid_at", "voided_at", "event_time", "void_reason", "number", "replaces", "replaced_by"),
    "invoice_lines": ("invoice_id", "line_no", "customer_id", "period_start", "currency", "kind", "charge",
                      "meter", "description", "quantity", "unit_price", "amount", "breakdown", "service_start",
                      "service_end"),
    "invoice_adjustments": ("invoice_id", "adjustment_id", "customer_id", "period_start", "currency", "kind",
                            "code", "description", "percent_off", "amount"),
    "credit_notes": ("credit_note_id", "number", "customer_id", "invoice_id", "period_start", "period_end", "currency",
                     "reason", "total", "issued_at", "event_time"),
    "credit_note_lines": ("credit_note_id", "line_no", "customer_id", "period_start", "currency", "charge", "description",
                          "quantity", "amount", "service_start", "service_end"),
    "invoice_shipping": ("invoice_id", "customer_id", "recipient", "address_line", "city", "postal_code",
                         "country", "carrier", "tracking_number", "cost", "currency", "shipped_at",
                         "delivered_at", "event_time"),
    "payment_events": ("event_id", "transaction_id", "invoice_id", "customer_id", "method", "amount", "currency",
                       "status", "failure_reason", "attempt", "sequence", "initiated_at", "completed_at",
                       "refunded_amount", "event_time"),
    "dead_letters": ("time", "source_topic", "partition", "offset", "reason", "payload", "key"),
    "alerts": ("alert_id", "customer_id", "type", "rule", "meter", "period_start", "period_end", "value", "threshold",
               "unit", "limit_units", "baseline", "mad", "score", "direction", "detected_at", "invoice_id", "currency",
               "due_at"),
    "webhook_deliveries": ("delivery_id", "attempt", "event_id", "event_type", "customer_id", "endpoint_id", "url", "state",
                           "status_code", "error", "latency_ms", "attempted_at", "body"),
    "report_jobs": ("job_id", "customer_id", "period", "kind", "format", "requested_by", "idempotency_key",
                    "requested_at", "status", "progress", "attempts", "error", "file", "updated_at", "finished_at",
                    "version"),
    "alert_rules": ("rule_id", "customer_id", "kind", "definition", "created_at", "updated_at", "updated_by", "deleted",
                    "version"),
    "usage_rollups": ("customer_id", "meter", "window_seconds", "window_start", "group_key", "dimensions",
                      "aggregation", "value", "event_count", "version", "closed", "updated_at"),
    "payment_transactions": ("transaction_id", "invoice_id", "customer_id", "method", "amount", "currency", "status",
                             "last_failure", "attempts", "failures", "first_initiated_at", "last_completed_at",
                             "succeeded_at", "processing_seconds", "refunded_amount", "disputed", "status_path",
                             "version", "updated_at"),
}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("=", "\\=")


@lru_cache(maxsize=1 << 16)
def group_key(group_by: tuple[str, ...], values: tuple[str, ...]) -> str:
    """Canonical text of the grouped dimensions' values, e.g. ``region=eu-west-1|endpoint=/v1/search``
    (cached: a meter sees few distinct combinations)."""
    return "|".join(f"{_escape(name)}={_escape(value)}" for name, value in zip(group_by, values, strict=True))


def usage_row(event: UsageEvent, partition: int, offset: int, meter: Meter) -> list:
    """Row of ``usage_events`` for a validated usage event of ``meter`` read at ``partition``/``offset``."""
    value = "" if meter.value_field == QUANTITY_FIELD else str(event.data.field(meter.value_field))
    values = event.data.group_values(meter.group_by)
    return [event.id, event.subject, event.type, event.time, event.data.quantity, value,
            dict(zip(meter.group_by, values, strict=True)), group_key(meter.group_by, values), event.source, partition, offset]


def usage_rows(event: UsageEvent, partition: int = 0, offset: int = 0, meters: MeterSet | None = None) -> Rows:
    """Rows of ``usage_events`` for a validated usage event read at ``partition``/``offset``."""
    return {"usage_events": [usage_row(event, partition, offset, (meters or active_meters())[event.type])]}


def customer_rows(c: Customer) -> Rows:
    return {"customers": [[c.id, c.company_name, c.email, c.country, c.region, c.currency, c.segment.value,
                           c.signup_time, c.updated_at, c.tax_region, int(c.tax_exempt)]]}


def subscription_rows(e: SubscriptionEvent) -> Rows:
    return {"subscription_events": [[
        e.event_id, e.subscription_id, e.customer_id, e.type.value, e.sequence, e.plan_id, e.previous_plan_id,
        e.billing_interval.value, e.billing_time.value, e.status.value, e.start_time, e.end_time, e.effective_time, e.event_time,
    ]]}


def invoice_rows(inv: Invoice) -> Rows:
    """Rows of ``invoices``, ``invoice_lines``, ``invoice_adjustments`` and ``invoice_shipping``."""
    rows: Rows = {
        "invoices": [[
            inv.id, inv.customer_id, inv.subscription_id, inv.period_start, inv.period_end, inv.currency,
            inv.subtotal, inv.discount_total, inv.tax_rate, inv.tax, inv.total, inv.status.value,
            inv.issued_at, inv.due_at, inv.paid_at, inv.voided_at, inv.event_time, inv.void_reason,
            inv.number, inv.replaces, inv.replaced_by,
        ]],
        "invoice_lines": [
            [inv.id, number, inv.customer_id, inv.period_start, inv.currency, line.kind.value, line.charge,
             line.meter, line.description, line.quantity, line.unit_price, line.amount,
             orjson.dumps([step.model_dump(mode="json") for step in line.breakdown]).decode(), line.service_start,
             line.service_end]
            for number, line in enumerate(inv.line_items, start=1)
        ],
        "invoice_adjustments": [
            [inv.id, adj.id, inv.customer_id, inv.period_start, inv.currency, adj.kind.value, adj.code,
             adj.description, adj.percent_off, adj.amount]
            for adj in inv.adjustments
        ],
    }
    if inv.shipping is not None:
        s = inv.shipping
        rows["invoice_shipping"] = [[
            inv.id, inv.customer_id, s.recipient, s.address_line, s.city, s.postal_code, s.country, s.carrier,
            s.tracking_number, s.cost, inv.currency, s.shipped_at, s.delivered_at, inv.event_time,
        ]]
    return rows


def credit_note_rows(note: CreditNote) -> Rows:
    """Rows of ``credit_notes`` and ``credit_note_lines``."""
    return {
        "credit_notes": [[note.id, note.number, note.customer_id, note.invoice_id, note.period_start, note.period_end,
                          note.currency, note.reason, note.total, note.issued_at, note.event_time]],
        "credit_note_lines": [
            [note.id, number, note.customer_id, note.period_start, note.currency, line.charge, line.description,
             line.quantity, line.amount, line.service_start, line.service_end]
            for number, line in enumerate(note.lines, start=1)
        ],
    }


def payment_rows(p: PaymentTransaction) -> Rows:
    return {"payment_events": [[
        p.event_id, p.id, p.invoice_id, p.customer_id, p.method.value, p.amount, p.currency, p.status.value,
        p.failure_reason.value if p.failure_reason else None, p.attempt, p.sequence, p.initiated_at,
        p.completed_at, p.refunded_amount, p.event_time,
    ]]}


def dead_letter_rows(d: DeadLetter) -> Rows:
    return {"dead_letters": [[d.time, d.source_topic, d.partition, d.offset, d.reason,
                              d.payload.decode("utf-8", "replace"), d.key_b64]]}


def alert_rows(a: AlertEvent) -> Rows:
    d = a.data
    return {"alerts": [[a.id, a.subject, a.type.value, d.rule, d.meter or "", d.period_start, d.period_end, d.value, d.threshold,
                        d.unit.value if d.unit else None, d.limit, d.baseline, d.mad, d.score,
                        d.direction.value if d.direction else None, a.time, d.invoice_id, d.currency, d.due_at]]}


def report_job_rows(state: JobState) -> Rows:
    """Row of ``report_jobs`` for one state of a job."""
    j = state.job
    return {"report_jobs": [[j.id, j.customer_id or "", j.period, j.kind.value, j.format.value, j.requested_by, j.idempotency_key,
                             j.requested_at, state.status.value, state.progress, state.attempts, state.error, state.file,
                             state.updated_at, state.finished_at, state.version]]}


def alert_rule_rows(stored: StoredRule) -> Rows:
    """Row of ``alert_rules`` for one change of a stored rule."""
    return {"alert_rules": [[stored.id, stored.customer_id, stored.rule.kind, orjson.dumps(definition(stored.rule)).decode(),
                             stored.created_at, stored.updated_at, stored.updated_by, 0, stored.version]]}


def alert_rule_deletion(rule_id: str, customer_id: str, created_at: datetime, *, by: str, at: datetime, version: int) -> Rows:
    """Row of ``alert_rules`` that deletes a rule (no kind, an empty definition)."""
    return {"alert_rules": [[rule_id, customer_id, "", "{}", created_at, at, by, 1, version]]}


def report_job_state(row: tuple) -> JobState:
    """The :class:`JobState` of a ``report_jobs`` row read in :data:`COLUMNS` order."""
    (job_id, customer_id, period, kind, fmt, requested_by, key, requested_at, status, progress, attempts, error, file,
     updated_at, finished_at, version) = row
    job = ReportJob(id=job_id, customer_id=customer_id or None, period=period, kind=kind, format=fmt, requested_at=requested_at,
                    requested_by=requested_by, idempotency_key=key)
    return JobState(job, JobStatus(status), version=version, updated_at=updated_at, progress=progress, attempts=attempts,
                    error=error, file=file, finished_at=finished_at)


def rows_for(model: Contract, partition: int = 0, offset: int = 0) -> Rows:
    """Warehouse rows of any topic message."""
    if isinstance(model, UsageEvent):
        return usage_rows(model, partition, offset)
    for kind, mapper in _MAPPERS:
        if isinstance(model, kind):
            return mapper(model)
    raise TypeError(f"no warehouse mapping for {type(model).__name__}")


_MAPPERS = (
    (Customer, customer_rows),
    (SubscriptionEvent, subscription_rows),
    (Invoice, invoice_rows),
    (CreditNote, credit_note_rows),
    (PaymentTransaction, payment_rows),
    (DeadLetter, dead_letter_rows),
    (AlertEvent, alert_rows),
    (ReportJob, lambda job: report_job_rows(queued(job))),
)


def merge(into: Rows, more: Rows) -> Rows:
    """Append the rows of ``more`` to ``into`` (in place) and return it."""
    for table, rows in more.items():
        into.setdefault(table, []).extend(rows)
    return into

