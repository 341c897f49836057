"""Webhook delivery against the real broker and warehouse, with real local HTTP receivers.

Alerts, invoices, credit notes and payments published on their topics reach every subscribed endpoint once (one
2xx answer per event id), with a valid Standard Webhooks signature. Receivers that are slow (past
the timeout), answer 500 or refuse connections (closed port) get every missed event once they are
back, while a healthy endpoint gets its events at once. The log keeps each attempt; reading the
topics again delivers nothing twice; a dead-lettered delivery is replayed by `billing webhooks replay`.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
import yaml

from billing.cli.app import console
from billing.core.contracts import (
    AlertData,
    AlertEvent,
    AlertType,
    AnomalyDirection,
    CreditNote,
    CreditNoteLine,
    FailureReason,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
    PaymentStatus,
    PaymentTransaction,
    ThresholdUnit,
)
from billing.core.webhooks.endpoints import load_endpoints
from billing.core.webhooks.errors import SignatureError
from billing.core.webhooks.events import delivery_id, webhook_event
from billing.core.webhooks.signing import verify
from billing.kafka.publish import publish
from billing.settings import Settings, get_settings
from billing.webhooks.log import DeliveryLog, State
from billing.webhooks.service import DeliveryService
from tests.integration.api_fixtures import scratch_settings
from tests.integration.cli_runner import billing_in_process
from tests.integration.streams_harness import free_port

T = datetime(2026, 12, 1, 9, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
SECRETS = {name: "whsec_" + base64.b64encode(os.urandom(24)).decode() for name in ("steady", "outage", "closed", "dead")}
FAST = {"webhook_backoff_base_s": 0.05, "webhook_backoff_max_s": 0.3, "webhook_timeout_s": 1.0, "webhook_max_attempts": 1000}


def alert(customer: str, index: int) -> AlertEvent:
    if index % 2:
        data = AlertData(rule="api-anomaly", meter="api_calls", period_start=T, period_end=T.replace(hour=10), value=Decimal(900),
                         baseline=Decimal(100), mad=Decimal(4), score=Decimal("135.2"), direction=AnomalyDirection.SPIKE)
        kind = AlertType.USAGE_ANOMALY
    else:
        data = AlertData(rule="api-allowance", meter="api_calls", period_start=NOVEMBER, period_end=T.replace(hour=0),
                         value=Decimal(50_100), threshold=Decimal(50), unit=ThresholdUnit.PERCENT, limit=Decimal(50_000))
        kind = AlertType.USAGE_THRESHOLD
    return AlertEvent(id=f"alert-{uuid.uuid4().hex}", source="billing/alerts", type=kind, subject=customer, time=T, data=data)


def invoice(status: InvoiceStatus) -> Invoice:
    fields = {InvoiceStatus.FINALIZED: {"issued_at": T, "due_at": T, "number": "INV-000007"},
              InvoiceStatus.VOID: {"voided_at": T, "void_reason": "billed on the wrong plan"}}.get(status, {})
    return Invoice(id=f"inv-{uuid.uuid4().hex[:12]}", customer_id="cus-acme", period_start=NOVEMBER, period_end=T.replace(hour=0),
                   currency="EUR", line_items=(), subtotal=Decimal(0), total=Decimal(0), status=status, event_time=T, **fields)


def credit_note() -> CreditNote:
    line = CreditNoteLine(charge="growth-year.platform", description="Unused Platform fee", quantity=Decimal("0.25"),
                          amount=Decimal("300.00"), service_start=NOVEMBER, service_end=T.replace(hour=0))
    return CreditNote(id=f"cn-{uuid.uuid4().hex[:12]}", number="INV-CN-000003", customer_id="cus-acme", invoice_id="inv-1",
                      period_start=NOVEMBER, period_end=T.replace(hour=0), currency="EUR", reason="downgrade", lines=(line,),
                      total=Decimal("300.00"), issued_at=T, event_time=T)


def payment(status: PaymentStatus) -> PaymentTransaction:
    extra = {PaymentStatus.FAILED: {"failure_reason": FailureReason.INSUFFICIENT_FUNDS},
             PaymentStatus.REFUNDED: {"refunded_amount": Decimal("10.00")}}.get(status, {})
    return PaymentTransaction(event_id=f"pe-{uuid.uuid4().hex[:12]}", id="tx-1", invoice_id="inv-1", customer_id="cus-acme",
                              method=PaymentMethod.CARD, amount=Decimal("49.00"), currency="EUR", status=status, attempt=1,
                              sequence=1, initiated_at=T, completed_at=None if status is PaymentStatus.INITIATED else T,
                              event_time=T, **extra)


class Receiver:
    """A local HTTP server that verifies each webhook and answers as its ``mode`` says: ``ok`` (204),
    ``fail`` (500) or ``slow`` (waits past the sender's timeout, then 500)."""

    def __init__(self, secret: str, port: int = 0, mode: str = "ok"):
        self.secret, self.mode, self.port = secret, mode, port
        self.answers: list[tuple[str, int, str]] = []  # (webhook-id, status, event type)
        self.invalid: list[str] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    msg_id = verify(receiver.secret, dict(self.headers), body, now=time.time())
                except SignatureError as exc:
                    receiver.invalid.append(str(exc))
                    msg_id = "?"
                mode = receiver.mode
                if mode == "slow":
                    time.sleep(1.5)
                status = 204 if mode == "ok" else 500
                receiver.answers.append((msg_id, status, orjson.loads(body)["type"]))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def delivered(self) -> list[str]:
        """The webhook ids answered 2xx, in order (a repeat would show twice)."""
        return [msg_id for msg_id, status, _ in list(self.answers) if status < 300]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running(service: DeliveryService) -> Iterator[DeliveryService]:
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def write_endpoints(path: Path, endpoints: dict[str, Receiver], types: list[str]) -> Path:
    path.write_text(yaml.safe_dump({"endpoints": [{"id": name, "url": r.url, "secret": r.secret, "types": types}
                                                  for name, r in endpoints.items()]}))
    return path


ALL_TYPES = ["usage.threshold.exceeded", "usage.anomaly.detected", "invoice.finalized", "invoice.voided", "credit_note.issued",
             "payment.succeeded", "payment.failed", "payment.refunded"]


@pytest.fixture(scope="module")
def world(settings, warehouse, kafka, tmp_path_factory) -> Iterator[Settings]:
    """Scratch topics and database holding (after the first test) every kind of event."""
    with scratch_settings(settings, tmp_path_factory) as scoped, pytest.MonkeyPatch.context() as patch:
        patch.setenv("BILLING_CLICKHOUSE_DATABASE", scoped.clickhouse_database)
        patch.setattr(console, "_width", 300)
        get_settings.cache_clear()
        yield scoped.model_copy(update={**FAST, "webhook_group_id": f"tests-webhooks-{uuid.uuid4().hex[:8]}"})
    get_settings.cache_clear()


def test_each_event_arrives_once_signed_and_outages_lose_nothing(world, tmp_path):
    steady = Receiver(SECRETS["steady"]).start()
    outage = Receiver(SECRETS["outage"], mode="slow").start()
    closed = Receiver(SECRETS["closed"], port=free_port())  # nothing listens there yet
    endpoints = load_endpoints([write_endpoints(tmp_path / "hooks.yaml", {"steady": steady, "outage": outage, "closed": closed},
                                                ALL_TYPES)])
    alerts = [alert("cus-acme", 0), alert("cus-beta", 1)]
    invoices = [invoice(status) for status in (InvoiceStatus.FINALIZED, InvoiceStatus.VOID, InvoiceStatus.DRAFT)]
    notes = [credit_note()]
    payments = [payment(status) for status in PaymentStatus]
    expected = {e.id: e.type.value for e in map(webhook_event, [*alerts, *invoices, *notes, *payments]) if e is not None}
    assert len(expected) == 8  # 2 alerts, the finalized and the void invoice, the credit note, succeeded/failed/refunded payments
    try:
        with running(DeliveryService(world, endpoints)) as service:
            publish(world, "alerts", [(a.subject, a) for a in alerts], "alert")
            publish(world, "invoices", [(i.customer_id, i) for i in invoices], "invoice")
            publish(world, "credit_notes", [(n.customer_id, n) for n in notes], "credit note")
            publish(world, "payments", [(p.customer_id, p) for p in payments], "payment")
            wait_for(lambda: len(steady.delivered()) == 8, "the healthy endpoint's 8 events")
            assert outage.delivered() == [] and closed.delivered() == []  # it did not wait for them

            wait_for(lambda: len(outage.answers) >= 1, "a slow answer")
            outage.mode = "fail"
            wait_for(lambda: sum(status == 500 for _, status, _ in outage.answers) >= 8, "500s")
            outage.mode = "ok"
            closed.start()
            wait_for(lambda: len(outage.delivered()) == 8 and len(closed.delivered()) == 8, "the missed events after the outages")
            wait_for(lambda: sum(len(q) for q in service.records.values()) == 0, "every record committed")
        for receiver in (steady, outage, closed):
            assert sorted(receiver.delivered()) == sorted(expected)  # each once
            assert {msg_id: kind for msg_id, status, kind in receiver.answers if status < 300} == expected
            assert receiver.invalid == []
        assert service.stats.records == 11 and service.stats.delivered == 24 and service.stats.dead == 0
        assert service.stats.retried >= 16  # every event of the outage and the closed endpoints failed at least once

        log = {d.delivery_id: d for d in DeliveryLog(world).deliveries(limit=100)}
        assert len(log) == 24 and {d.state for d in log.values()} == {State.DELIVERED}
        retried = log[delivery_id(next(iter(expected)), "outage")]
        assert retried.attempts > 1 and retried.status_code == 204 and retried.event.id in expected

        # Read again from the start (a lost commit, a new group): the log says every delivery is done.
        again = world.model_copy(update={"webhook_group_id": f"{world.webhook_group_id}-again"})
        with running(DeliveryService(again, endpoints)) as rerun:
            wait_for(lambda: rerun.stats.records == 11, "the re-read")
        assert (rerun.stats.skipped, rerun.stats.delivered) == (24, 0)
        assert len(steady.answers) == 8 and len(closed.answers) == 8
    finally:
        for receiver in (steady, outage, closed):
            receiver.stop()


def cli(*args: str, capsys) -> tuple[int, str, str]:
    """`billing ARGS` in-process: (exit code, stdout, stderr)."""
    return billing_in_process(*args, capsys=capsys)


def test_dead_letters_are_listed_and_replayed(world, tmp_path, capsys):
    dead = Receiver(SECRETS["dead"], mode="fail").start()
    hooks = write_endpoints(tmp_path / "hooks.yaml", {"dead": dead}, ["usage.threshold.exceeded", "usage.anomaly.detected"])
    env = {**os.environ, "BILLING_CLICKHOUSE_DATABASE": world.clickhouse_database, "BILLING_WEBHOOK_ENDPOINTS_FILE": str(hooks),
           "BILLING_WEBHOOK_GROUP_ID": f"{world.webhook_group_id}-dead", "BILLING_WEBHOOK_MAX_ATTEMPTS": "3",
           "BILLING_WEBHOOK_BACKOFF_BASE_S": "0.05", **{f"BILLING_TOPIC_{name.upper()}": topic for name, topic in world.topics().items()}}
    log = DeliveryLog(world)
    try:
        service = subprocess.Popen([sys.executable, "-m", "billing", "webhooks", "deliver", "--loglevel", "warning"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: len(log.deliveries(state=State.DEAD, endpoint_id="dead")) == 2, "two dead deliveries")
        finally:
            service.send_signal(signal.SIGTERM)
            out, err = service.communicate(timeout=30)
        assert service.returncode == 0, err
        assert "0 delivered" in out and "2 dead" in out and "is dead after 3 attempts" in err
        assert len(dead.answers) == 6 and dead.delivered() == []

        code, out, err = cli("webhooks", "deliveries", "--state", "dead", capsys=capsys)
        assert code == 0, err
        dead_ids = [d.delivery_id for d in log.deliveries(state=State.DEAD, endpoint_id="dead")]
        assert all(delivery in out for delivery in dead_ids) and "ok: 2 deliveries" in out and "HTTP 500" in out

        code, _, err = cli("webhooks", "replay", dead_ids[0], "--endpoints", str(hooks), capsys=capsys)
        assert code != 0 and "failed again (HTTP 500" in err and "Traceback" not in err
        dead.mode = "ok"
        code, out, err = cli("webhooks", "replay", dead_ids[0], "--endpoints", str(hooks), capsys=capsys)
        assert code == 0, err
        assert f"delivery {dead_ids[0]} delivered" in out and "attempt 5" in out
        replayed = log.deliveries(delivery_id=dead_ids[0])[0]
        assert (replayed.state, replayed.attempts, replayed.status_code) == (State.DELIVERED, 5, 204)
        assert dead.delivered() == [replayed.event.id] and dead.invalid == []

        code, _, err = cli("webhooks", "replay", "dlv-nope", "--endpoints", str(hooks), capsys=capsys)
        assert code != 0 and "no delivery 'dlv-nope' in the delivery log" in err
    finally:
        dead.stop()
