-- Per month: invoices issued and their value, successful payments and revenue (reporting USD).
with invoices as (
    select toStartOfMonth(issued_date) as month_start, count() as invoices, sum(total_usd) as invoiced_usd
    from {{ ref('dim_customer_invoices') }}
    where issued_at is not null
    group by month_start
),
payments as (
    select toStartOfMonth(succeeded_date) as month_start, count() as payments, sum(net_amount_usd) as revenue_usd
    from {{ ref('fct_transaction') }}
    where succeeded
    group by month_start
)
select
    coalesce(i.month_start, p.month_start) as month_start,
    coalesce(i.invoices, 0) as invoices,
    coalesce(i.invoiced_usd, toDecimal128(0, 9)) as invoiced_usd,
    coalesce(p.payments, 0) as payments,
    coalesce(p.revenue_usd, toDecimal128(0, 9)) as revenue_usd
from invoices as i
full outer join payments as p on p.month_start = i.month_start
settings join_use_nulls = 1
