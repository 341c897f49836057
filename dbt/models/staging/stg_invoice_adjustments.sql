-- Revenue adjustments (coupons, discounts, credits) applied to invoices.
select
    invoice_id,
    adjustment_id,
    customer_id,
    period_start,
    currency,
    kind,
    code,
    description,
    percent_off,
    amount
from {{ source('raw', 'invoice_adjustments') }} final
