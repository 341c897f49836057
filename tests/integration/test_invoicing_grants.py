"""Coupons and prepaid credits customers hold, granted, listed and revoked, applied by the invoice run and preview,
through the CLI too.

Expected discounts and credits are recomputed here from the invoices' own subtotals and totals,
not from the grants code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pytest
from typer.testing import CliRunner

from billing.cli import invoice_cmds  # noqa: F401  (registers the commands)
from billing.cli.app import app, console
from billing.core.contracts import AdjustmentKind, Invoice, InvoiceStatus
from billing.core.errors import ConfigError
from billing.core.invoicing.errors import GrantConflict, GrantRevoked, UnknownCustomer, UnknownGrant
from billing.core.pricing import builtin_catalog
from billing.core.pricing.plans import Coupon
from billing.invoicing.grant_records import GrantDesk
from billing.invoicing.run import Invoicing
from tests.integration.invoicing_data import SEPTEMBER, business_records, count

MID_OCTOBER, MID_NOVEMBER, DECEMBER_2 = (datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC),
                                         datetime(2026, 12, 2, tzinfo=UTC))
MONTHS = (("2026-09", MID_OCTOBER), ("2026-10", MID_NOVEMBER), ("2026-11", DECEMBER_2))
CENT = Decimal("0.01")
runner = CliRunner()


def two_months_catalog():
    catalog = builtin_catalog()
    catalog.coupons["twomonths15"] = Coupon(id="twomonths15", name="Two months 15%", percent_off=Decimal(15), duration_periods=2)
    return catalog


def steady(world, currency: str = "USD") -> list[str]:
    """Customers in ``currency`` subscribed before September and never canceled, by id."""
    customers, events = business_records(world.records)
    known = {c.id: c for c in customers}
    ids = sorted({e.customer_id for e in events})
    return [c for c in ids if known[c].currency == currency
            and all(e.effective_time < SEPTEMBER and e.end_time is None for e in events if e.customer_id == c)]


def run_months(invoicing: Invoicing, customer_id: str, months=MONTHS, finalize: bool = False) -> list[Invoice]:
    """The customer's invoice of each month, as run."""
    return [next(inv for inv in invoicing.run_period(period, now=now, finalize=finalize).invoices if inv.customer_id == customer_id)
            for period, now in months]


def desk(invoicing: Invoicing) -> GrantDesk:
    return GrantDesk(invoicing.store, invoicing.catalog)


def of_kind(invoice: Invoice, kind: AdjustmentKind):
    return [a for a in invoice.adjustments if a.kind is kind]


def test_a_two_month_percent_coupon_discounts_exactly_the_first_two_billed_months(world):
    invoicing = Invoicing(world.settings, catalog=two_months_catalog())
    holder, other = steady(world)[:2]
    desk(invoicing).grant_coupon(holder, "twomonths15", now=MID_OCTOBER - timedelta(days=20))
    september, october, november = run_months(invoicing, holder)
    for number, invoice in enumerate((september, october), start=1):
        assert invoice.subtotal > 0
        (discount,) = of_kind(invoice, AdjustmentKind.COUPON)
        assert discount.code == "twomonths15" and discount.percent_off == 15
        assert discount.amount == (invoice.subtotal * Decimal("0.15")).quantize(CENT, rounding=ROUND_HALF_UP)
        assert discount.description.endswith(f"period {number} of 2")
        assert invoice.discount_total == discount.amount and invoice.total == invoice.subtotal - discount.amount + invoice.tax
    assert november.adjustments == () and november.total == november.subtotal + november.tax
    assert count(world.ch, world.db, "invoice_adjustments", "code = 'twomonths15'") == 2
    assert count(world.ch, world.db, "invoice_adjustments") == 2  # nobody else holds anything
    assert not any(inv.adjustments for inv in invoicing.store.invoices(customer=other))

    again = run_months(invoicing, holder, finalize=True)  # re-runs: each month keeps its own discount
    assert [inv.adjustments for inv in again] == [september.adjustments, october.adjustments, ()]
    invoicing.change_status(september.id, InvoiceStatus.VOID, now=DECEMBER_2)  # a void invoice gives its period back
    (december,) = run_months(invoicing, holder, [("2026-12", datetime(2027, 1, 2, tzinfo=UTC))])
    assert [a.description.rsplit(", ", 1)[1] for a in of_kind(december, AdjustmentKind.COUPON)] == ["period 2 of 2"]


