"""Invoicing from the warehouse: plan spans (:mod:`timeline`), usage per span (:mod:`usage`), pure
composition and late-usage corrections (:mod:`compose`), lifecycle (:mod:`lifecycle`), warehouse
reads and writes (:mod:`store`), the invoices topic (:mod:`publish`), the run and previews
(:mod:`run`), and documents: PDFs (:mod:`pdf`) and CSV exports (:mod:`export`)."""
