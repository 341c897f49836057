-- Recognized revenue per month and currency, up to the as-of month: what fct_revenue_recognized
-- recognized by service time, booked, credited, and deferred and unbilled at the month's end.
select
    month_start,
    currency,
    sum(recognized_amount) as recognized,
    sum(booked_amount) as booked,
    sum(credited_amount) as credited,
    sum(deferred_amount) as deferred,
    sum(unbilled_amount) as unbilled,
    sum(recognized_usd) as recognized_usd,
    sum(deferred_usd) as deferred_usd
from {{ ref('fct_revenue_recognized') }}
where not is_future
group by month_start, currency
