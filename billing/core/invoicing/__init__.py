"""The pure rules of invoicing: plan spans of a period (:mod:`timeline`), usage per span
(:mod:`usage`), composition and late-usage corrections (:mod:`compose`), coupons and credits on an
invoice (:mod:`grants`), billing periods (:mod:`periods`), the invoice lifecycle with re-bills
(:mod:`lifecycle`), fees per cycle (:mod:`cycles`) and their settlement after plan changes
(:mod:`prepaid`) on credit notes (:mod:`credit_notes`), and document numbers (:mod:`numbering`).
Reading and writing invoices lives in :mod:`billing.invoicing`."""
