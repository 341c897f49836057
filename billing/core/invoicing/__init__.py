"""The pure rules of invoicing: plan spans of a period (:mod:`timeline`), usage per span
(:mod:`usage`), composition and late-usage corrections (:mod:`compose`), coupons and credits on an
invoice (:mod:`grants`), billing periods (:mod:`periods`) and the invoice lifecycle
(:mod:`lifecycle`). Reading and writing invoices lives in :mod:`billing.invoicing`."""
