"""The dbt marts built from simulated data: dbt build and every dbt test pass, and the marts hold
exactly what the simulator sent (computed independently in Python from its records and manifest)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from clickhouse_connect.driver.client import Client

from billing.analytics.dbt_project import run_dbt
from billing.core.contracts import PaymentStatus
from billing.core.pricing.catalog import builtin_catalog
from billing.settings import Settings
from billing.warehouse import facts
from billing.warehouse.client import client
from producers.manifest import Manifest
from tests.integration.marts_data import BuiltMarts, billing_cli, copy_database, drop_databases


@contextmanager
def broken_copy(marts: BuiltMarts, *tables: str) -> Iterator[tuple[Settings, Client, str]]:
    """A scratch marts database holding copies of ``tables`` (plain MergeTree, so tests can mutate them):
    its settings, a client and its name; dropped afterwards."""
    broken = marts.settings.model_copy(update={"clickhouse_marts_database": f"marts_broken_{uuid.uuid4().hex[:8]}"})
    ch, source, target = client(marts.settings), marts.settings.clickhouse_marts_database, broken.clickhouse_marts_database
    try:
        ch.command(f"CREATE DATABASE {target}")
        for table in tables:
            ch.command(f"CREATE TABLE {target}.{table} ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM {source}.{table}")
        yield broken, ch, target
    finally:
        drop_databases(marts.settings, target)


def test_dbt_build_runs_every_model_and_test_without_error(marts: BuiltMarts) -> None:
    summary = next(line for line in marts.build_output.splitlines() if "Done. PASS=" in line)
    assert "ERROR=0" in summary and "WARN=0" in summary and "SKIP=0" in summary, summary
    passed = int(summary.split("PASS=")[1].split()[0])
    assert passed > 150, summary


def test_hourly_usage_equals_the_manifest(marts: BuiltMarts) -> None:
    manifest = Manifest.load(marts.data.manifest_dir)
    expected = {(u.customer_id, u.meter, u.window_start): (u.value, u.events) for u in manifest.usage("hour")}
    rows = marts.query(
        "SELECT customer_id, meter, window_start, sum(value), sum(event_count) FROM fct_usage_hourly "
        "GROUP BY customer_id, meter, window_start")
    actual = {(c, m, w): (Decimal(v), e) for c, m, w, v, e in rows}
    assert len(expected) > 1000
    assert actual == expected


def test_daily_usage_equals_the_manifest_including_daily_distinct_seats(marts: BuiltMarts) -> None:
    manifest = Manifest.load(marts.data.manifest_dir)
    expected = {(u.customer_id, u.meter, u.window_start.date()): (u.value, u.events) for u in manifest.usage("day")}
    rows = marts.query(
        "SELECT customer_id, meter, usage_date, sum(value), sum(event_count) FROM fct_usage_daily "
        "GROUP BY customer_id, meter, usage_date")
    actual = {(c, m, d): (Decimal(v), e) for c, m, d, v, e in rows}
    seats = [k for k in expected if k[1] == "active_seats"]
    assert seats and any(expected[k][0] < expected[k][1] for k in seats), "needs days where users repeat"
    assert actual == expected


def _transactions(marts: BuiltMarts) -> dict[str, dict]:
    expected = {}
    for tx_id, events in marts.data.payments_by_transaction().items():
        succeeded = [e for e in events if e.status.value == "succeeded"]
        refunded = sum((e.refunded_amount for e in events if e.refunded_amount is not None), Decimal(0))
        expected[tx_id] = {
            "status": events[-1].status.value,
            "amount": events[0].amount,
            "collected": events[0].amount if succeeded else Decimal(0),
            "refunded": refunded,
            "attempts": max(e.attempt for e in events),
            "failures": sum(e.status.value == "failed" for e in events),
            "disputed": any(e.status.value == "disputed" for e in events),
            "path": ">".join(e.status.value for e in events),
            "processing": (int((succeeded[0].completed_at - succeeded[0].initiated_at).total_seconds())
                           if succeeded else None),
        }
    return expected


def test_transaction_fact_folds_every_payment_event(marts: BuiltMarts) -> None:
    rows = marts.query(
        "SELECT transaction_id, status, amount, collected_amount, refunded_amount, attempts, failures, disputed, "
        "status_path, processing_seconds FROM fct_transaction")
    actual = {r[0]: {"status": r[1], "amount": r[2], "collected": r[3], "refunded": r[4], "attempts": r[5],
                     "failures": r[6], "disputed": bool(r[7]), "path": r[8], "processing": r[9]} for r in rows}
    expected = _transactions(marts)
    assert any(t["failures"] for t in expected.values()) and any(t["attempts"] > 1 for t in expected.values())
    assert actual == expected
    manifest = {p["id"]: p for p in Manifest.load(marts.data.manifest_dir).payments()}
    assert {tx: (a["status"], a["attempts"]) for tx, a in actual.items()} == {
        tx: (p["final_status"], p["attempts"]) for tx, p in manifest.items()}


def test_invoices_reconcile_with_the_simulated_invoices_and_payments(marts: BuiltMarts) -> None:
    rows = marts.query("SELECT invoice_id, status, total, line_total, adjustment_total, amount_paid, paid_late "
                       "FROM dim_customer_invoices")
    collected = defaultdict(Decimal)
    for tx in marts.data.payments_by_transaction().values():
        if any(e.status.value == "succeeded" for e in tx):
            collected[tx[0].invoice_id] += tx[0].amount
    expected = {
        inv.id: (inv.status.value, inv.total, sum((line.amount for line in inv.line_items), Decimal(0)),
                 inv.discount_total, collected[inv.id],
                 inv.paid_at is not None and inv.paid_at > inv.due_at)
        for inv in marts.data.invoices.values()
    }
    assert {r[0]: (r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows} == expected
    manifest = {i["id"]: (i["status"], Decimal(i["total"])) for i in Manifest.load(marts.data.manifest_dir).invoices()}
    assert {inv_id: (e[0], e[1]) for inv_id, e in expected.items()} == manifest


def test_lines_adjustments_and_shipping_match_the_invoices(marts: BuiltMarts) -> None:
    invoices = marts.data.invoices.values()
    lines = {(r[0], r[1]): (r[2], r[3]) for r in marts.query("SELECT invoice_id, line_no, kind, amount FROM fct_invoice_line")}
    assert lines == {(inv.id, n): (line.kind.value, line.amount)
                     for inv in invoices for n, line in enumerate(inv.line_items, start=1)}
    adjustments = {r[0]: r[1] for r in marts.query("SELECT adjustment_id, amount FROM dim_revenue_adjustments")}
    assert adjustments == {a.id: a.amount for inv in invoices for a in inv.adjustments}
    shipped = {r[0]: (r[1], r[2]) for r in marts.query("SELECT invoice_id, carrier, cost FROM stg_invoice_shipping")}
    assert shipped == {inv.id: (inv.shipping.carrier, inv.shipping.cost) for inv in invoices if inv.shipping}


def test_customer_plan_and_date_dimensions(marts: BuiltMarts) -> None:
    data = marts.data
    customers = {r[0]: r[1:] for r in marts.query("SELECT customer_id, country, region, plan_id FROM dim_customer")}
    latest = {}
    for event in sorted(data.subscriptions, key=lambda e: e.sequence):
        latest[event.customer_id] = event.plan_id
    assert customers == {c.id: (c.country, c.region, latest.get(c.id)) for c in data.customers.values()}
    plans = {r[0]: r[1] for r in marts.query("SELECT plan_id, in_catalog FROM dim_plan")}
    catalog = set(builtin_catalog().plans)
    assert {p for p, inside in plans.items() if inside} == catalog
    assert {p for p, inside in plans.items() if not inside} == {e.plan_id for e in data.subscriptions} - catalog
    (first, last, days), = marts.query("SELECT min(date_day), max(date_day), count() FROM dim_date")
    assert days == (last - first).days + 1
    assert first <= min(c.signup_time.date() for c in data.customers.values())


def _copy_tables(marts: BuiltMarts, target: str, tables: list[str]) -> None:
    ch = client(marts.settings)
    source = marts.settings.clickhouse_marts_database
    ch.command(f"CREATE DATABASE IF NOT EXISTS {target}")
    for table in tables:
        ch.command(f"CREATE TABLE {target}.{table} AS {source}.{table}")
        ch.command(f"INSERT INTO {target}.{table} SELECT * FROM {source}.{table}")


def test_a_broken_invoice_reconciliation_makes_dbt_test_fail(marts: BuiltMarts) -> None:
    broken = marts.settings.model_copy(update={"clickhouse_marts_database": f"marts_broken_{uuid.uuid4().hex[:8]}"})
    try:
        _copy_tables(marts, broken.clickhouse_marts_database,
                     ["fct_invoice_line", "dim_revenue_adjustments", "dim_customer_invoices"])
        select = ["test", "--select", "invoice_totals_reconcile"]
        assert run_dbt(broken, select, capture=True).returncode == 0
        client(broken).command(
            f"ALTER TABLE {broken.clickhouse_marts_database}.fct_invoice_line UPDATE amount = amount + 0.01 "
            "WHERE line_no = 1 AND invoice_id = (SELECT min(invoice_id) FROM "
            f"{broken.clickhouse_marts_database}.fct_invoice_line) SETTINGS mutations_sync = 1")
        result = run_dbt(broken, select, capture=True)
        assert result.returncode == 1, result.stdout[-3000:]
        assert "FAIL 1 invoice_totals_reconcile" in result.stdout.replace("\x1b[31m", "").replace("\x1b[0m", "")
    finally:
        drop_databases(marts.settings, broken.clickhouse_marts_database)


def test_mrr_recomputed_from_invoice_fee_lines_catches_a_wrong_mrr(marts: BuiltMarts) -> None:
    with broken_copy(marts, "fct_mrr", "fct_invoice_line", "stg_subscription_events") as (broken, ch, target):
        select = ["test", "--select", "mrr_reconciles_with_invoice_fee_lines"]
        assert run_dbt(broken, select, capture=True).returncode == 0
        ch.command(f"ALTER TABLE {target}.fct_invoice_line UPDATE amount = amount + 1 WHERE kind = 'subscription' "
                   "SETTINGS mutations_sync = 1")
        result = run_dbt(broken, select, capture=True)
        assert result.returncode == 1, result.stdout[-3000:]
        assert "FAIL" in result.stdout and "mrr_reconciles_with_invoice_fee_lines" in result.stdout


def test_a_partial_build_of_fct_mrr_checks_the_mrr_report_table(marts: BuiltMarts) -> None:
    """The MRR report is a table: `--select fct_mrr` also selects the test that fails when the report
    no longer holds what fct_mrr holds (here: one subscription's MRR changed after the report was built)."""
    with broken_copy(marts, "fct_mrr", "rpt_monthly_recurring_revenue", "dim_customer", "fct_invoice_line",
                      "stg_subscription_events") as (broken, ch, target):
        source = marts.settings.clickhouse_marts_database
        ch.command(f"ALTER TABLE {target}.fct_mrr UPDATE mrr = mrr + 1 WHERE is_partial_month AND subscription_id = "
                   f"(SELECT min(subscription_id) FROM {source}.fct_mrr WHERE is_partial_month AND mrr > 0) "
                   "SETTINGS mutations_sync = 1")
        result = run_dbt(broken, ["test", "--select", "fct_mrr"], capture=True)
        out = result.stdout.replace("\x1b[31m", "").replace("\x1b[0m", "")
        assert result.returncode == 1, out[-3000:]
        assert "FAIL 2 mrr_report_reconciles_with_fct_mrr" in out and " ERROR=1 " in out, out[-3000:]


def test_recognition_recomputed_by_service_days_catches_a_wrong_recognition(marts: BuiltMarts) -> None:
    with broken_copy(marts, "fct_revenue_recognition", "dim_customer_invoices", "currency_rates", "stg_invoice_lines",
                      "stg_credit_note_lines") as (broken, ch, target):
        days, booked = "recognized_revenue_follows_service_days", "recognized_revenue_reconciles_with_booked"
        assert run_dbt(broken, ["test", "--select", days, booked], capture=True).returncode == 0
        (invoice, first), = ch.query(
            f"SELECT invoice_id, min(month_start) FROM {target}.fct_revenue_recognition GROUP BY invoice_id "
            "HAVING count() >= 6 ORDER BY invoice_id LIMIT 1").result_rows
        # a month recognizes 0.05 too much and the next 0.05 too little: every total still reconciles
        ch.command(f"ALTER TABLE {target}.fct_revenue_recognition UPDATE recognized_amount = recognized_amount + "
                   "if(month_start = {m:Date}, 0.05, -0.05) WHERE invoice_id = {i:String} AND month_start IN "
                   "({m:Date}, addMonths({m:Date}, 1)) SETTINGS mutations_sync = 1", parameters={"i": invoice, "m": first})
        result = run_dbt(broken, ["test", "--select", days, booked], capture=True)
        assert result.returncode == 1, result.stdout[-3000:]
        assert f"FAIL 2 {days}" in result.stdout.replace("\x1b[31m", "").replace("\x1b[0m", ""), result.stdout[-3000:]
        assert run_dbt(broken, ["test", "--select", booked], capture=True).returncode == 0
        ch.command(f"ALTER TABLE {target}.fct_revenue_recognition UPDATE deferred_amount = deferred_amount + 1 "
                   "WHERE invoice_id = {i:String} AND month_start = {m:Date} SETTINGS mutations_sync = 1",
                   parameters={"i": invoice, "m": first})
        result = run_dbt(broken, ["test", "--select", booked], capture=True)
        assert result.returncode == 1 and "FAIL" in result.stdout, result.stdout[-3000:]


def test_incremental_runs_apply_late_rollup_versions_and_new_payment_events(marts: BuiltMarts) -> None:
    suffix = uuid.uuid4().hex[:8]
    copy = marts.settings.model_copy(update={"clickhouse_database": f"marts_raw_inc_{suffix}",
                                             "clickhouse_marts_database": f"marts_inc_{suffix}"})
    ch = client(marts.settings)
    raw, source_marts = marts.settings.clickhouse_database, marts.settings.clickhouse_marts_database
    try:
        copy_database(marts.settings, raw, copy.clickhouse_database)
        copy_database(marts.settings, source_marts, copy.clickhouse_marts_database, "%MergeTree")
        window = ch.query(
            f"SELECT customer_id, window_start, group_key, value, event_count, updated_at FROM {raw}.usage_rollups FINAL "
            "WHERE meter = 'api_calls' ORDER BY value DESC LIMIT 1").result_rows[0]
        customer, start, key, value, events, written = window
        ch.insert(f"{copy.clickhouse_database}.usage_rollups",
                  [[customer, "api_calls", 3600, start, key, {}, "SUM", value + 5, events + 1, 3, 1,
                    written + timedelta(hours=1)]],
                  column_names=["customer_id", "meter", "window_seconds", "window_start", "group_key", "dimensions",
                                "aggregation", "value", "event_count", "version", "closed", "updated_at"])
        tx = next(t for t in marts.data.payments_by_transaction().values()
                  if t[-1].status.value == "succeeded" and t[-1].method.value == "card")
        last = tx[-1]
        refund = last.model_copy(update={"event_id": f"{last.id}-refund", "status": PaymentStatus.REFUNDED,
                                         "sequence": last.sequence + 1, "refunded_amount": last.amount,
                                         "completed_at": last.completed_at + timedelta(days=3),
                                         "event_time": last.completed_at + timedelta(days=3)})
        latest = max(p.event_time for p in marts.data.payments)
        assert refund.event_time < latest - timedelta(days=1), "the refund must arrive long after its event_time"
        ch.insert(f"{copy.clickhouse_database}.payment_events", facts.payment_rows(refund)["payment_events"],
                  column_names=facts.COLUMNS["payment_events"])
        result = run_dbt(copy, ["run", "--select", "+fct_usage_hourly+", "+fct_usage_daily", "+fct_transaction"],
                         capture=True)
        assert result.returncode == 0, result.stdout[-3000:]
        compiled = copy.state_dir / "dbt" / "target" / "compiled" / "billing" / "models" / "marts"
        for model in ("fct_usage_hourly", "fct_usage_daily"):
            assert "interval 6 hour" in (compiled / f"{model}.sql").read_text(), f"{model} did not run incrementally"
        assert "not in (select transaction_id, events" in (compiled / "fct_transaction.sql").read_text(), \
            "fct_transaction did not run incrementally"
        inc = client(copy, database=copy.clickhouse_marts_database)
        hourly = inc.query("SELECT value, event_count FROM fct_usage_hourly WHERE customer_id = {c:String} "
                           "AND meter = 'api_calls' AND window_start = {w:DateTime} AND group_key = {k:String}",
                           parameters={"c": customer, "w": start, "k": key}).result_rows
        assert hourly == [(value + 5, events + 1)]
        day_total = "SELECT sum(value) FROM {db}.fct_usage_daily WHERE customer_id = {c:String} AND meter = 'api_calls' " \
                    "AND usage_date = toDate({w:DateTime})"
        before = ch.query(day_total.replace("{db}", source_marts), parameters={"c": customer, "w": start}).result_rows
        after = inc.query(day_total.replace("{db}", copy.clickhouse_marts_database),
                          parameters={"c": customer, "w": start}).result_rows
        assert after[0][0] == before[0][0] + 5
        assert inc.query("SELECT status, refunded_amount, net_amount FROM fct_transaction WHERE transaction_id = "
                         "{t:String}", parameters={"t": last.id}).result_rows == [("refunded", last.amount, 0)]
        counts = "SELECT (SELECT count() FROM {db}.fct_transaction), (SELECT count() FROM {db}.fct_usage_hourly)"
        assert inc.query(counts.replace("{db}", copy.clickhouse_marts_database)).result_rows == \
            ch.query(counts.replace("{db}", source_marts)).result_rows
        test = run_dbt(copy, ["test", "--select", "fct_usage_hourly", "fct_usage_daily", "fct_transaction"],
                       capture=True)
        assert test.returncode == 0, test.stdout[-3000:]
    finally:
        drop_databases(marts.settings, copy.clickhouse_database, copy.clickhouse_marts_database)


def test_dbt_docs_generate_documents_every_model(marts: BuiltMarts) -> None:
    result = billing_cli(marts.settings, "dbt", "docs")
    assert result.returncode == 0, result.stdout[-3000:]
    catalog = json.loads((marts.settings.state_dir / "dbt" / "target" / "catalog.json").read_text())
    manifest = json.loads((marts.settings.state_dir / "dbt" / "target" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) > 40 and all(n["description"] for n in models)
    assert {f"model.billing.{n}" for n in ("fct_transaction", "dim_customer", "fct_usage_daily")} <= set(catalog["nodes"])
