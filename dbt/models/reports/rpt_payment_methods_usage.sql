-- Transactions per payment method with their share of all transactions and success rate.
select
    method,
    count() as transactions,
    round(100 * transactions / (select count() from {{ ref('fct_transaction') }}), 2) as share_pct,
    countIf(succeeded) as succeeded,
    uniqExact(customer_id) as customers
from {{ ref('fct_transaction') }}
group by method
