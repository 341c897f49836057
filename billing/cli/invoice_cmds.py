"""`billing invoice run | preview | grant-coupon | grant-credit | grants | revoke-grant | finalize | pay | void | rebill |
list | credit-notes | pdf | credit-note-pdf | export`: invoicing from the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from billing.cli.app import app, console, stage_progress, utc_moment
from billing.core.contracts import AdjustmentKind, Invoice, InvoiceStatus
from billing.core.errors import ConfigError
from billing.core.invoicing.errors import UnknownCustomer, UnknownInvoice
from billing.core.invoicing.grants import GrantRecord, Standing
from billing.core.invoicing.periods import label, parse_period
from billing.core.pricing.money import currency
from billing.invoicing.export import write_credit_notes_csv, write_invoices_csv, write_usage_csv
from billing.invoicing.grant_records import GrantDesk, Granted
from billing.invoicing.pdf import render_credit_note_pdf, render_pdf
from billing.invoicing.run import Invoicing, RunSummary
from billing.settings import get_settings

invoice_app = typer.Typer(help="Invoices from the warehouse: run a month, preview, coupons and credits, lifecycle, PDFs, exports.",
                          no_args_is_help=True)
app.add_typer(invoice_app, name="invoice")


def _now() -> datetime:
    return datetime.now(UTC)


def _invoicing() -> Invoicing:
    return Invoicing(get_settings())


@invoice_app.command()
def run(
    period: str = typer.Option(..., "--period", "-p", help="Closed month to bill, YYYY-MM."),
    finalize: bool = typer.Option(False, "--finalize", help="Finalize the invoices right away (default: drafts)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Run as of this UTC time (ISO 8601; default now): "
                                        "the issue date of invoices finalized, for billing history."),
) -> None:
    """Bill every subscription of a closed month from the usage rollups (idempotent; finalized invoices never change)."""
    invoicing = _invoicing()
    moment = utc_moment(as_of, "--as-of") if as_of else _now()
    with stage_progress() as progress:
        summary = invoicing.run_period(period, now=moment, finalize=finalize, progress=progress)
    _print_summary(summary)


def _print_summary(summary: RunSummary) -> None:
    table = Table(title=f"invoice run {label(summary.period)}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in (
        ("new invoices", summary.created), ("drafts recomputed (changed)", summary.updated),
        ("drafts unchanged", summary.unchanged), ("finalized by this run", summary.finalized),
        ("left alone (finalized, paid or void)", summary.frozen), ("correction lines (late usage)", summary.corrections),
        ("credit notes issued (prepaid fees of plan changes)", len(summary.credit_notes)),
        ("subscriptions not billable this month", summary.not_billable),
    ):
        table.add_row(what, f"{count:,}")
    console.print(table)
    if summary.billed:
        billed = Table("currency", "invoices", "fees", "usage", "true-ups", "discounts", "tax", "total",
                       title="billed per currency (the invoices computed; true-ups: minimum commitments and corrections)")
        for code, amounts in summary.billed.items():
            digits = currency(code).minor_units
            billed.add_row(code, f"{amounts.invoices:,}", *(f"{v:,.{digits}f}" for v in (
                amounts.fees, amounts.usage, amounts.other, amounts.discounts, amounts.tax, amounts.total)))
        console.print(billed)
    if summary.not_billed:
        console.print("not billed: " + "; ".join(f"{count:,} {'subscription' if count == 1 else 'subscriptions'} {reason}"
                                                  for reason, count in sorted(summary.not_billed.items())))
    else:
        console.print("not billed: nothing (every subscription with service in the month has its invoice)")
    console.print(f"done in {summary.seconds:.1f}s")


@invoice_app.command()
def preview(customer: str = typer.Option(..., "--customer", "-c", help="Customer id.")) -> None:
    """Running total of a customer's current month (accrued up to now), with lines and tier breakdown."""
    result = _invoicing().preview(customer, now=_now())
    money = result.priced.currency
    console.print(f"[bold]{customer}[/] · {result.period.start:%d %b %Y} – {result.until:%d %b %Y %H:%M} UTC "
                  "(open period, accrued so far)")
    table = Table("line / step", "units", "unit price", "flat fee", "amount")
    for line in result.priced.lines:
        table.add_row(f"[bold]{line.description}[/] [dim]{line.plan_id}[/]", f"{line.quantity:,}", "", "",
                      f"[bold]{money.format(line.amount)}[/]")
        for step in line.steps:
            table.add_row(f"[dim]  {step.description}[/]", f"[dim]{step.units:,}", f"[dim]{step.unit_price}",
                          f"[dim]{step.flat_fee or ''}", f"[dim]{step.amount:,}")
    console.print(table)
    console.print(f"subtotal        {money.format(result.priced.subtotal)}")
    for discount in result.priced.discounts:
        console.print(f"coupon          -{money.format(discount.amount)}  [dim]{discount.description}[/]")
    for tax in result.priced.taxes:
        console.print(f"{tax.name} {tax.rate}%".ljust(16) + money.format(tax.amount))
    console.print(f"[bold]running total   {money.format(result.priced.total)}[/]")
    if result.grants.credit_balance:
        console.print(f"prepaid credits -{money.format(result.priced.credits_applied)}  "
                      f"[dim]of {money.format(result.grants.credit_balance)} available[/]")
        console.print(f"[bold]amount due      {money.format(result.priced.amount_due)}[/]")


