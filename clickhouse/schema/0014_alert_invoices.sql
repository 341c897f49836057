-- Payment reminders (`billing.payment.due`, `billing.payment.overdue`) are alerts about an invoice, not a
-- meter (their meter is ''): the invoice, its currency and its due date. Usage alerts leave them null.

ALTER TABLE ${database}.alerts
    ADD COLUMN IF NOT EXISTS invoice_id Nullable(String) COMMENT 'the invoice a payment reminder is about';

ALTER TABLE ${database}.alerts
    ADD COLUMN IF NOT EXISTS currency LowCardinality(Nullable(String)) COMMENT 'currency of the invoice''s total (value)';

ALTER TABLE ${database}.alerts
    ADD COLUMN IF NOT EXISTS due_at Nullable(DateTime64(3, 'UTC')) COMMENT 'when the invoice is due';
