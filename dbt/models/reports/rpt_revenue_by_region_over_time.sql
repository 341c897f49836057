-- Successful payments and net revenue per month (of success), region and currency.
select
    toStartOfMonth(succeeded_date) as month_start,
    region,
    currency,
    count() as payments,
    sum(net_amount) as revenue,
    sum(net_amount_usd) as revenue_usd
from {{ ref('fct_transaction') }}
where succeeded
group by month_start, region, currency