def test_credits_are_consumed_across_months_until_exhausted_and_never_twice(world):
    invoicing = Invoicing(world.settings)
    holder = steady(world)[0]
    full = run_months(invoicing, holder)  # drafts without credit: what each month costs
    assert all(inv.total > 0 for inv in full)
    granted = full[0].total + (full[1].total / 2).quantize(CENT)
    half = (granted / 2).quantize(CENT, rounding=ROUND_DOWN)
    first = desk(invoicing).grant_credit(holder, str(half), now=MID_OCTOBER).record
    second = desk(invoicing).grant_credit(holder, granted - half, "usd", now=MID_OCTOBER).record
    assert first.grant_id != second.grant_id and desk(invoicing).credit_balance(holder, "USD") == granted

    september, october, november = run_months(invoicing, holder)
    assert [sum(a.amount for a in of_kind(inv, AdjustmentKind.CREDIT)) for inv in (september, october, november)] == [
        full[0].total, granted - full[0].total, 0]
    assert (september.total, october.total, november.total) == (0, full[1].total - (granted - full[0].total), full[2].total)
    assert all(inv.total >= 0 and inv.subtotal == before.subtotal for inv, before in zip((september, october, november), full, strict=True))

    rerun = invoicing.run_period("2026-09", now=MID_OCTOBER + timedelta(hours=1), finalize=True)
    assert rerun.finalized == 30 and next(i for i in rerun.invoices if i.customer_id == holder).total == 0
    again = run_months(invoicing, holder, MONTHS[1:])  # nothing consumed twice
    assert [(inv.adjustments, inv.total) for inv in again] == [(inv.adjustments, inv.total) for inv in (october, november)]
    consumed = world.ch.query(f"SELECT sum(amount) FROM {world.db}.invoice_adjustments FINAL WHERE kind = 'credit'").result_rows
    assert consumed[0][0] == granted

    invoicing.change_status(october.id, InvoiceStatus.VOID, now=DECEMBER_2)  # released credit pays the next invoice
    (rerun_november,) = run_months(invoicing, holder, [("2026-11", DECEMBER_2 + timedelta(hours=1))])
    assert sum(a.amount for a in of_kind(rerun_november, AdjustmentKind.CREDIT)) == min(granted - full[0].total, full[2].total)


def test_bad_grants_are_one_clear_error_and_write_nothing(world):
    invoicing = Invoicing(world.settings)
    grants = desk(invoicing)
    usd, eur = steady(world)[0], steady(world, "EUR")[0]
    for call, error, message in (
        (lambda: grants.grant_coupon("cus-nobody", "launch20", now=MID_OCTOBER), UnknownCustomer, "no customer 'cus-nobody'"),
        (lambda: grants.grant_coupon(usd, "free4ever", now=MID_OCTOBER), ConfigError, "unknown coupon 'free4ever'; known: launch20"),
        (lambda: grants.grant_coupon(eur, "welcome50", now=MID_OCTOBER), ConfigError, "takes USD off but the customer is billed in EUR"),
        (lambda: grants.grant_coupon(usd, "launch20", grant_id="no spaces", now=MID_OCTOBER), ConfigError, "grant id 'no spaces'"),
        (lambda: grants.grant_credit("cus-nobody", "10", now=MID_OCTOBER), UnknownCustomer, "no customer 'cus-nobody'"),
        (lambda: grants.grant_credit(usd, "-10", now=MID_OCTOBER), ConfigError, "must be positive, got -10"),
        (lambda: grants.grant_credit(usd, "10.001", now=MID_OCTOBER), ConfigError, "more decimals than USD allows"),
        (lambda: grants.grant_credit(usd, "ten", now=MID_OCTOBER), ConfigError, "'ten' is not an amount"),
        (lambda: grants.grant_credit(usd, "10", "XYZ", now=MID_OCTOBER), ConfigError, "unknown currency 'XYZ'"),
        (lambda: grants.grant_credit(usd, "10", "EUR", now=MID_OCTOBER), ConfigError, "billed in USD; a credit in EUR would never pay"),
    ):
        with pytest.raises(error, match=message):
            call()
    assert count(world.ch, world.db, "customer_coupons") == count(world.ch, world.db, "customer_credits") == 0

    desk(Invoicing(world.settings, catalog=two_months_catalog())).grant_coupon(eur, "twomonths15", now=MID_OCTOBER)
    with pytest.raises(ConfigError, match=f"customer {eur}: unknown coupon 'twomonths15'.*; nothing was written"):
        invoicing.run_period("2026-09", now=MID_OCTOBER)  # the catalog no longer offers a coupon the customer holds
    assert count(world.ch, world.db, "invoices") == count(world.ch, world.db, "invoice_spans") == 0


