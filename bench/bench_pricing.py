"""Price 10,000 customers' monthly usage across the example plans.

Measures the pure engine (``price_invoice``), the whole invoice computation (engine + building
the ``Invoice`` contracts) and, for scale, the CSV export and PDF rendering per invoice. The
customers are generated deterministically (seeded), with prorated joins, mid-month plan changes,
coupons, credits and taxes in the mix.
"""

from __future__ import annotations

import io
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from billing.core.pricing import CouponGrant, Period, PlanTerm, TaxProfile, builtin_catalog, month_period, price_invoice
from billing.core.pricing.invoice import to_invoice
from billing.invoicing.export import write_invoices_csv
from billing.invoicing.pdf import BillTo as Party
from billing.invoicing.pdf import Branding, render_pdf

CUSTOMERS = 10_000
PDFS = 50
PERIOD = month_period(datetime(2024, 3, 1, tzinfo=UTC))
LOCATIONS = [("US", "CA"), ("US", "NY"), ("US", "TX"), ("DE", None), ("FR", None), ("GB", None), ("JP", None), ("CA", "QC"), ("BR", None)]


def _customers(seed: int = 42) -> tuple[list[dict], list]:
    rng = random.Random(seed)
    catalog = builtin_catalog()
    plans = list(catalog.plans.values())
    usd_plans = [plan for plan in plans if plan.currency == "USD"]
    customers = []
    for number in range(CUSTOMERS):
        plan = rng.choice(plans)
        usage = {meter: Decimal(int(10 ** rng.uniform(0, 8))) for meter in plan.meters}
        active = PERIOD
        terms = []
        roll = rng.random()
        if roll < 0.10:  # joined mid-month
            active = Period(PERIOD.start + timedelta(seconds=rng.randrange(PERIOD.seconds)), PERIOD.end)
        elif roll < 0.15 and plan.currency == "USD":  # changed plan mid-month
            change = PERIOD.start + timedelta(seconds=rng.randrange(1, PERIOD.seconds))
            other = rng.choice([p for p in usd_plans if p.id != plan.id])
            terms.append(PlanTerm(other, Period(PERIOD.start, change), {m: Decimal(int(10 ** rng.uniform(0, 6))) for m in other.meters}))
            active = Period(change, PERIOD.end)
        terms.append(PlanTerm(plan, active, usage))
        coupons = [CouponGrant(catalog.coupon(rng.choice(["launch20", "partner10"])))] if rng.random() < 0.2 else []
        country, region = rng.choice(LOCATIONS)
        customers.append({
            "id": f"cus_{number:05d}",
            "terms": terms,
            "bill_to": TaxProfile(country, region),
            "coupons": coupons,
            "credits": Decimal(rng.choice([0, 0, 0, 50, 500])),
        })
    return customers, catalog.tax_rules


def run() -> str:
    customers, tax_rules = _customers()
    started = time.perf_counter()
    priced = [
        price_invoice(PERIOD, c["terms"], bill_to=c["bill_to"], coupons=c["coupons"], credit_balance=c["credits"], tax_rules=tax_rules)
        for c in customers
    ]
    engine_s = time.perf_counter() - started
    issued = PERIOD.end + timedelta(hours=1)
    started = time.perf_counter()
    invoices = [
        to_invoice(p, invoice_id=f"INV-202403-{c['id']}", customer_id=c["id"], issued_at=issued, due_at=issued + timedelta(days=14))
        for p, c in zip(priced, customers, strict=True)
    ]
    contract_s = time.perf_counter() - started
    started = time.perf_counter()
    csv_rows = write_invoices_csv(invoices, io.StringIO())
    csv_s = time.perf_counter() - started
    branding = Branding("Acme Metering Inc.", ("1 Market Street", "San Francisco, CA 94105"))
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        for invoice in invoices[:PDFS]:
            render_pdf(invoice, Party(invoice.customer_id, invoice.customer_id), Path(folder) / f"{invoice.id}.pdf", branding)
        pdf_s = time.perf_counter() - started
    lines = sum(len(p.lines) for p in priced)
    total = engine_s + contract_s
    return "\n".join([
        "## pricing",
        "",
        f"{CUSTOMERS:,} customers' monthly invoices across the {len({s.plan.id for c in customers for s in c['terms']})} example plans "
        f"({lines:,} lines; 10 % prorated joins, ~3 % mid-month plan changes, 20 % coupons, taxes in 9 locations). "
        "Target: < 10 s for the whole invoice computation.",
        "",
        "| step | time | rate |",
        "|---|---|---|",
        f"| pure engine (`price_invoice`) | {engine_s:.2f} s | {CUSTOMERS / engine_s:,.0f} invoices/s |",
        f"| build `Invoice` contracts (`to_invoice`) | {contract_s:.2f} s | {CUSTOMERS / contract_s:,.0f} invoices/s |",
        f"| **whole invoice computation** | **{total:.2f} s** | {CUSTOMERS / total:,.0f} invoices/s |",
        f"| CSV export ({csv_rows:,} rows) | {csv_s:.2f} s | {csv_rows / csv_s:,.0f} rows/s |",
        f"| PDF rendering ({PDFS} invoices) | {pdf_s:.2f} s | {pdf_s / PDFS * 1000:.0f} ms/invoice |",
    ])
