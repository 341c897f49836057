"""Invoices leave the warehouse as topic messages, PDFs and CSV files, through the CLI too."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow.parquet as pq
from pypdf import PdfReader
from typer.testing import CliRunner

from billing.cli import invoice_cmds, simulate_cmds  # noqa: F401  (registers the commands)
from billing.cli.app import app
from billing.core.contracts import Invoice, InvoiceStatus, parse_topic
from billing.core.invoicing.errors import PeriodError
from billing.core.pricing.money import currency
from billing.invoicing.pdf import render_pdf
from billing.invoicing.run import Invoicing
from producers.sinks import read_records
from tests.integration.invoicing_data import business_records, topic_messages

MID_OCTOBER = datetime(2026, 10, 15, tzinfo=UTC)
runner = CliRunner()


def test_published_invoices_match_the_warehouse(world):
    invoicing = Invoicing(world.settings)
    invoicing.run_period("2026-09", now=MID_OCTOBER)
    invoicing.run_period("2026-09", now=MID_OCTOBER.replace(hour=1), finalize=True)
    first = invoicing.store.invoices()[0]
    invoicing.change_status(first.id, InvoiceStatus.PAID, now=MID_OCTOBER.replace(hour=2))
    messages = topic_messages(world.settings, "invoices")
    assert len(messages) == 30 + 30 + 1
    assert all(key == invoice.customer_id.encode() for key, invoice in messages)
    latest: dict[str, Invoice] = {}
    for _key, invoice in messages:
        if invoice.id not in latest or invoice.event_time > latest[invoice.id].event_time:
            latest[invoice.id] = invoice
    stored = {inv.id: inv for inv in invoicing.store.invoices()}
    assert latest == stored
    assert latest[first.id].status is InvoiceStatus.PAID


def test_pdfs_show_the_lines_and_totals(world, tmp_path):
    invoicing = Invoicing(world.settings)
    invoices = invoicing.run_period("2026-09", now=MID_OCTOBER, finalize=True).invoices
    for invoice in invoices[:4]:
        path = render_pdf(invoice, invoicing.store.party(invoice.customer_id), tmp_path / f"{invoice.id}.pdf")
        text = "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)
        money = currency(invoice.currency)
        assert invoice.id in text and f"Total due ({invoice.currency})" in text
        assert f"{invoice.total:,.{money.minor_units}f}" in text and f"{invoice.subtotal:,.{money.minor_units}f}" in text
        assert all(line.description in text for line in invoice.line_items)


def test_cli_run_list_pay_pdf_export(cli_env, tmp_path):
    world = cli_env
    result = runner.invoke(app, ["invoice", "run", "--period", "2026-09", "--finalize"], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "new invoices" in result.output and "finalized by this run" in result.output
    listed = runner.invoke(app, ["invoice", "list", "--period", "2026-09", "--status", "finalized"], terminal_width=240)
    assert "30 invoice(s)" in listed.output
    invoice = Invoicing(world.settings).store.invoices()[0]
    paid = runner.invoke(app, ["invoice", "pay", invoice.id])
    assert paid.exit_code == 0 and f"invoice {invoice.id} is paid" in paid.output
    again = runner.invoke(app, ["invoice", "pay", invoice.id])
    assert "it is paid; only finalized invoices can be paid" in str(again.exception)
    pdf = runner.invoke(app, ["invoice", "pdf", invoice.id, "-o", str(tmp_path / "x.pdf")])
    assert pdf.exit_code == 0 and (tmp_path / "x.pdf").read_bytes().startswith(b"%PDF")

    exported = runner.invoke(app, ["invoice", "export", "--period", "2026-09", "--out", str(tmp_path / "csv")])
    assert exported.exit_code == 0, exported.output
    with (tmp_path / "csv" / "invoices-2026-09.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len({row["invoice_id"] for row in rows}) == 30
    stored = {inv.id: inv for inv in Invoicing(world.settings).store.invoices()}
    assert all(Decimal(row["total"]) == stored[row["invoice_id"]].total for row in rows)
    with (tmp_path / "csv" / "usage-2026-09.csv").open() as handle:
        usage = list(csv.DictReader(handle))
    exported_calls = {row["customer_id"]: Decimal(row["quantity"]) for row in usage if row["meter"] == "api_calls"}
    one_plan = [inv for inv in stored.values() if sum(line.kind.value == "subscription" for line in inv.line_items) == 1]
    billed_calls = {inv.customer_id: line.quantity for inv in one_plan for line in inv.line_items if line.meter == "api_calls"}
    assert billed_calls and all(exported_calls.get(c, Decimal(0)) == q for c, q in billed_calls.items())

    future = runner.invoke(app, ["invoice", "run", "--period", "2099-01"])
    assert isinstance(future.exception, PeriodError)
    _, events = business_records(world.records)
    subscribed = next(e.customer_id for e in events if not any(o.customer_id == e.customer_id and o.end_time for o in events))
    preview = runner.invoke(app, ["invoice", "preview", "--customer", subscribed], terminal_width=200)
    assert preview.exit_code == 0, preview.output
    shown = " ".join(preview.output.split())
    assert f"{subscribed} · 01 " in shown and "(open period, accrued so far)" in shown and "running total" in shown

    assert sorted(row["number"] for row in rows if row["line_number"] == "1") == [f"INV-{n:06d}" for n in range(1, 31)]
    refused = runner.invoke(app, ["invoice", "rebill", invoice.id])
    assert "it is paid; only void invoices are re-billed" in str(refused.exception)
    other = next(inv for inv in stored.values() if inv.id != invoice.id)
    runner.invoke(app, ["invoice", "void", other.id, "--reason", "wrong plan"])
    rebilled = runner.invoke(app, ["invoice", "rebill", other.id, "--finalize"], terminal_width=200)
    assert rebilled.exit_code == 0, rebilled.output
    assert f"invoice {other.id}-r1 replaces {other.id}: finalized INV-000031" in " ".join(rebilled.output.split())
    listed = runner.invoke(app, ["invoice", "list", "--customer", other.customer_id], terminal_width=240)
    assert "2 invoice(s)" in listed.output and Invoicing(world.settings).get(other.id).replaced_by == f"{other.id}-r1"
    notes = runner.invoke(app, ["invoice", "credit-notes", "--period", "2026-09", "--out", str(tmp_path / "notes.csv")])
    assert notes.exit_code == 0 and "credit note(s)" in notes.output, notes.output
    assert (tmp_path / "notes.csv").read_text().startswith("credit_note_id,number,customer_id,invoice_id")


def test_cli_bills_a_month_as_of_its_close_and_the_payers_pay_it(cli_env, tmp_path):
    world = cli_env
    result = runner.invoke(app, ["invoice", "run", "--period", "2026-09", "--finalize", "--as-of", "2026-10-01T02:00:00Z"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "billed per currency" in result.output and "not billed: nothing" in result.output
    issued = {inv.issued_at.replace(microsecond=0) for inv in Invoicing(world.settings).store.invoices()}
    assert issued == {datetime(2026, 10, 1, 2, tzinfo=UTC)}  # the draft's time + 1 ms
    paid = runner.invoke(app, ["simulate", "payers", "--period", "2026-09", "--seed", "19", "--until", "2026-11-15",
                               "--output", str(tmp_path / "payments.tsv"), "--manifest", str(tmp_path / "m")], terminal_width=200)
    assert paid.exit_code == 0, paid.output
    assert "30 finalized invoices of 2026-09" in paid.output
    sent = [value for topic, _, value in read_records(tmp_path / "payments.tsv") if topic == "payments"]
    transactions = pq.read_table(tmp_path / "m" / "payments.parquet").column("id").to_pylist()
    assert sent and sorted(transactions) == sorted({parse_topic("payments", v).id for v in sent})
    statuses = {inv.status for inv in Invoicing(world.settings).store.invoices()}
    assert InvoiceStatus.PAID in statuses and statuses <= {InvoiceStatus.PAID, InvoiceStatus.FINALIZED}
    bad = runner.invoke(app, ["invoice", "run", "--period", "2026-09", "--as-of", "yesterday"])
    assert bad.exit_code != 0 and "--as-of must be an ISO 8601 time" in str(bad.exception)
