-- Every state change of every payment transaction, deduplicated.
select
    event_id,
    transaction_id,
    invoice_id,
    customer_id,
    method,
    amount,
    currency,
    status,
    failure_reason,
    attempt,
    sequence,
    initiated_at,
    completed_at,
    refunded_amount,
    event_time
from {{ source('raw', 'payment_events') }} final
