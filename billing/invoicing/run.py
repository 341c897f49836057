"""The invoice run, previews and lifecycle commands, against the warehouse and the invoices topic.

``run_period`` bills every subscription billable in a closed month:

1. read customers and subscription events, derive each customer's plan spans
   (:mod:`~billing.core.invoicing.timeline`) and pick the catalog plan of each span (product x customer
   currency); any unknown plan or currency fails the run before anything is written;
2. leave finalized, paid and void invoices of the period alone (immutable), recompute the rest;
   read the coupons and prepaid credits of the customers (:mod:`~billing.core.invoicing.grants`);
3. record the spans, read the usage of every span from the hourly rollups in one query
   (:mod:`~billing.core.invoicing.usage`) and the single events of meters priced per transaction,
   price;
4. re-price the customer's finalized invoices of the previous ``invoice_correction_months``
   months with their recorded spans and current usage; differences become correction lines;
5. publish new and changed invoices to the invoices topic and the credit notes a finalizing run issues
   to the credit notes topic, then write both to the warehouse (a failed publish writes nothing, and
   the next run issues the same credit notes: same ids and numbers).

A re-run writes nothing for invoices whose content did not change, and never a second invoice
for a customer and period (ids are deterministic). The engine is the only source of invoices: it
bills each charge once per service period, and no customer with a billable subscription is
skipped.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from billing.core.contracts import CreditNote, Invoice, InvoiceStatus, LineKind
from billing.core.errors import ConfigError
from billing.core.invoicing import compose, grants, prepaid
from billing.core.invoicing.credit_notes import credit_notes
from billing.core.invoicing.cycles import cycle_fees
from billing.core.invoicing.errors import NoSubscription, UnknownCustomer, UnknownInvoice
from billing.core.invoicing.lifecycle import live_invoice, rebill, replacement_id, transition
from billing.core.invoicing.numbering import credit_series, numbers
from billing.core.invoicing.periods import closed_period, invoice_id, label, of_period
from billing.core.invoicing.summary import CurrencyBilled, billed_by_currency, not_billed_reason
from billing.core.invoicing.timeline import PlanSpan, plan_spans
from billing.core.invoicing.usage import quantities, span_stats, span_transactions
from billing.core.meters import MeterSet, active_meters
from billing.core.pricing import PlanCatalog, PlanTerm, PricedInvoice, price_invoice
from billing.core.pricing.catalog import builtin_catalog, load_catalog
from billing.core.pricing.engine import Line
from billing.core.pricing.plans import Plan
from billing.core.pricing.proration import Period, month_period
from billing.gc_tuning import batch_gc
from billing.invoicing.parallel import fork_map, processes
from billing.invoicing.publish import publish, publish_credit_notes
from billing.invoicing.store import MS, SpanRow, Store, content_key, epoch_ms
from billing.settings import Settings
from billing.warehouse import facts
from billing.warehouse.client import client

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as the run advances."""


def _quiet(_stage: str, _done: int, _total: int) -> None:
    return None


def _millis(moment: datetime) -> datetime:
    """``moment`` at the warehouse's millisecond precision (so a written time reads back equal)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class RunSummary:
    """What an invoice run did."""

    period: Period
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    frozen: int = 0
    finalized: int = 0
    corrections: int = 0
    not_billable: int = 0
    not_billed: dict[str, int] = field(default_factory=dict)
    """Why the not billable subscriptions were not billed: reason -> customers."""
    billed: dict[str, CurrencyBilled] = field(default_factory=dict)
    """What the invoices computed bill, per currency."""
    invoices: list[Invoice] = field(default_factory=list)
    credit_notes: list[CreditNote] = field(default_factory=list)
    """Credit notes issued by a finalizing run (prepaid fees of plan changes made in the month)."""
    seconds: float = 0.0


@dataclass(frozen=True)
class Preview:
    """The running total of a customer's open period."""

    customer: compose.BillingCustomer
    period: Period
    until: datetime
    priced: PricedInvoice
    invoice: Invoice
    grants: grants.Grants