def test_the_same_grant_again_is_a_no_op_and_a_used_grant_id_for_another_grant_is_an_error(world):
    grants = desk(Invoicing(world.settings))
    holder, other = steady(world)[:2]
    first = grants.grant_credit(holder, "25", grant_id="ticket-4711", now=MID_OCTOBER)
    again = grants.grant_credit(holder, "25.00", "USD", grant_id="ticket-4711", now=MID_OCTOBER + timedelta(hours=1))
    assert (first.created, again.created) == (True, False) and again.record.granted_at == first.record.granted_at
    for call, message in (
        (lambda: grants.grant_credit(holder, "26", grant_id="ticket-4711", now=MID_OCTOBER), "already credit of 25.00 USD for"),
        (lambda: grants.grant_credit(other, "25", grant_id="ticket-4711", now=MID_OCTOBER), f"not credit of 25.00 USD for {other}"),
        (lambda: grants.grant_coupon(holder, "launch20", grant_id="ticket-4711", now=MID_OCTOBER), "not coupon launch20"),
    ):
        with pytest.raises(GrantConflict, match=message):
            call()
    assert count(world.ch, world.db, "customer_credits") == 1 and grants.credit_balance(holder, "USD") == 25

    coupon = grants.grant_coupon(holder, "launch20", now=MID_OCTOBER)
    assert coupon.created and coupon.record.grant_id == f"cpn-{holder}-launch20"
    assert not grants.grant_coupon(holder, "launch20", now=MID_OCTOBER + timedelta(minutes=1)).created
    with pytest.raises(ConfigError, match=f"customer {holder} already redeemed coupon 'launch20' .grant cpn-{holder}-launch20, held."):
        grants.grant_coupon(holder, "launch20", grant_id="ticket-4712", now=MID_OCTOBER)
    assert count(world.ch, world.db, "customer_coupons") == 1


def test_revoking_stops_a_grant_on_drafts_but_finalized_invoices_keep_it(world):
    invoicing = Invoicing(world.settings)
    grants = desk(invoicing)
    holder = steady(world)[0]
    invoicing.store.write_coupon(holder, "launch20", MID_OCTOBER - timedelta(days=1))  # as recorded before migration 0006
    credit = grants.grant_credit(holder, "100000", now=MID_OCTOBER).record
    september, october = run_months(invoicing, holder, MONTHS[:1], finalize=True) + run_months(invoicing, holder, MONTHS[1:2])
    for invoice in (september, october):
        assert [a.kind for a in invoice.adjustments] == [AdjustmentKind.COUPON, AdjustmentKind.CREDIT] and invoice.total == 0
    taken = sum(a.amount for a in of_kind(september, AdjustmentKind.CREDIT))

    revoked = grants.revoke(f"cpn-{holder}-launch20", "sold by mistake", now=MID_NOVEMBER)
    assert revoked.revocation.reason == "sold by mistake"
    grants.revoke(credit.grant_id, now=MID_NOVEMBER)
    (rerun,) = run_months(invoicing, holder, [("2026-10", MID_NOVEMBER + timedelta(hours=1))])
    assert rerun.id == october.id and rerun.adjustments == () and rerun.total == rerun.subtotal + rerun.tax > 0
    (kept,) = invoicing.store.invoices(ids=[september.id])  # finalized: untouched
    assert (kept.status, set(kept.adjustments), kept.total) == (InvoiceStatus.FINALIZED, set(september.adjustments), 0)
    assert [s.used for s in grants.standings(holder)] == [1, taken] and [s.left for s in grants.standings(holder)] == [0, 0]
    assert count(world.ch, world.db, "customer_coupons") == count(world.ch, world.db, "customer_credits") == 1
    assert count(world.ch, world.db, "grant_revocations") == 2

    with pytest.raises(GrantRevoked, match=f"grant {credit.grant_id} .credit of 100,000.00 USD for {holder}. was already revoked"):
        grants.revoke(credit.grant_id, "twice", now=MID_NOVEMBER)
    with pytest.raises(UnknownGrant, match="no grant 'crd-nope'; see `billing invoice grants --customer ID`"):
        grants.revoke("crd-nope", now=MID_NOVEMBER)
    with pytest.raises(ConfigError, match="already redeemed coupon 'launch20' .* revoked"):
        grants.grant_coupon(holder, "launch20", grant_id="again", now=MID_NOVEMBER)
    assert count(world.ch, world.db, "grant_revocations") == 2


