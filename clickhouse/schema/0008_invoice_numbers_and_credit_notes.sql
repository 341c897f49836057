-- The invoice ledger: sequential numbers assigned when an invoice is finalized, re-bills of void
-- invoices linked both ways, and credit notes (the only correction of a finalized invoice besides
-- late-usage correction lines), with their lines.

ALTER TABLE ${database}.invoices
    ADD COLUMN IF NOT EXISTS number Nullable(String) COMMENT 'gap-free number of the issuer series, set when finalized';

ALTER TABLE ${database}.invoices
    ADD COLUMN IF NOT EXISTS replaces Nullable(String) COMMENT 'the void invoice of the same period this one re-bills';

ALTER TABLE ${database}.invoices
    ADD COLUMN IF NOT EXISTS replaced_by Nullable(String) COMMENT 'the invoice that re-bills this void one';

CREATE TABLE IF NOT EXISTS ${database}.credit_notes
(
    credit_note_id String,
    number         String COMMENT 'gap-free number of the issuer credit-note series',
    customer_id    String,
    invoice_id     String COMMENT 'the invoice whose prepaid fee is credited',
    period_start   DateTime64(3, 'UTC') COMMENT 'month whose invoice run issued the credit note',
    period_end     DateTime64(3, 'UTC'),
    currency       LowCardinality(String),
    reason         String,
    total          Decimal(38, 9),
    issued_at      DateTime64(3, 'UTC'),
    event_time     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(event_time)
PARTITION BY toYYYYMM(period_start)
ORDER BY (customer_id, credit_note_id)
COMMENT 'Credit notes: the unused part of fees paid in advance, after a plan change or cancellation.';

CREATE TABLE IF NOT EXISTS ${database}.credit_note_lines
(
    credit_note_id String,
    line_no        UInt16,
    customer_id    String,
    period_start   DateTime64(3, 'UTC'),
    currency       LowCardinality(String),
    charge         String,
    description    String,
    quantity       Decimal(38, 9) COMMENT 'share of the billing cycle credited',
    amount         Decimal(38, 9),
    service_start  DateTime64(3, 'UTC'),
    service_end    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(period_start)
ORDER BY (customer_id, credit_note_id, line_no)
COMMENT 'Lines of credit notes.';
