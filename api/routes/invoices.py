"""Invoices: a customer's list, one invoice, its PDF, and the running total of the open period."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api import reads
from api.auth import authenticated, require_access
from api.context import ApiContext, context
from api.keys import ApiKey
from api.lookup import readable_customer, unknown_customer
from api.problems import Problem
from api.routes.responses import READ_ERRORS, CustomerId, InvoiceId, problem
from api.schemas import InvoicePreview, InvoiceSummary, summary_of
from billing.core.contracts import Customer, Invoice, InvoiceStatus
from billing.core.errors import ConfigError
from billing.core.invoicing.errors import NoSubscription, PeriodError, UnknownCustomer
from billing.core.invoicing.periods import parse_period
from billing.invoicing.pdf import BillTo, render_pdf

router = APIRouter(tags=["invoices"])

_EXAMPLE_INVOICE = {
    "schema_version": 1, "id": "inv-cust-42-202609", "customer_id": "cust-42", "subscription_id": "sub-7",
    "period_start": "2026-09-01T00:00:00Z", "period_end": "2026-10-01T00:00:00Z", "currency": "EUR",
    "line_items": [{"kind": "subscription", "charge": "growth", "meter": None, "description": "Growth plan",
                    "quantity": "1", "unit_price": "49.00", "amount": "49.00", "breakdown": []}],
    "subtotal": "49.00", "adjustments": [], "discount_total": "0.00", "tax_rate": "0.19", "tax": "9.31",
    "total": "58.31", "status": "finalized", "shipping": None, "issued_at": "2026-10-01T02:00:00Z",
    "due_at": "2026-10-15T02:00:00Z", "paid_at": None, "voided_at": None, "void_reason": None,
    "event_time": "2026-10-01T02:00:00Z", "number": "INV-000042", "replaces": None, "replaced_by": None,
}


async def _invoice(ctx: ApiContext, key: ApiKey, invoice_id: str) -> Invoice:
    """The invoice; the same 404 for an unknown id and another tenant's invoice (neither existence nor owner leaks)."""
    found = await ctx.warehouse.read(reads.invoice, invoice_id)
    if found is None or not key.may_access(found.customer_id):
        raise Problem(404, f"no invoice {invoice_id!r} in the warehouse", kind="unknown-invoice")
    return found


@router.get(
    "/v1/customers/{customer_id}/invoices",
    response_model=list[InvoiceSummary],
    summary="A customer's invoices",
    description="The latest version of each invoice of the customer, oldest period first, without lines.",
    responses=READ_ERRORS,
)
async def list_invoices(
    request: Request,
    customer_id: CustomerId,
    status: InvoiceStatus | None = None,
    period: Annotated[str | None, Query(description="Only the invoice of this month (`YYYY-MM`).",
                                           pattern=r"^\d{4}-\d{2}$")] = None,
    key: ApiKey = Depends(authenticated),
) -> list:
    ctx = context(request)
    try:
        month = parse_period(period) if period else None
    except PeriodError as exc:
        raise Problem(422, str(exc), kind="invalid-request") from None
    await readable_customer(ctx, key, customer_id)
    found = await ctx.warehouse.read(reads.invoices_of, customer_id, status, month)
    return [summary_of(invoice) for invoice in found]


@router.get(
    "/v1/invoices/{invoice_id}",
    response_model=Invoice,
    summary="One invoice with its lines",
    description="The latest version of the invoice: line items with their pricing breakdown, adjustments, tax, total.",
    responses={**READ_ERRORS, 200: {"content": {"application/json": {"example": _EXAMPLE_INVOICE}}}},
)
async def get_invoice(request: Request, invoice_id: InvoiceId, key: ApiKey = Depends(authenticated)) -> Invoice:
    return await _invoice(context(request), key, invoice_id)


def _pdf(invoice: Invoice, customer: Customer | None) -> bytes:
    bill_to = BillTo.from_customer(customer) if customer else BillTo(invoice.customer_id, invoice.customer_id)
    with tempfile.TemporaryDirectory(prefix="invoice-pdf-") as folder:
        return render_pdf(invoice, bill_to, Path(folder) / "invoice.pdf").read_bytes()


@router.get(
    "/v1/invoices/{invoice_id}/pdf",
    response_class=Response,
    summary="One invoice as a PDF",
    description="The invoice rendered as a PDF (line items, tier breakdowns, adjustments, tax, total due).",
    responses={**READ_ERRORS, 200: {"description": "The PDF document.", "content": {"application/pdf": {}}}},
)
async def get_invoice_pdf(request: Request, invoice_id: InvoiceId, key: ApiKey = Depends(authenticated)) -> Response:
    ctx = context(request)
    invoice = await _invoice(ctx, key, invoice_id)
    customer = await ctx.warehouse.read(reads.customer, invoice.customer_id)
    document = await ctx.warehouse.run(_pdf, invoice, customer)
    return Response(document, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{invoice.id}.pdf"'})


@router.get(
    "/v1/customers/{customer_id}/invoice-preview",
    response_model=InvoicePreview,
    summary="Running total of the open period",
    description=(
        "The current calendar month priced on the usage so far (hourly rollups up to now) and the subscriptions "
        "in effect, exactly as `billing invoice preview` computes it. Nothing is stored."
    ),
    responses={
        **READ_ERRORS,
        404: problem("Unknown customer, or no billable subscription this month (none, trialing, or canceled)."),
        500: problem("The customer's plan or currency is not in the plan catalog (a configuration error)."),
    },
)
async def get_invoice_preview(request: Request, customer_id: CustomerId,
                              key: ApiKey = Depends(authenticated)) -> InvoicePreview:
    ctx = context(request)
    require_access(key, customer_id)
    try:
        preview = await ctx.warehouse.run(ctx.previews.preview, customer_id, datetime.now(UTC))
    except UnknownCustomer:
        raise unknown_customer(customer_id) from None
    except NoSubscription as exc:
        raise Problem(404, str(exc), kind="no-billable-subscription") from None
    except ConfigError as exc:
        raise Problem(500, f"cannot price customer {customer_id}: {exc}", kind="pricing-failed") from None
    return InvoicePreview(period_start=preview.period.start, period_end=preview.period.end, until=preview.until,
                          invoice=preview.invoice)
