"""The invoice run never bills a customer twice for the same time: other invoices that overlap the
month (the simulator's anniversary invoices, stored by the worker) make it skip the customer, and say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from typer.testing import CliRunner

from billing.cli import invoice_cmds  # noqa: F401  (registers the commands)
from billing.cli.app import app
from billing.core.contracts import Invoice, InvoiceStatus, LineItem, LineKind
from billing.core.invoicing.periods import invoice_id
from billing.core.pricing import Period
from billing.core.pricing.proration import month_period
from billing.invoicing.run import SUPERSEDED, Invoicing
from tests.integration.invoicing_data import SEPTEMBER, business_records, count

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
MID_OCTOBER = datetime(2026, 10, 15, tzinfo=UTC)
SEPT = Period(SEPTEMBER, OCTOBER)
runner = CliRunner()


def other_invoice(customer_id: str, start: datetime, end: datetime, status: InvoiceStatus = InvoiceStatus.FINALIZED) -> Invoice:
    """An invoice of another source for ``[start, end)``, with the simulator's id form ``inv-<n>-<YYYYMMDD>``."""
    fee = Decimal("49.00")
    issued = end + timedelta(hours=1)
    return Invoice(
        id=f"inv-{customer_id.removeprefix('cus-')}-{end:%Y%m%d}", customer_id=customer_id, period_start=start, period_end=end,
        currency="USD", line_items=(LineItem(kind=LineKind.SUBSCRIPTION, charge="starter", quantity=1, unit_price=fee, amount=fee),),
        subtotal=fee, total=fee, status=status, issued_at=issued, due_at=issued + timedelta(days=14),
        voided_at=issued if status is InvoiceStatus.VOID else None, event_time=issued,
    )


def subscribed(world) -> list[str]:
    """Customers subscribed before September and never canceled (billed for all of September), by id."""
    _, events = business_records(world.records)
    return sorted({e.customer_id for e in events} - {e.customer_id for e in events if e.effective_time >= SEPTEMBER or e.end_time})


def flat(output: str) -> str:
    """CLI output as one line of words (table borders dropped)."""
    return " ".join(output.replace("│", " ").split())


def test_run_skips_customers_already_invoiced_for_part_of_the_month_and_reports_them(cli_env):
    world = cli_env
    overlapped, touching, voided = subscribed(world)[:3]
    blocker = other_invoice(overlapped, datetime(2026, 8, 20, tzinfo=UTC), datetime(2026, 9, 20, tzinfo=UTC))
    before = other_invoice(touching, datetime(2026, 8, 1, tzinfo=UTC), SEPTEMBER)  # ends when September starts
    void = other_invoice(voided, datetime(2026, 9, 10, tzinfo=UTC), datetime(2026, 10, 10, tzinfo=UTC), InvoiceStatus.VOID)
    invoicing = Invoicing(world.settings)
    invoicing.store.write_invoices([blocker, before, void])

    result = runner.invoke(app, ["invoice", "run", "--period", "2026-09"], terminal_width=200)
    assert result.exit_code == 0, result.output
    shown = flat(result.output)
    assert "new invoices 29" in shown and "skipped: already invoiced (other invoices) 1" in shown
    assert f"{overlapped}: {blocker.id}" in shown
    stored = {inv.customer_id: inv for inv in invoicing.store.invoices(period=SEPT) if inv.id == invoice_id(inv.customer_id, SEPT)}
    assert len(stored) == 29 and overlapped not in stored and {touching, voided} <= set(stored)
    assert count(world.ch, world.db, "invoices", f"invoice_id = '{invoice_id(overlapped, SEPT)}'") == 0
    assert count(world.ch, world.db, "invoice_spans", f"customer_id = '{overlapped}'") == 0

    again = invoicing.run_period("2026-09", now=datetime.now(UTC))  # after the CLI's run, which ran at the real time
    assert (again.created, again.updated, again.unchanged, again.voided) == (0, 0, 29, 0)
    assert again.skipped == {overlapped: (blocker.id,)}
    assert world.ch.query(f"SELECT count(), uniqExact(invoice_id) FROM {world.db}.invoices").result_rows[0] == (32, 32)


def test_an_own_draft_of_time_invoiced_elsewhere_later_is_voided_once_and_billed_again_when_that_goes(world):
    invoicing = Invoicing(world.settings)
    first = invoicing.run_period("2026-09", now=MID_OCTOBER)
    assert first.created == 30 and first.skipped == {}
    customer = subscribed(world)[0]
    own = invoice_id(customer, SEPT)
    first_draft = invoicing.get(own)
    blocker = other_invoice(customer, datetime(2026, 9, 25, tzinfo=UTC), datetime(2026, 10, 25, tzinfo=UTC))
    invoicing.store.write_invoices([blocker])

    rerun = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=1))
    assert rerun.skipped == {customer: (blocker.id,)} and rerun.voided == 1 and rerun.unchanged == 29
    voided = invoicing.get(own)
    assert voided.status is InvoiceStatus.VOID and voided.voided_at == MID_OCTOBER + timedelta(hours=1)
    assert customer not in {inv.customer_id for inv in rerun.invoices}

    assert voided.void_reason == SUPERSEDED

    last = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=2))
    assert (last.frozen, last.voided, last.revived, last.skipped, last.unchanged) == (0, 0, 0, {customer: (blocker.id,)}, 29)
    assert count(world.ch, world.db, "invoices", f"invoice_id = '{own}'") == 2

    invoicing.change_status(blocker.id, InvoiceStatus.VOID, now=MID_OCTOBER + timedelta(hours=3), reason="billed twice")
    billed = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=4))
    assert (billed.revived, billed.created, billed.skipped, billed.unchanged) == (1, 1, {}, 29)
    again = invoicing.get(own)
    assert again.status is InvoiceStatus.DRAFT and (again.voided_at, again.void_reason) == (None, None)
    assert again.line_items == first_draft.line_items and again.total == first_draft.total
    assert count(world.ch, world.db, "invoice_lines", f"invoice_id = '{own}'") == len(first_draft.line_items)
    assert invoicing.get(blocker.id).void_reason == "billed twice"

    user_void = invoicing.change_status(own, InvoiceStatus.VOID, now=MID_OCTOBER + timedelta(hours=5))
    assert user_void.void_reason is None
    final = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=6))
    assert (final.frozen, final.revived, final.created) == (1, 0, 0)


def test_preview_notes_time_already_invoiced_instead_of_an_amount_due(cli_env):
    world = cli_env
    customer, other = subscribed(world)[:2]
    month = month_period(datetime.now(UTC))
    blocker = other_invoice(customer, month.start - timedelta(days=10), month.start + timedelta(days=20))
    invoicing = Invoicing(world.settings)
    invoicing.store.write_invoices([blocker])

    assert invoicing.preview(customer, now=month.start + timedelta(days=5)).already_invoiced == (blocker.id,)
    assert invoicing.preview(other, now=month.start + timedelta(days=5)).already_invoiced == ()
    shown = flat(runner.invoke(app, ["invoice", "preview", "--customer", customer], terminal_width=200).output)
    assert f"not due: {blocker.id} already bill part of {month.start:%Y-%m}" in shown
    assert "not due" not in flat(runner.invoke(app, ["invoice", "preview", "--customer", other], terminal_width=200).output)
