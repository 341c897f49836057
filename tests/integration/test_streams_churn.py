"""Two workers under churn while the simulator produces: kill -9 of a worker again and again, and a
third worker joining and leaving. Every topic ends fully committed, usage and business facts exact."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.core.contracts import Invoice, InvoiceStatus, PaymentTransaction, to_bytes
from billing.core.invoicing import compose
from billing.core.invoicing.lifecycle import transition
from billing.core.invoicing.timeline import PlanSpan
from billing.core.pricing import builtin_catalog, month_period
from billing.platform.worker_service import fetch_stats, progressing
from producers.manifest import write_settlements
from producers.payers import settle
from producers.sinks import KafkaSink
from tests.integration.streams_harness import (
    Paced,
    caught_up,
    differences,
    free_port,
    hourly_totals,
    isolated,
    query,
    simulate,
    uncommitted,
    wait_for,
    worker_process,
)

KILLS = 8
JOINS = 2
RATE = 600.0
"""Usage events/s the simulator sends while the workers churn (at most 150 s: ten worker starts took 180 s at
load 8; what is left after the last action goes as fast as it can)."""


def _business_facts(mine) -> dict[str, dict]:
    return {
        "customers": dict(query(mine, "SELECT customer_id, 1 FROM {db}.customers FINAL GROUP BY customer_id")),
        "subscriptions": dict(query(mine, "SELECT customer_id, count() FROM {db}.subscription_events FINAL "
                                          "GROUP BY customer_id")),
        "invoices": dict(query(mine, "SELECT invoice_id, toString(status) FROM {db}.invoices FINAL")),
        "payments": {tx: (status, attempts) for tx, status, attempts in query(
            mine, "SELECT transaction_id, status, attempts FROM {db}.payment_transactions FINAL")},
    }


def _expected_facts(manifest) -> dict[str, dict]:
    return {
        "customers": dict.fromkeys(manifest.record_counts("customers"), 1),
        "subscriptions": manifest.record_counts("subscriptions"),
        "invoices": {inv["id"]: inv["status"] for inv in manifest.invoices()},
        "payments": {p["id"]: (p["final_status"], p["attempts"]) for p in manifest.payments()},
    }


def _engine_invoice(customer_id: str, now: datetime) -> Invoice:
    """A finalized invoice of the billing engine for last month (Growth in euro, some usage)."""
    period = month_period(now - timedelta(days=40))
    priced = compose.price(period, compose.BillingCustomer(customer_id, "EUR", "DE"),
                           [PlanSpan("sub", "growth", period.start, period.end)], [{"api_calls": Decimal(123_456)}],
                           builtin_catalog())
    draft = compose.draft(priced, invoice_id=f"inv-{customer_id}-{period.start:%Y%m}", customer_id=customer_id,
                          subscription_id="sub", now=period.end)
    return transition(draft, InvoiceStatus.FINALIZED, period.end + timedelta(hours=2), 14)


def _bill_and_pay(mine, invoices: int) -> tuple[list[Invoice], list[PaymentTransaction]]:
    """What the billing engine and the payers send while the workers churn (the simulator sends no
    invoices or payments): finalized invoices, each invoice's payment events and, once paid, its paid
    version, spread over the run. Returns every invoice's last version and every payment event."""
    sink = KafkaSink(mine.kafka_bootstrap, mine.topics())
    now = datetime.now(UTC)
    last, payments = [], []
    for number in range(invoices):
        invoice = _engine_invoice(f"cus-churn-{number:04d}", now)
        settlement = settle(invoice, seed=5)
        versions = [invoice]
        if settlement.paid_at is not None:
            versions.append(transition(invoice, InvoiceStatus.PAID, settlement.paid_at, 14))
        sink.send_many("invoices", [(v.customer_id.encode(), to_bytes(v)) for v in versions])
        sink.send_many("payments", [(e.customer_id.encode(), to_bytes(e)) for e in settlement.events])
        last.append(versions[-1])
        payments.extend(settlement.events)
        time.sleep(0.5)
    sink.close()
    return last, payments


@pytest.mark.slow
def test_kills_joins_and_leaves_while_producing_leave_nothing_behind(kafka, warehouse, settings, tmp_path):
    mine = isolated(settings, "churn", worker_metrics_interval_s=2.0)
    rng = random.Random(20261207)
    ports = [mine.worker_web_port, free_port()]
    workers = [worker_process(mine, f"w{n}", port) for n, port in enumerate(ports, start=1)]
    third = worker_process(mine, "w3", free_port())
    for worker in workers:
        worker.start(timeout=90)
    produced: dict = {}
    pace = Paced(RATE)
    producer = threading.Thread(target=lambda: produced.update(manifest=simulate(
        mine, tmp_path / "manifest", events=90_000, customers=40, days=20, seed=5, progress=pace)))
    billed: dict = {}
    billing = threading.Thread(target=lambda: billed.update(facts=_bill_and_pay(mine, invoices=60)))
    producer.start()
    billing.start()
    actions = ["kill"] * KILLS + ["join"] * JOINS
    rng.shuffle(actions)
    try:
        try:
            for action in actions:
                time.sleep(rng.uniform(2.0, 5.0))
                if action == "kill":
                    victim = rng.choice(workers)
                    victim.kill()
                    time.sleep(rng.uniform(0.5, 3.0))
                    victim.start(timeout=90)
                else:
                    third.start(timeout=90)
                    time.sleep(rng.uniform(4.0, 8.0))
                    third.stop()
        finally:
            pace.release()
        producer.join()
        billing.join()
        write_settlements(tmp_path / "manifest", *billed["facts"])
        manifest = produced["manifest"]
        wait_for(lambda: not uncommitted(mine) and caught_up(mine, manifest)(), timeout=180, interval=2.0)
        behind = uncommitted(mine)
        reported = wait_for(lambda: all(fetch_stats(port)["consumer_lag"] == 0 for port in ports), timeout=30)
        healthy = all(progressing(port) for port in ports)
    finally:
        producer.join()
        billing.join()
        for worker in [*workers, third]:
            worker.stop()
    assert behind == {}, f"records never committed (topic/partition: records): {behind}"
    assert reported, "a worker reports lag although every offset is committed"
    assert healthy
    crashed = [w.name for w in [*workers, third] if "We experienced a crash" in w.log_file.read_text(errors="replace")]
    assert crashed == [], "a worker stopped with SIGTERM exited with a crash"
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
    assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == manifest.summary["usage"]["unique_valid"]
    expected, stored = _expected_facts(manifest), _business_facts(mine)
    for topic in expected:
        assert expected[topic] and differences(expected[topic], stored[topic]) == [], topic
