"""Invoice documents: PDF rendering and CSV exports of priced invoices and usage."""
