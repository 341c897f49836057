-- MRR per month and currency: the run-rate of the subscriptions billable at the month's end (fct_mrr).
select
    month_start,
    currency,
    sum(mrr) as mrr,
    sum(arr) as arr,
    uniqExact(customer_id) as customers,
    sum(mrr_usd) as mrr_usd,
    any(is_partial_month) as partial_month
from {{ ref('fct_mrr') }}
group by month_start, currency
