-- Invoicing from the warehouse (`billing invoice run`).
-- invoice_spans records which plan each invoice priced over which part of its period; the run
-- joins it with the hourly rollups (an hour belongs to the span its window starts in), and it
-- stays as the audit trail of every invoice's plans. Customers gain the optional tax facts the
-- pricing engine's regional tax rules need (state/province, exemption).

CREATE TABLE IF NOT EXISTS ${database}.invoice_spans
(
    invoice_id      String,
    span_no         UInt16,
    customer_id     String,
    subscription_id String,
    product_id      LowCardinality(String) COMMENT 'plan id of the subscription',
    plan_id         LowCardinality(String) COMMENT 'catalog plan billed: the product in the customer currency',
    currency        LowCardinality(String),
    period_start    DateTime64(3, 'UTC'),
    span_start      DateTime64(3, 'UTC'),
    span_end        DateTime64(3, 'UTC'),
    computed_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(period_start)
ORDER BY (customer_id, invoice_id, span_no)
COMMENT 'Plan spans (plan x billable time) each invoice priced.';

ALTER TABLE ${database}.customers
    ADD COLUMN IF NOT EXISTS tax_region Nullable(String) COMMENT 'state/province for regional tax rules (e.g. CA, QC)';

ALTER TABLE ${database}.customers
    ADD COLUMN IF NOT EXISTS tax_exempt UInt8 DEFAULT 0 COMMENT '1 = no tax (e.g. reverse-charge B2B)';
