-- Successful payments per currency: count, total and average amount (rounded half away from zero).
select
    currency,
    count() as payments,
    sum(amount) as total_amount,
    round(total_amount / payments, 2) as average_amount,
    uniqExact(customer_id) as customers
from {{ ref('fct_transaction') }}
where succeeded
group by currency
