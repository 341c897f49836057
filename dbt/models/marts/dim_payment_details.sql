{{ config(engine='MergeTree()', order_by='(transaction_id, attempt)') }}
-- Payment attempt details: one row per attempt of each transaction.
select
    a.transaction_id as transaction_id,
    a.attempt as attempt,
    a.invoice_id as invoice_id,
    a.customer_id as customer_id,
    a.method as method,
    a.currency as currency,
    a.amount as amount,
    a.outcome as outcome,
    a.failure_reason as failure_reason,
    a.initiated_at as initiated_at,
    toDate(a.initiated_at) as initiated_date,
    toHour(a.initiated_at) as initiated_hour,
    toDayOfWeek(a.initiated_at) as initiated_weekday,
    a.settled_at as settled_at,
    a.processing_seconds as processing_seconds,
    a.attempt > 1 as is_retry,
    t.succeeded as transaction_succeeded
from {{ ref('int_payment_attempts') }} as a
inner join {{ ref('int_payment_transactions') }} as t on t.transaction_id = a.transaction_id
