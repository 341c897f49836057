-- Failed attempts per reason, the transactions they hit and how many of those recovered later.
select
    a.failure_reason as failure_reason,
    count() as failed_attempts,
    uniqExact(a.transaction_id) as transactions,
    uniqExactIf(a.transaction_id, a.transaction_succeeded) as recovered_transactions,
    uniqExact(a.customer_id) as customers
from {{ ref('dim_payment_details') }} as a
where a.outcome = 'failed'
group by failure_reason
