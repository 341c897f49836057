-- Successful payments per customer and the average days between them.
select
    customer_id,
    count() as payments,
    min(succeeded_at) as first_payment_at,
    max(succeeded_at) as last_payment_at,
    if(payments > 1, round(dateDiff('second', first_payment_at, last_payment_at) / (payments - 1) / 86400, 2), null)
        as avg_days_between
from {{ ref('fct_transaction') }}
where succeeded
group by customer_id
