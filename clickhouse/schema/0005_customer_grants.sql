-- What customers hold that the invoice run applies (`billing invoice grant-coupon | grant-credit`).
-- A coupon is redeemed once per customer (its duration is counted on the customer's invoices that
-- carry it); prepaid credits are granted any number of times, and each invoice's `credit`
-- adjustment records what it consumed: balance = granted - consumed by the other invoices.

CREATE TABLE IF NOT EXISTS ${database}.customer_coupons
(
    customer_id String,
    coupon_id   LowCardinality(String) COMMENT 'coupon id of the plan catalog',
    redeemed_at DateTime64(3, 'UTC') COMMENT 'version: the latest redemption of a customer x coupon wins'
)
ENGINE = ReplacingMergeTree(redeemed_at)
ORDER BY (customer_id, coupon_id)
COMMENT 'Coupons redeemed by customers, applied by the invoice run for the coupon duration.';

CREATE TABLE IF NOT EXISTS ${database}.customer_credits
(
    customer_id String,
    grant_id    String,
    amount      Decimal(38, 9) COMMENT 'granted, > 0, in minor units of currency',
    currency    LowCardinality(String),
    granted_at  DateTime64(3, 'UTC') COMMENT 'version: a re-written grant replaces the earlier row'
)
ENGINE = ReplacingMergeTree(granted_at)
ORDER BY (customer_id, grant_id)
COMMENT 'Prepaid credits granted to customers; invoices consume them after tax (invoice_adjustments kind credit).';
