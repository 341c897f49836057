-- Net revenue (collected minus refunded) per payment method and currency.
select
    method,
    currency,
    countIf(succeeded) as payments,
    sum(net_amount) as revenue,
    sum(net_amount_usd) as revenue_usd
from {{ ref('fct_transaction') }}
group by method, currency
