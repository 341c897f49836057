"""Pure invoice composition: plan spans + usage + catalog -> priced invoice -> ``Invoice`` contract.

Plans: a span's plan id is a *product*; the plan billed is the catalog's plan for that product in
the customer's currency and the subscription's billing interval (:meth:`PlanCatalog.plan_for`),
never another currency or interval. Fees billed once per cycle come from
:mod:`~billing.core.invoicing.cycles`; the spans' segments bill the rest.

Late usage: a finalized invoice is never edited. When an earlier period is priced again with the
current usage and a charge differs from what was billed for it (its own line plus corrections
already billed on later invoices), the difference becomes a ``correction`` line on the invoice
being composed, charge ``<plan>.<charge>@<YYYY-MM>``, taxed with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.core.contracts import Invoice, InvoiceStatus, LineItem, LineKind
from billing.core.invoicing.errors import NoSubscription
from billing.core.invoicing.grants import Grants
from billing.core.invoicing.periods import label
from billing.core.invoicing.timeline import PlanSpan
from billing.core.pricing import PlanCatalog, PlanTerm, PricedInvoice, TaxProfile, price_invoice
from billing.core.pricing.charges import Step
from billing.core.pricing.engine import CycleFee, Line, Transactions
from billing.core.pricing.invoice import to_invoice
from billing.core.pricing.plans import FlatCharge
from billing.core.pricing.proration import Period

ZERO = Decimal(0)
CORRECTION_MARK = "@"


@dataclass(frozen=True, slots=True)
class BillingCustomer:
    """What invoicing needs to know about a customer."""

    id: str
    currency: str
    country: str | None = None
    tax_region: str | None = None
    tax_exempt: bool = False

    @property
    def bill_to(self) -> TaxProfile:
        return TaxProfile(self.country, self.tax_region, self.tax_exempt)


@dataclass(frozen=True, slots=True)
class Billed:
    """Quantity and amount billed so far for one charge code of one period."""

    quantity: Decimal = ZERO
    amount: Decimal = ZERO

    def __add__(self, other: Billed) -> Billed:
        return Billed(self.quantity + other.quantity, self.amount + other.amount)


def terms(customer: BillingCustomer, spans: Sequence[PlanSpan], usage: Sequence[Mapping[str, Decimal]],
             catalog: PlanCatalog, transactions: Sequence[Transactions] | None = None) -> list[PlanTerm]:
    """One pricing term per span: the product's plan in the customer's currency, its usage and transactions."""
    if not spans:
        raise NoSubscription(f"customer {customer.id} has no subscription billable in this period")
    singles = transactions if transactions is not None else [{} for _ in spans]
    return [PlanTerm(catalog.plan_for(span.plan_id, customer.currency, span.interval), span.period, dict(quantities),
                     fees_by_cycle=True, transactions=found, anniversary=span.anniversary)
            for span, quantities, found in zip(spans, usage, singles, strict=True)]


def price(period: Period, customer: BillingCustomer, spans: Sequence[PlanSpan], usage: Sequence[Mapping[str, Decimal]],
          catalog: PlanCatalog, corrections: Sequence[Line] = (), grants: Grants = Grants(),
          cycle_fees: Sequence[CycleFee] = (), transactions: Sequence[Transactions] | None = None) -> PricedInvoice:
    """Price ``customer``'s ``period`` with its per-cycle fees, coupons and prepaid credits (:mod:`~billing.core.invoicing.grants`).

    ``transactions``: per span, the single transactions of the meters priced per transaction."""
    return price_invoice(period, terms(customer, spans, usage, catalog, transactions), bill_to=customer.bill_to,
                         tax_rules=catalog.tax_rules, corrections=corrections, coupons=grants.coupons,
                         credit_balance=grants.credit_balance, cycle_fees=cycle_fees)


def fee_codes(catalog: PlanCatalog) -> frozenset[str]:
    """Charge codes of the flat fees: late usage never corrects them (they do not depend on usage, and
    fees billed per cycle, as every fee of an anniversary subscription is, are not on their month's invoice)."""
    return frozenset(f"{plan.id}.{charge.id}" for plan in catalog.plans.values() for charge in plan.charges
                     if isinstance(charge, FlatCharge))


def charge_code(line: Line) -> str:
    """The contract's charge code of an engine line (``<plan>.<charge>``)."""
    return f"{line.plan_id}.{line.charge_id}"


def billed_by_charge(invoice_lines: Iterable[LineItem], period: Period) -> dict[str, Billed]:
    """What was billed for ``period``'s charges: its invoice's lines plus corrections of it on later invoices.

    ``invoice_lines`` are :class:`LineItem` or stored line rows (anything with kind, charge, meter,
    quantity and amount) of the customer's invoices; lines of kind ``correction`` count
    for the period their charge code names, every other line for its own invoice's period (the
    caller passes the period's own invoice lines and the correction lines of other invoices).
    """
    suffix = CORRECTION_MARK + label(period)
    billed: dict[str, Billed] = defaultdict(Billed)
    for item in invoice_lines:
        if item.kind == LineKind.CORRECTION:
            if not item.charge.endswith(suffix):
                continue
            code = item.charge.removesuffix(suffix)
        else:
            code = item.charge
        billed[code] += Billed(item.quantity if item.meter else ZERO, item.amount)
    return billed


def corrections(repriced: PricedInvoice, billed: Mapping[str, Billed], corrected_invoice: str,
                ignore: frozenset[str] = frozenset()) -> list[Line]:
    """Correction lines for the charges of ``repriced`` whose amount differs from ``billed``, except the
    charge codes in ``ignore`` (:func:`fee_codes`)."""
    period = repriced.period
    current: dict[str, tuple[Line, Billed]] = {}
    for line in repriced.lines:
        code = charge_code(line)
        if code in ignore:
            continue
        previous = current.get(code, (line, Billed()))[1]
        current[code] = (line, previous + Billed(line.quantity if line.meter else ZERO, line.amount))
    lines = []
    for code in list(current) + sorted(set(billed) - set(current)):
        line, now = current.get(code, (None, Billed()))
        before = billed.get(code, Billed())
        delta = now.amount - before.amount
        if not delta:
            continue
        plan_id, _, charge_id = code.partition(".")
        steps = (
            Step(f"{label(period)} repriced with current usage: {now.quantity:,} units", now.amount, units=now.quantity, unit_price=ZERO),
            Step(f"billed before on {corrected_invoice} and its corrections: {before.quantity:,} units", -before.amount,
                 units=before.quantity, unit_price=ZERO),
        )
        description = f"Late usage of {label(period)}: {line.description if line else code}"
        lines.append(Line(plan_id, f"{charge_id}{CORRECTION_MARK}{label(period)}", description, "correction",
                          line.meter if line else None, now.quantity - before.quantity, delta, delta, steps, period, Decimal(1)))
    return lines


def draft(priced: PricedInvoice, *, invoice_id: str, customer_id: str, subscription_id: str | None, now: datetime) -> Invoice:
    """The priced invoice as a draft ``Invoice`` recorded at ``now``."""
    return to_invoice(priced, invoice_id=invoice_id, customer_id=customer_id, subscription_id=subscription_id,
                      issued_at=None, due_at=None, status=InvoiceStatus.DRAFT, event_time=now)