GrantIdOption = typer.Option(None, "--grant-id", help="Grant id (default: generated); the same grant again is a no-op.")


def _desk() -> GrantDesk:
    invoicing = _invoicing()
    return GrantDesk(invoicing.store, invoicing.catalog)


def _again(granted: Granted) -> str:
    """The prefix of a grant recorded before (re-submitted)."""
    return "" if granted.created else "[yellow]already recorded, nothing written:[/] "


@invoice_app.command("grant-coupon")
def grant_coupon(
    customer: str = typer.Option(..., "--customer", "-c", help="Customer id."),
    coupon: str = typer.Option(..., "--coupon", help="Coupon id of the plan catalog (`coupons:` in the plan files)."),
    grant_id: str | None = GrantIdOption,
) -> None:
    """Redeem a catalog coupon for a customer: the next invoice runs apply it (for its duration)."""
    desk = _desk()
    granted = desk.grant_coupon(customer, coupon, grant_id=grant_id, now=_now())
    found = desk.catalog.coupon(coupon)
    duration = f"{found.duration_periods} invoice(s)" if found.duration_periods else "every invoice"
    console.print(f"{_again(granted)}customer {customer} redeemed coupon {found.id} ({found.label}): applies to {duration} "
                  f"(grant {granted.record.grant_id})")


@invoice_app.command("grant-credit")
def grant_credit(
    customer: str = typer.Option(..., "--customer", "-c", help="Customer id."),
    amount: str = typer.Option(..., "--amount", "-a", help="Amount, e.g. 100.00 (positive, currency decimals)."),
    code: str | None = typer.Option(None, "--currency", help="Currency (default and only choice: the customer's)."),
    grant_id: str | None = GrantIdOption,
) -> None:
    """Grant a customer prepaid credit: invoices consume it after tax until it is used up."""
    desk = _desk()
    granted = desk.grant_credit(customer, amount, code, grant_id=grant_id, now=_now())
    record = granted.record
    money = currency(record.currency)
    console.print(f"{_again(granted)}customer {customer} was granted {money.format(record.amount)} of prepaid credit "
                  f"({record.grant_id}); balance {money.format(desk.credit_balance(customer, money.code))}")


@invoice_app.command("grants")
def list_grants(customer: str = typer.Option(..., "--customer", "-c", help="Customer id.")) -> None:
    """List a customer's coupons and prepaid credits, active and revoked, with what is left of each."""
    found = _desk().standings(customer)
    table = Table(title=f"{customer}: {len(found):,} grant(s)")
    for header in ("grant", "granted (UTC)", "what", "status", "used", "left"):
        table.add_column(header, no_wrap=header in ("grant", "used", "left"))  # ids and amounts are never cut
    for standing in found:
        record = standing.record
        table.add_row(record.grant_id, f"{record.granted_at:%Y-%m-%d %H:%M}", _granted(record), _status(record),
                      *_usage(standing))
    console.print(table)
    for record in (s.record for s in found if s.record.revocation is not None and s.record.revocation.reason):
        console.print(f"[dim]{record.grant_id} revoked: {record.revocation.reason}[/]")


