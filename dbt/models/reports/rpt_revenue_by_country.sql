-- Net revenue per country (each country bills in one currency).
select
    country,
    any(currency) as currency,
    uniqExactIf(customer_id, succeeded) as paying_customers,
    sum(net_amount) as revenue,
    sum(net_amount_usd) as revenue_usd
from {{ ref('fct_transaction') }}
group by country
