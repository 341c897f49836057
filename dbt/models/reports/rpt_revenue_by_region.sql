-- Net revenue per sales region and currency.
select
    region,
    currency,
    countIf(succeeded) as payments,
    sum(net_amount) as revenue,
    sum(net_amount_usd) as revenue_usd
from {{ ref('fct_transaction') }}
group by region, currency