def _granted(record: GrantRecord) -> str:
    if record.kind is AdjustmentKind.COUPON:
        return f"coupon {record.coupon_id}"
    return f"credit {currency(record.currency).format(record.amount)}"


def _status(record: GrantRecord) -> str:
    return "active" if record.revocation is None else f"revoked {record.revocation.revoked_at:%Y-%m-%d %H:%M}"


def _usage(standing: Standing) -> tuple[str, str]:
    """Used and left: amounts of a credit, invoices of a coupon."""
    if standing.record.kind is AdjustmentKind.CREDIT:
        money = currency(standing.record.currency)
        return money.format(standing.used), money.format(standing.left)
    left = "every invoice" if standing.left is None else f"{standing.left} invoice(s)"
    return f"{standing.used} invoice(s)", left


@invoice_app.command("revoke-grant")
def revoke_grant(
    grant_id: str = typer.Argument(..., help="Grant id (see `billing invoice grants`)."),
    reason: str = typer.Option("", "--reason", "-r", help="Why, kept with the revocation."),
) -> None:
    """Revoke a coupon or credit: drafts recomputed from now on and later invoices no longer apply it."""
    record = _desk().revoke(grant_id, reason, now=_now())
    console.print(f"revoked grant {record.grant_id} ({record.describe()}): invoice runs and previews no longer apply it; "
                  "finalized and paid invoices keep it (re-run a period to update its drafts)")


def _transition(invoice_id: str, target: InvoiceStatus, reason: str | None = None) -> None:
    invoice = _invoicing().change_status(invoice_id, target, now=_now(), reason=reason)
    console.print(f"invoice {invoice.id} is {invoice.status.value} "
                  f"({currency(invoice.currency).format(invoice.total)}, published and recorded)")


@invoice_app.command()
def finalize(invoice_id: str = typer.Argument(..., help="Invoice id.")) -> None:
    """Issue a draft invoice: it gets issue and due dates and never changes again."""
    _transition(invoice_id, InvoiceStatus.FINALIZED)


@invoice_app.command()
def pay(invoice_id: str = typer.Argument(..., help="Invoice id.")) -> None:
    """Mark a finalized invoice as paid."""
    _transition(invoice_id, InvoiceStatus.PAID)


@invoice_app.command()
def void(
    invoice_id: str = typer.Argument(..., help="Invoice id."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the invoice)."),
) -> None:
    """Void a draft or finalized (unpaid) invoice."""
    _transition(invoice_id, InvoiceStatus.VOID, reason)


@invoice_app.command()
def rebill(
    invoice_id: str = typer.Argument(..., help="Id of a void invoice."),
    finalize: bool = typer.Option(False, "--finalize", help="Finalize the new invoice right away (default: a draft)."),
) -> None:
    """Bill a void invoice's customer and month again, on a new invoice linked to it (a finalized invoice is
    corrected by credit notes instead)."""
    summary = _invoicing().rebill(invoice_id, now=_now(), finalize=finalize)
    for invoice in summary.invoices:
        console.print(f"invoice {invoice.id} replaces {invoice.replaces}: {invoice.status.value}"
                      f"{' ' + invoice.number if invoice.number else ''}, {currency(invoice.currency).format(invoice.total)}")


@invoice_app.command("list")
def list_invoices(
    customer: str | None = typer.Option(None, "--customer", "-c", help="Only this customer."),
    period: str | None = typer.Option(None, "--period", "-p", help="Only this month, YYYY-MM."),
    status: InvoiceStatus | None = typer.Option(None, "--status", "-s", help="Only this status."),
) -> None:
    """List invoices (latest version of each)."""
    invoices = _invoicing().store.invoices(customer=customer, period=parse_period(period) if period else None, status=status)
    table = Table("invoice", "number", "customer", "period", "status", "lines", "total", title=f"{len(invoices):,} invoice(s)")
    for invoice in invoices:
        status = invoice.status.value + (f" (replaced by {invoice.replaced_by})" if invoice.replaced_by else "")
        table.add_row(invoice.id, invoice.number or "", invoice.customer_id,
                      f"{invoice.period_start:%Y-%m-%d} – {_last_day(invoice):%Y-%m-%d}",
                      status, str(len(invoice.line_items)), currency(invoice.currency).format(invoice.total))
    console.print(table)


