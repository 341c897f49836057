-- Per month, in USD at the static reporting rates: booked invoices (finalized or paid, by the month
-- issued; total net of discounts, before tax) and collected revenue (succeeded payments net of
-- refunds, by the month the payment succeeded).
with invoices as (
    select booked_month as month_start, count() as invoices, sum(booked_amount_usd) as booked_usd
    from {{ ref('dim_customer_invoices') }}
    where is_booked
    group by month_start
),
payments as (
    select toStartOfMonth(succeeded_date) as month_start, count() as payments, sum(net_amount_usd) as collected_usd
    from {{ ref('fct_transaction') }}
    where succeeded
    group by month_start
)
select
    coalesce(i.month_start, p.month_start) as month_start,
    coalesce(i.invoices, 0) as invoices,
    coalesce(i.booked_usd, toDecimal128(0, 9)) as booked_usd,
    coalesce(p.payments, 0) as payments,
    coalesce(p.collected_usd, toDecimal128(0, 9)) as collected_usd
from invoices as i
full outer join payments as p on p.month_start = i.month_start
settings join_use_nulls = 1
