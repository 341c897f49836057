"""`billing plans validate | list | show | quote`: check plan files and price ad-hoc usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.core.errors import ConfigError
from billing.core.meters import active_meters
from billing.core.pricing import CouponGrant, PlanCatalog, PlanTerm, TaxProfile, load_catalog, price_invoice
from billing.core.pricing.money import currency
from billing.core.pricing.plans import Coupon, FlatCharge, PackageCharge, PercentageCharge, PerUnitCharge, Plan
from billing.core.pricing.proration import Period, plan_period
from billing.settings import configured_catalog

plans_app = typer.Typer(help="Price plans: validate files, inspect plans, quote usage.", no_args_is_help=True)
app.add_typer(plans_app, name="plans")

CatalogOption = typer.Option(None, "--catalog", "-c", help="Catalog file or folder (default: BILLING_PLANS_DIR or the example plans).")


def _catalog(path: Path | None) -> PlanCatalog:
    return load_catalog([path]) if path is not None else configured_catalog()


@plans_app.command()
def validate(files: list[Path] = typer.Argument(..., help="Plan catalog files or folders (YAML or JSON).")) -> None:
    """Check plan files; print what they define, or one located error per problem."""
    catalog = load_catalog(files)
    known = set(active_meters().names)
    for plan in catalog.plans.values():
        unknown = [meter for meter in plan.meters if meter not in known]
        if unknown:
            console.print(f"[yellow]warning:[/] plan {plan.id!r} reads meters not configured here: {', '.join(unknown)}")
    console.print(
        f"[green]ok[/]: {len(catalog.plans)} plan(s), {len(catalog.coupons)} coupon(s), "
        f"{len(catalog.tax_rules)} tax rule(s) in {len(files)} path(s)"
    )


@plans_app.command("list")
def list_plans(catalog_path: Path | None = CatalogOption) -> None:
    """List the plans and coupons of the catalog."""
    catalog = _catalog(catalog_path)
    table = _id_table("plans", "name", "currency", "interval", "charges", "minimum")
    for plan in catalog.plans.values():
        models = ", ".join(f"{charge.id} ({charge.model})" for charge in plan.charges)
        minimum = plan.money.format(plan.minimum_commitment) if plan.minimum_commitment is not None else "-"
        table.add_row(plan.id, plan.name, plan.currency, plan.interval, models, minimum)
    console.print(table)
    coupons = _id_table("coupons", "name", "discount", "duration")
    for coupon in catalog.coupons.values():
        coupons.add_row(coupon.id, coupon.name, _discount(coupon), _duration(coupon))
    console.print(coupons)


def _id_table(title: str, *headers: str) -> Table:
    """A table whose first column is an id, never cut: it is what the other commands take."""
    table = Table(title=title)
    table.add_column("id", no_wrap=True)
    for header in headers:
        table.add_column(header)
    return table


def _discount(coupon: Coupon) -> str:
    """``20% off`` or ``50.00 USD off``."""
    if coupon.percent_off is not None:
        return f"{coupon.percent_off}% off"
    return f"{currency(coupon.currency).format(coupon.amount_off)} off"


def _duration(coupon: Coupon) -> str:
    """How many invoices a coupon discounts."""
    return "every invoice" if coupon.duration_periods is None else f"first {coupon.duration_periods} invoice(s)"


@plans_app.command()
def show(plan_id: str = typer.Argument(..., help="Plan id."), catalog_path: Path | None = CatalogOption) -> None:
    """Show one plan with every charge, tier and price."""
    plan = _catalog(catalog_path).plan(plan_id)
    console.print(f"[bold]{plan.name}[/] ({plan.id}) · {plan.currency} per {plan.interval}")
    if plan.description:
        console.print(plan.description)
    if plan.minimum_commitment is not None:
        console.print(f"minimum commitment: {plan.money.format(plan.minimum_commitment)} per {plan.interval}")
    for charge in plan.charges:
        console.print(f"\n[bold]{charge.label}[/] [dim]{charge.id} · {charge.model}[/]")
        for line in _describe_charge(plan, charge):
            console.print(f"  {line}")
        tiers = getattr(charge, "tiers", None)
        if tiers:
            table = Table("tier", "from (exclusive)", "up to (inclusive)", "unit price", "flat fee")
            for number, tier in enumerate(tiers, 1):
                table.add_row(str(number), f"{tier.from_:,}", "∞" if tier.up_to is None else f"{tier.up_to:,}",
                              str(tier.unit_price), str(tier.flat_fee))
            console.print(table)


@plans_app.command()
def quote(
    plan_id: str = typer.Option(..., "--plan", "-p", help="Plan id."),
    usage: list[str] = typer.Option([], "--usage", "-u", help="meter=quantity (repeatable)."),
    country: str | None = typer.Option(None, help="Customer country (ISO 3166-1 alpha-2) for taxes."),
    region: str | None = typer.Option(None, help="Customer state/province for regional taxes."),
    coupon: list[str] = typer.Option([], help="Coupon id (repeatable)."),
    credits: str = typer.Option("0", help="Prepaid credit balance in the plan currency."),
    start: str | None = typer.Option(None, help="Active from (ISO date/time, UTC) for a prorated quote."),
    end: str | None = typer.Option(None, help="Active until (ISO date/time, UTC), e.g. a cancellation."),
    month: str | None = typer.Option(None, help="Billing period containing this date (default: today, UTC)."),
    pdf: Path | None = typer.Option(None, help="Also render the quote as a PDF at this path."),
    catalog_path: Path | None = CatalogOption,
) -> None:
    """Price ad-hoc usage on a plan and show every line with its computation."""
    catalog = _catalog(catalog_path)
    plan = catalog.plan(plan_id)
    period = plan_period(plan.interval, _moment(month) if month else datetime.now(UTC))
    active = period
    if start or end:
        active = Period(_moment(start) if start else period.start, _moment(end) if end else period.end)
    quantities = _usage(usage)
    priced = price_invoice(
        period,
        [PlanTerm(plan, active, quantities)],
        bill_to=TaxProfile(country, region),
        coupons=[CouponGrant(catalog.coupon(code)) for code in coupon],
        credit_balance=_decimal("credits", credits),
        tax_rules=catalog.tax_rules,
    )
    money = priced.currency
    title = f"{plan.name} · {period.start:%d %b %Y} – {(period.end - timedelta(seconds=1)):%d %b %Y}"
    table = Table("line / step", "units", "unit price", "flat fee", "amount", title=title)
    for line in priced.lines:
        table.add_row(f"[bold]{line.description}[/]", f"{line.quantity:,}", "", "", f"[bold]{money.format(line.amount)}[/]")
        for step in line.steps:
            flat = str(step.flat_fee) if step.flat_fee else ""
            table.add_row(f"[dim]  {step.description}[/]", f"[dim]{_short(step.units)}", f"[dim]{step.unit_price}", f"[dim]{flat}",
                          f"[dim]{_short(step.amount)}")
    console.print(table)
    console.print(f"subtotal        {money.format(priced.subtotal)}")
    for discount in priced.discounts:
        console.print(f"discount        -{money.format(discount.amount)}  {discount.description}")
    for tax in priced.taxes:
        console.print(f"{tax.name} {tax.rate}%".ljust(16) + money.format(tax.amount))
    console.print(f"total           {money.format(priced.total)}")
    if priced.credits_applied:
        console.print(f"credits         -{money.format(priced.credits_applied)}")
    console.print(f"[bold]amount due      {money.format(priced.amount_due)}[/]")
    if pdf is not None:
        from billing.core.pricing.invoice import to_invoice
        from billing.invoicing.pdf import BillTo as Party
        from billing.invoicing.pdf import render_pdf

        issued = datetime.now(UTC).replace(microsecond=0)
        invoice = to_invoice(priced, invoice_id=f"QUOTE-{plan.id}-{issued:%Y%m%d%H%M%S}", customer_id="quote",
                             issued_at=issued, due_at=issued)
        render_pdf(invoice, Party("Quote", "quote", lines=(f"Country: {country}",) if country else ()), pdf)
        console.print(f"PDF written to {pdf}")


def _describe_charge(plan: Plan, charge) -> list[str]:
    money = plan.money
    lines = []
    if getattr(charge, "meter", None):
        lines.append(f"meter: {charge.meter}" + (f" ({charge.free_units:,} units included)" if charge.free_units else ""))
    if isinstance(charge, FlatCharge):
        lines.append(f"{money.format(charge.amount)} per {plan.interval}" + (", prorated" if charge.prorate else ""))
    elif isinstance(charge, PerUnitCharge):
        lines.append(f"{charge.unit_price} {money.code} per unit")
    elif isinstance(charge, PackageCharge):
        lines.append(f"{money.format(charge.package_price)} per started package of {charge.package_size:,} units")
    elif isinstance(charge, PercentageCharge):
        fee = f" + {charge.fixed_fee} per transaction ({charge.count_meter})" if charge.fixed_fee else ""
        lines.append(f"{charge.rate}% of the amount{fee}")
        if charge.min_amount is not None or charge.max_amount is not None:
            lines.append(f"per period: at least {charge.min_amount or 0}, "
                         f"at most {charge.max_amount if charge.max_amount is not None else 'unlimited'}")
    return lines


def _short(value: Decimal) -> str:
    """Exact values with more than 6 decimals (prorations) shown to 6 decimals, marked with ``~``."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        return f"~{value.quantize(Decimal('1e-6')):,}"
    return f"{value:,}"


def _usage(pairs: list[str]) -> dict[str, Decimal]:
    quantities: dict[str, Decimal] = {}
    for pair in pairs:
        meter, sep, value = pair.partition("=")
        if not sep or not meter:
            raise ConfigError(f"--usage {pair!r}: expected meter=quantity, e.g. api_calls=125000")
        quantities[meter.strip()] = _decimal(f"--usage {meter}", value)
    return quantities


def _decimal(name: str, text: str) -> Decimal:
    try:
        value = Decimal(text.replace("_", "").replace(",", ""))
    except InvalidOperation:
        raise ConfigError(f"{name}: {text!r} is not a number") from None
    if not value.is_finite():
        raise ConfigError(f"{name}: {text!r} is not a finite number")
    return value


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not an ISO date or date-time (e.g. 2024-02-16 or 2024-02-16T12:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
