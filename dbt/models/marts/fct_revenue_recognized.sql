{{ config(engine='MergeTree()', order_by='(month_start, customer_id, currency)') }}
-- Recognized revenue per customer, month and currency (fct_revenue_recognition summed over the
-- customer's invoices): revenue recognized in the month by service time, revenue booked in the month,
-- credit notes issued in it, deferred revenue at the month's end (booked, minus credit notes, not
-- recognized yet) and unbilled revenue (recognized, not booked yet: fees in arrears). Months after
-- the as-of time are the schedule still to come (is_future). USD at the static reporting rates.
select
    r.month_start as month_start,
    r.customer_id as customer_id,
    r.currency as currency,
    ifNull(c.company_name, '') as company_name,
    ifNull(c.country, '') as country,
    ifNull(c.region, '') as region,
    month_start > toStartOfMonth((select as_of from {{ ref('int_as_of') }})) as is_future,
    sum(r.recognized_amount) as recognized_amount,
    sum(r.booked_amount) as booked_amount,
    sum(r.credited_amount) as credited_amount,
    sum(r.deferred_amount) as deferred_amount,
    sum(r.unbilled_amount) as unbilled_amount,
    round(recognized_amount / any(x.units_per_usd), 2) as recognized_usd,
    round(deferred_amount / any(x.units_per_usd), 2) as deferred_usd
from {{ ref('fct_revenue_recognition') }} as r
left join {{ ref('dim_customer') }} as c on c.customer_id = r.customer_id
left join {{ ref('currency_rates') }} as x on x.currency = r.currency
group by r.month_start, r.customer_id, r.currency, c.company_name, c.country, c.region
settings join_use_nulls = 1
