-- Successful payments per customer: count, total and average amount.
select
    customer_id,
    currency,
    count() as payments,
    sum(amount) as total_amount,
    round(total_amount / payments, 2) as average_amount
from {{ ref('fct_transaction') }}
where succeeded
group by customer_id, currency
