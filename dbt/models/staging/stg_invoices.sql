-- Latest version of each invoice (a status change rewrites the invoice with a newer event_time).
select
    invoice_id,
    customer_id,
    subscription_id,
    period_start,
    period_end,
    currency,
    subtotal,
    discount_total,
    tax_rate,
    tax,
    total,
    status,
    issued_at,
    due_at,
    paid_at,
    voided_at,
    void_reason,
    event_time
from {{ source('raw', 'invoices') }} final
