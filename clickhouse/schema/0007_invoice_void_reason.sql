-- Why an invoice was voided. The invoice run voids its own draft when another invoice turns out to
-- bill part of the month; such a draft (never issued) is billed again once nothing else bills the month.

ALTER TABLE ${database}.invoices
    ADD COLUMN IF NOT EXISTS void_reason Nullable(String) COMMENT 'why the invoice was voided (void invoices only)';