@invoice_app.command("credit-notes")
def list_credit_notes(
    customer: str | None = typer.Option(None, "--customer", "-c", help="Only this customer."),
    period: str | None = typer.Option(None, "--period", "-p", help="Only those issued by this month's run, YYYY-MM."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also export them as CSV (one row per line) to this file."),
) -> None:
    """List the credit notes issued (unused parts of fees paid in advance, after plan changes and cancellations)."""
    notes = _invoicing().store.credit_notes(customer=customer, period=parse_period(period) if period else None)
    table = Table("number", "credit note", "customer", "credits invoice", "issued", "lines", "total",
                  title=f"{len(notes):,} credit note(s)")
    for note in notes:
        table.add_row(note.number, note.id, note.customer_id, note.invoice_id, f"{note.issued_at:%Y-%m-%d}",
                      str(len(note.lines)), currency(note.currency).format(note.total))
    console.print(table)
    if out is not None:
        with out.open("w", newline="") as handle:
            rows = write_credit_notes_csv(notes, handle)
        console.print(f"{out}: {len(notes):,} credit notes, {rows:,} lines")


def _last_day(invoice: Invoice) -> datetime:
    return invoice.period_end - timedelta(seconds=1)


@invoice_app.command()
def pdf(
    invoice_id: str = typer.Argument(..., help="Invoice id."),
    out: Path | None = typer.Option(None, "--out", "-o", help="PDF file (default: <invoice id>.pdf)."),
) -> None:
    """Render an invoice as a PDF."""
    invoicing = _invoicing()
    invoice = invoicing.get(invoice_id)
    party = invoicing.store.party(invoice.customer_id)
    if party is None:
        raise UnknownCustomer(f"invoice {invoice_id} belongs to {invoice.customer_id}, who is not in the customers table")
    path = render_pdf(invoice, party, out or Path(f"{invoice.id}.pdf"))
    console.print(f"PDF written to {path}")


@invoice_app.command("credit-note-pdf")
def credit_note_pdf(
    credit_note_id: str = typer.Argument(..., help="Credit note id (see `billing invoice credit-notes`)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="PDF file (default: <credit note id>.pdf)."),
) -> None:
    """Render a credit note as a PDF."""
    invoicing = _invoicing()
    found = invoicing.store.credit_notes(ids=[credit_note_id])
    if not found:
        raise UnknownInvoice(f"no credit note {credit_note_id!r} in the warehouse; see `billing invoice credit-notes`")
    note = found[0]
    party = invoicing.store.party(note.customer_id)
    if party is None:
        raise UnknownCustomer(f"credit note {credit_note_id} belongs to {note.customer_id}, who is not in the customers table")
    path = render_credit_note_pdf(note, party, out or Path(f"{note.id}.pdf"))
    console.print(f"PDF written to {path}")


@invoice_app.command()
def export(
    period: str = typer.Option(..., "--period", "-p", help="Month, YYYY-MM."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for invoices-<period>.csv and usage-<period>.csv."),
) -> None:
    """Export a month's invoices (one row per line) and usage per customer and meter (billable time only) as CSV."""
    month = parse_period(period)
    invoicing = _invoicing()
    invoices = invoicing.store.invoices(period=month)
    if not invoices:
        raise ConfigError(f"no invoices for {period}; run `billing invoice run --period {period}` first")
    out.mkdir(parents=True, exist_ok=True)
    invoices_path, usage_path = out / f"invoices-{period}.csv", out / f"usage-{period}.csv"
    with invoices_path.open("w", newline="") as handle:
        lines = write_invoices_csv(invoices, handle)
    with usage_path.open("w", newline="") as handle:
        usage = write_usage_csv(invoicing.period_usage(month), handle)
    console.print(f"{invoices_path}: {len(invoices):,} invoices, {lines:,} lines; {usage_path}: {usage:,} rows")
