-- Grant ids for coupon redemptions and revocations of grants (`billing invoice grants | revoke-grant`).
-- Grants are never edited or deleted: a revocation is a row of its own, after which the invoice run
-- and the preview no longer apply the grant (finalized and paid invoices keep their adjustments).
-- Redemptions recorded before this migration have an empty grant_id: their id is
-- cpn-<customer>-<coupon> (a coupon is redeemed once per customer).

ALTER TABLE ${database}.customer_coupons
    ADD COLUMN IF NOT EXISTS grant_id String DEFAULT '' COMMENT 'grant id; empty = cpn-<customer_id>-<coupon_id>';

CREATE TABLE IF NOT EXISTS ${database}.grant_revocations
(
    grant_id    String,
    customer_id String,
    kind        LowCardinality(String) COMMENT 'coupon | credit',
    reason      String,
    revoked_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (customer_id, grant_id, revoked_at)
COMMENT 'Revoked coupon redemptions and prepaid credits; the earliest revocation of a grant counts.';
