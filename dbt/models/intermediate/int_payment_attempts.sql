-- One row per attempt of a payment transaction: when it started, how it ended, how long it took.
select
    transaction_id,
    attempt,
    any(invoice_id) as invoice_id,
    any(customer_id) as customer_id,
    any(method) as method,
    any(amount) as amount,
    any(currency) as currency,
    min(initiated_at) as initiated_at,
    maxIf(completed_at, status in ('succeeded', 'failed')) as settled_at,
    multiIf(countIf(status = 'succeeded') > 0, 'succeeded',
            countIf(status = 'failed') > 0, 'failed', 'pending') as outcome,
    anyIf(failure_reason, status = 'failed') as failure_reason,
    if(outcome = 'pending', null, dateDiff('second', initiated_at, settled_at)) as processing_seconds
from {{ ref('stg_payment_events') }}
group by transaction_id, attempt
