"""Invoicing against the warehouse and the broker: the run and previews (:mod:`run`), warehouse
reads and writes (:mod:`store`), recorded coupons and credits (:mod:`grant_records`), the
invoices topic (:mod:`publish`), and documents: PDFs (:mod:`pdf`) and CSV exports (:mod:`export`).
The rules themselves are pure and live in :mod:`billing.core.invoicing`."""