def flat(output: str) -> str:
    return " ".join(output.split())


def test_cli_grants_and_the_preview_shows_them(cli_env):
    holder = steady(cli_env)[0]
    granted = runner.invoke(app, ["invoice", "grant-coupon", "--customer", holder, "--coupon", "partner10"], terminal_width=200)
    assert granted.exit_code == 0, granted.output
    assert f"customer {holder} redeemed coupon partner10 (Partner discount): applies to every invoice" in flat(granted.output)
    credit = runner.invoke(app, ["invoice", "grant-credit", "-c", holder, "--amount", "25"], terminal_width=200)
    assert credit.exit_code == 0, credit.output
    assert "was granted 25.00 USD of prepaid credit" in flat(credit.output) and "balance 25.00 USD" in flat(credit.output)
    negative = runner.invoke(app, ["invoice", "grant-credit", "-c", holder, "--amount", "-5"])
    assert negative.exit_code == 1 and "must be positive, got -5" in str(negative.exception)

    preview = runner.invoke(app, ["invoice", "preview", "--customer", holder], terminal_width=200)
    assert preview.exit_code == 0, preview.output
    shown = flat(preview.output)
    assert "coupon -" in shown and "Partner discount (10% off)" in shown
    assert "prepaid credits -" in shown and "of 25.00 USD available" in shown and "amount due" in shown


def rows(output: str) -> list[list[str]]:
    """The body cells of the rich table in ``output``."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]


def test_cli_lists_what_is_left_of_each_grant_and_revokes(cli_env, monkeypatch):
    monkeypatch.setattr(console, "width", 200)  # one line per table row
    invoicing = Invoicing(cli_env.settings)
    holder = steady(cli_env)[0]
    coupon = runner.invoke(app, ["invoice", "grant-coupon", "-c", holder, "--coupon", "launch20", "--grant-id", "promo-1"],
                           terminal_width=200)
    assert coupon.exit_code == 0 and "applies to 3 invoice(s) (grant promo-1)" in flat(coupon.output)
    (before,) = run_months(invoicing, holder, MONTHS[:1])
    granted = before.total + Decimal("12.34")
    command = ["invoice", "grant-credit", "-c", holder, "--amount", str(granted), "--grant-id", "crm-9"]
    assert f"balance {granted:,} USD" in flat(runner.invoke(app, command, terminal_width=200).output)
    (september,) = run_months(invoicing, holder, MONTHS[:1])
    assert sum(a.amount for a in of_kind(september, AdjustmentKind.CREDIT)) == before.total > 0

    again = runner.invoke(app, command, terminal_width=200)
    assert again.exit_code == 0 and "already recorded, nothing written: customer" in flat(again.output)
    assert "balance 12.34 USD" in flat(again.output) and count(cli_env.ch, cli_env.db, "customer_credits") == 1
    listed = runner.invoke(app, ["invoice", "grants", "--customer", holder], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert [row[:1] + row[2:] for row in rows(listed.output)] == [
        ["promo-1", "coupon launch20", "active", "1 invoice(s)", "2 invoice(s)"],
        ["crm-9", f"credit {granted:,} USD", "active", f"{before.total:,} USD", "12.34 USD"],
    ]

    revoked = runner.invoke(app, ["invoice", "revoke-grant", "promo-1", "--reason", "duplicate promo"], terminal_width=200)
    assert revoked.exit_code == 0 and f"revoked grant promo-1 (coupon launch20 for {holder})" in flat(revoked.output)
    after = runner.invoke(app, ["invoice", "grants", "-c", holder], terminal_width=200).output
    (coupon_row, credit_row) = rows(after)
    assert coupon_row[3].startswith("revoked 20") and coupon_row[5] == "0 invoice(s)" and credit_row[3] == "active"
    assert "promo-1 revoked: duplicate promo" in after
    twice = runner.invoke(app, ["invoice", "revoke-grant", "promo-1"])
    assert twice.exit_code == 1 and isinstance(twice.exception, GrantRevoked) and "(duplicate promo)" in str(twice.exception)
    unknown = runner.invoke(app, ["invoice", "grants", "-c", "cus-nobody"])
    assert isinstance(unknown.exception, UnknownCustomer)