class Invoicing:
    """Invoice operations on the warehouse and topic named by ``settings``."""

    def __init__(self, settings: Settings, *, catalog: PlanCatalog | None = None, meters: MeterSet | None = None):
        self.settings = settings
        self.catalog = catalog or (load_catalog([settings.plans_dir]) if settings.plans_dir else builtin_catalog())
        self.meters = meters or active_meters()
        self.transaction_meters = self.catalog.transaction_meters & set(self.meters.names)
        """Configured meters some charge prices per transaction (billing reads their single events)."""
        self.store = Store(client(settings), settings.clickhouse_database)

    # ------------------------------------------------------------------------- the run

    def run_period(self, period_text: str, *, now: datetime, finalize: bool = False,
                   progress: Progress = _quiet, customer: str | None = None) -> RunSummary:
        """Bill the closed month ``period_text`` (``YYYY-MM``), of every customer or only ``customer``;
        see the module docstring. The collector is relaxed meanwhile (:func:`~billing.gc_tuning.batch_gc`)."""
        with batch_gc():
            return self._run_period(period_text, now=now, finalize=finalize, progress=progress, customer=customer)

    def _run_period(self, period_text: str, *, now: datetime, finalize: bool, progress: Progress,
                    customer: str | None) -> RunSummary:
        started = time.perf_counter()
        run_at = _millis(now)
        period = closed_period(period_text, run_at)
        summary = RunSummary(period)
        progress("reading subscriptions", 0, 1)
        changes = self.store.subscription_changes(before=period.end, customer=customer)
        customers = self.store.customers(None if customer is None else [customer])
        spans: dict[str, list[PlanSpan]] = {}
        for customer_id in sorted(changes):
            found = plan_spans(changes[customer_id], period)
            if found:
                spans[customer_id] = found
            else:
                summary.not_billable += 1
                reason = not_billed_reason(changes[customer_id], period)
                summary.not_billed[reason] = summary.not_billed.get(reason, 0) + 1
        unknown = sorted(set(spans) - set(customers))
        if unknown:
            raise UnknownCustomer(f"{len(unknown)} subscribed customer(s) are not in the customers table, e.g. {unknown[0]}; "
                                  "load the customers topic first")
        statuses = self.store.statuses(period)
        chains = {customer_id: live_invoice(invoice_id(customer_id, period), statuses) for customer_id in spans}
        ids = {customer_id: chain[0] for customer_id, chain in chains.items()}
        todo = [c for c in spans if statuses.get(ids[c], (InvoiceStatus.DRAFT,))[0] is InvoiceStatus.DRAFT]
        summary.frozen = len(spans) - len(todo)
        plans = {c: self._plans(customers[c], spans[c]) for c in todo}
        held = self.store.held()
        granted = self._grants([customers[c] for c in todo if c in held], period, held)
        progress("reading usage", 0, 1)
        self.store.write_spans(
            (SpanRow(ids[c], number, c, span, plan_id, customers[c].currency, period.start)
             for c in todo for number, (span, plan_id) in enumerate(zip(spans[c], plans[c], strict=True))),
            computed_at=run_at,
        )
        written = (f"SELECT customer_id, invoice_id, span_no, span_start, span_end FROM {self.store.db}.invoice_spans FINAL "
                   f"WHERE period_start = {MS.format('start')} AND computed_at = {MS.format('run_at')}",
                   period.start, period.end, {"start": epoch_ms(period.start), "run_at": epoch_ms(run_at)})
        usage = self.store.span_usage(*written)
        singles = self.store.span_transactions(*written, self.transaction_meters)
        corrections = self._corrections(todo, period, progress)
        drafts = self.store.draft_contents(period)
        new_versions: list[Invoice] = []
        new_rows: list[facts.Rows] = []
        stale: list[str] = []  # drafts whose lines change: their old lines are deleted before the rewrite
        numbered = numbers(self.settings.invoice_series, self.store.last_number("invoices", self.settings.invoice_series)
                           if finalize and todo else 0)
        settled = {c: prepaid.settle(changes[c], period, self._plan_of(customers[c])) for c in changes if c in customers}

        def bill(customer_id: str, number: str | None) -> tuple[Invoice, facts.Rows]:
            """The invoice of ``customer_id`` (finalized with ``number`` when given) and its rows."""
            customer = customers[customer_id]
            span_usage = [quantities(usage.get((ids[customer_id], n), {}), self.meters) for n in range(len(spans[customer_id]))]
            fees = cycle_fees(changes[customer_id], period, self._plan_of(customer))
            extra = [*corrections.get(customer_id, ()), *prepaid.charge_lines(settled.get(customer_id, ()))]
            priced = compose.price(period, customer, spans[customer_id], span_usage, self.catalog,
                                   extra, granted.get(customer_id, grants.Grants()), fees,
                                   transactions=[singles.get((ids[customer_id], n), {}) for n in range(len(spans[customer_id]))])
            invoice = compose.draft(priced, invoice_id=ids[customer_id], customer_id=customer_id,
                                    subscription_id=spans[customer_id][0].subscription_id, now=run_at)
            if chains[customer_id][1] is not None:
                invoice = invoice.model_copy(update={"replaces": chains[customer_id][1]})
            if number is not None:
                invoice = transition(invoice, InvoiceStatus.FINALIZED, run_at, self.settings.invoice_due_days, number=number)
            return invoice, facts.invoice_rows(invoice)

        jobs = [(c, next(numbered) if finalize else None) for c in todo]
        billed = fork_map(bill, jobs, workers=processes(self.settings.invoice_processes))
        for done, (invoice, rows) in enumerate(billed, start=1):
            summary.finalized += finalize
            previous = drafts.get(invoice.id)
            unchanged = previous is not None and previous == content_key(rows)
            summary.unchanged += unchanged
            if previous is not None and not unchanged:
                summary.updated += 1
                stale.append(invoice.id)
            summary.created += previous is None
            if finalize or not unchanged:
                new_versions.append(invoice)
                new_rows.append(rows)
            summary.corrections += sum(1 for line in invoice.line_items if line.kind is LineKind.CORRECTION)
            summary.invoices.append(invoice)
            if done % 500 == 0 or done == len(todo):
                progress("pricing", done, len(todo))
        summary.billed = billed_by_currency(summary.invoices)
        notes = self._credit_notes(settled, period, run_at) if finalize else []
        summary.credit_notes = notes
        progress("publishing", 0, len(new_versions))
        publish(self.settings, new_versions)
        publish_credit_notes(self.settings, notes)
        progress("writing", 0, len(new_versions))
        self.store.forget_spans(list(drafts), before=run_at)
        self.store.forget_lines(stale)
        self.store.write_rows(new_rows)
        self._issue(notes)
        progress("done", len(new_versions), len(new_versions))
        summary.seconds = time.perf_counter() - started
        return summary

    def _credit_notes(self, settled: Mapping[str, Sequence[prepaid.PrepaidChange]], period: Period,
                      now: datetime) -> list[CreditNote]:
        """The credit notes of ``period``'s settlements not issued yet, numbered in customer order."""
        wanted = {c: found for c, found in settled.items() if prepaid.credits(found)}
        if not wanted:
            return []
        issued = frozenset(note.id for note in self.store.credit_notes(period=period))
        customers = self.store.customers(list(wanted))
        series = credit_series(self.settings.invoice_series)
        numbered = numbers(series, self.store.last_number("credit_notes", series))
        return [note for customer_id in sorted(wanted)
                for note in credit_notes(customer_id, customers[customer_id].currency, wanted[customer_id], period, now,
                                         numbered, issued)]

    def _issue(self, notes: Sequence[CreditNote]) -> None:
        """Record credit notes (published before, with the invoices) and credit their totals to the customers'
        balances (grant id = credit note id)."""
        for note in notes:
            self.store.write_credit(note.customer_id, note.id, note.total, note.currency, note.issued_at)
        self.store.write_rows(facts.credit_note_rows(note) for note in notes)

    def _plans(self, customer: compose.BillingCustomer, spans: Sequence[PlanSpan]) -> list[str]:
        try:
            return [self.catalog.plan_for(span.plan_id, customer.currency, span.interval).id for span in spans]
        except ConfigError as exc:
            raise ConfigError(f"customer {customer.id}: {exc}; nothing was written") from None

    def _plan_of(self, customer: compose.BillingCustomer) -> Callable[[str, str], Plan]:
        """``plan_of(product, interval)``: the catalog plan ``customer`` is billed on (in its currency)."""
        return lambda product, interval: self.catalog.plan_for(product, customer.currency, interval)

    def _grants(self, holders: Sequence[compose.BillingCustomer], period: Period,
                held: Mapping[str, grants.Held]) -> dict[str, grants.Grants]:
        """The coupons and credit balance of each holder's invoice of ``period``."""
        applied = self.store.applied([c.id for c in holders])
        try:
            return {c.id: grants.for_invoice(c.id, c.currency, held[c.id], applied.get(c.id, ()), period, self.catalog)
                    for c in holders}
        except ConfigError as exc:
            raise ConfigError(f"{exc}; nothing was written") from None

    def _corrections(self, customer_ids: Sequence[str], period: Period, progress: Progress) -> dict[str, list[Line]]:
        """Correction lines per customer for late usage of their finalized invoices of earlier months."""
        months = self.settings.invoice_correction_months
        if not months or not customer_ids:
            return {}
        progress("checking earlier invoices", 0, 1)
        since = period.start
        for _ in range(months):
            since = month_period(since - timedelta(seconds=1)).start
        wanted = set(customer_ids)
        history = [h for h in self.store.heads(since) if h.customer_id in wanted and h.status is not InvoiceStatus.VOID]
        earlier = [h for h in history
                   if h.period_start < period.start and h.status in (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)
                   and of_period(h.id, h.customer_id, Period(h.period_start, h.period_end))]
        if not earlier:
            return {}
        recorded = self.store.recorded_spans(Period(since, period.start))
        fees = compose.fee_codes(self.catalog)
        usage = self.store.recorded_span_usage(Period(since, period.start))
        singles = self.store.recorded_span_transactions(Period(since, period.start), self.transaction_meters)
        lines = self.store.line_rows(since)
        later_corrections: dict[str, list] = defaultdict(list)
        for head in history:
            if head.period_start != period.start:
                later_corrections[head.customer_id].extend(
                    (head.id, line) for line in lines.get(head.id, ()) if line.kind == LineKind.CORRECTION)
        found: dict[str, list[Line]] = defaultdict(list)
        for head in earlier:
            spans = recorded.get(head.id)
            if not spans:
                continue
            q = Period(head.period_start, head.period_end)
            terms = [PlanTerm(self.catalog.plan(plan_id), span.period, quantities(usage.get((head.id, number), {}), self.meters),
                              fees_by_cycle=True, transactions=singles.get((head.id, number), {}), anniversary=span.anniversary)
                     for number, span, plan_id in spans]
            repriced = price_invoice(q, terms)
            billed = [line for line in lines.get(head.id, ()) if line.charge not in fees]
            billed += [line for owner, line in later_corrections[head.customer_id] if owner != head.id]
            found[head.customer_id].extend(compose.corrections(repriced, compose.billed_by_charge(billed, q), head.id, fees))
        return found

    # ------------------------------------------------------------------- single invoices

    def preview(self, customer_id: str, *, now: datetime, period: Period | None = None) -> Preview:
        """The running total of ``customer_id``'s current month (or of the month ``period``), accrued up to
        ``now`` (or the period's end, when that is earlier)."""
        customer = self._customer(customer_id)
        period = period or month_period(now)
        elapsed = Period(period.start, min(period.end, max(now, period.start + timedelta(seconds=1))))
        changes = self.store.subscription_changes(before=elapsed.end, customer=customer_id).get(customer_id, [])
        spans = plan_spans(changes, elapsed)
        if not spans:
            raise NoSubscription(f"customer {customer_id} has no billable subscription in {label(period)} "
                                 "(none, still trialing, or canceled)")
        stats = span_stats(self.store.hourly(customer_id, elapsed), spans)
        held = self.store.held(customer_id)
        found = self._grants([customer] if held else [], period, held).get(customer_id, grants.Grants())
        fees = cycle_fees(changes, period, self._plan_of(customer))
        singles = span_transactions(self.store.events(customer_id, elapsed, self.transaction_meters), spans)
        settled = prepaid.charge_lines(prepaid.settle(changes, period, self._plan_of(customer)))
        priced = compose.price(period, customer, spans, [quantities(s, self.meters) for s in stats], self.catalog, settled,
                               found, fees, transactions=singles)
        invoice = compose.draft(priced, invoice_id=invoice_id(customer_id, period), customer_id=customer_id,
                                subscription_id=spans[0].subscription_id, now=now)
        return Preview(customer, period, elapsed.end, priced, invoice, found)

    def _customer(self, customer_id: str) -> compose.BillingCustomer:
        customer = self.store.customers([customer_id]).get(customer_id)
        if customer is None:
            raise UnknownCustomer(f"no customer {customer_id!r} in the warehouse")
        return customer

    def period_usage(self, period: Period) -> list[tuple[str, datetime, datetime, dict[str, Decimal]]]:
        """Usage per customer and meter in the billable spans of the period's invoices (summed over spans;
        every meter, also those the customer's plan does not charge)."""
        invoices = [inv for inv in self.store.invoices(period=period)
                    if of_period(inv.id, inv.customer_id, period) and inv.replaced_by is None]
        usage = self.store.recorded_span_usage(period) if invoices else {}
        rows = []
        for inv in invoices:
            totals: Counter = Counter()
            for (owner, _number), stats in usage.items():
                if owner == inv.id:
                    totals.update(quantities(stats, self.meters))
            rows.append((inv.customer_id, period.start, period.end, dict(totals)))
        return rows

    def get(self, invoice_id_: str) -> Invoice:
        """The latest version of one invoice."""
        found = self.store.invoices(ids=[invoice_id_])
        if not found:
            raise UnknownInvoice(f"no invoice {invoice_id_!r} in the warehouse; see `billing invoice list`")
        return found[0]

    def mark_paid(self, payments: Sequence[tuple[Invoice, datetime]]) -> list[Invoice]:
        """Record that each finalized invoice was paid at its time: publish the paid versions, then write them."""
        paid = [transition(invoice, InvoiceStatus.PAID, _millis(at), self.settings.invoice_due_days)
                for invoice, at in payments]
        if paid:
            publish(self.settings, paid)
            self.store.write_invoices(paid)
        return paid

    def change_status(self, invoice_id_: str, target: InvoiceStatus, *, now: datetime, reason: str | None = None) -> Invoice:
        """Finalize, pay or void (with a ``reason``) one invoice: publish the new version, then record it.
        Finalizing numbers the invoice and issues the credit notes of its customer's month."""
        current, at = self.get(invoice_id_), _millis(now)
        number, notes = None, []
        if target is InvoiceStatus.FINALIZED and current.status is InvoiceStatus.DRAFT:
            series = self.settings.invoice_series
            number = next(numbers(series, self.store.last_number("invoices", series)))
            period = Period(current.period_start, current.period_end)
            changes = self.store.subscription_changes(before=period.end, customer=current.customer_id)
            customer = self._customer(current.customer_id)
            notes = self._credit_notes(
                {customer.id: prepaid.settle(changes.get(customer.id, []), period, self._plan_of(customer))}, period, at)
        invoice = transition(current, target, at, self.settings.invoice_due_days, reason, number)
        publish(self.settings, [invoice])
        publish_credit_notes(self.settings, notes)
        self.store.write_invoices([invoice])
        self._issue(notes)
        return invoice

    def rebill(self, invoice_id_: str, *, now: datetime, finalize: bool = False) -> RunSummary:
        """Re-bill the void invoice ``invoice_id_`` on a new invoice of the same period (``<id>-r1``, linked
        both ways), computed by a run of that period for its customer; anything but an invoice that is
        void and not re-billed yet raises :class:`InvalidTransition` before anything is written."""
        invoice = self.get(invoice_id_)
        marked = rebill(invoice, replacement_id(invoice.id), _millis(now))
        period = Period(invoice.period_start, invoice.period_end)
        closed_period(label(period), _millis(now))
        changes = self.store.subscription_changes(before=period.end, customer=invoice.customer_id)
        if not plan_spans(changes.get(invoice.customer_id, []), period):
            raise NoSubscription(f"cannot re-bill invoice {invoice.id}: customer {invoice.customer_id} has no billable "
                                 f"subscription in {label(period)}; nothing was written")
        publish(self.settings, [marked])
        self.store.write_invoices([marked])
        return self.run_period(label(period), now=now, finalize=finalize, customer=invoice.customer_id)
