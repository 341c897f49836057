{{ config(engine='MergeTree()', order_by='(invoice_id, month_start)') }}
-- Recognized and deferred revenue of each booked invoice, per month from its first month of service
-- (or its booked month, if earlier) to its last. Rounding: the revenue an invoice recognized up to a
-- month's end is its exact schedule to date (int_revenue_schedule) rounded half away from zero to the
-- currency's minor unit, once per invoice; a month's recognized revenue is that minus the same at the
-- month's start, so the months add up to the booked amount minus credit notes exactly.
with invoices as (
    select i.invoice_id as invoice_id, i.customer_id as customer_id, i.currency as currency,
           i.booked_amount as invoice_booked, assumeNotNull(i.booked_month) as booked_month, r.minor_units as minor_units
    from {{ ref('dim_customer_invoices') }} as i
    left join {{ ref('currency_rates') }} as r on r.currency = i.currency
    where i.is_booked
    settings join_use_nulls = 1
),
scheduled as (
    select invoice_id, month_start, sum(exact_amount) as exact_amount
    from {{ ref('int_revenue_schedule') }}
    group by invoice_id, month_start
),
credited as (
    select invoice_id, toStartOfMonth(issued_at) as month_start, sum(amount) as credited_amount
    from {{ ref('stg_credit_note_lines') }}
    group by invoice_id, month_start
),
bounds as (
    select invoice_id, min(month_start) as first_month, max(month_start) as last_month
    from (
        select invoice_id, month_start from scheduled
        union all
        select invoice_id, month_start from credited
    )
    group by invoice_id
),
spans as (
    select
        i.invoice_id as invoice_id,
        i.customer_id as customer_id,
        i.currency as currency,
        i.invoice_booked as invoice_booked,
        i.booked_month as booked_month,
        i.minor_units as minor_units,
        least(i.booked_month, ifNull(b.first_month, i.booked_month)) as first_month,
        range(toUInt32(dateDiff('month', first_month,
                                greatest(i.booked_month, ifNull(b.last_month, i.booked_month))) + 1)) as offsets
    from invoices as i
    left join bounds as b on b.invoice_id = i.invoice_id
    settings join_use_nulls = 1
),
grid as (
    select invoice_id, customer_id, currency, invoice_booked, booked_month, minor_units,
           addMonths(first_month, toInt32(n)) as month_start
    from spans
    array join offsets as n
),
months as (
    select
        g.invoice_id as invoice_id,
        g.customer_id as customer_id,
        g.currency as currency,
        g.invoice_booked as invoice_booked,
        g.booked_month as booked_month,
        g.minor_units as minor_units,
        g.month_start as month_start,
        coalesce(s.exact_amount, toDecimal128(0, 9)) as exact_amount,
        coalesce(c.credited_amount, toDecimal128(0, 9)) as credited_in_month,
        sum(exact_amount) over (partition by invoice_id order by month_start
                                rows between unbounded preceding and current row) as exact_to_date,
        sum(credited_in_month) over (partition by invoice_id) as credited_total
    from grid as g
    left join scheduled as s on s.invoice_id = g.invoice_id and s.month_start = g.month_start
    left join credited as c on c.invoice_id = g.invoice_id and c.month_start = g.month_start
    settings join_use_nulls = 1
)
select
    invoice_id,
    customer_id,
    currency,
    month_start,
    booked_month,
    if(month_start = booked_month, invoice_booked, toDecimal128(0, 9)) as booked_amount,
    credited_in_month as credited_amount,
    round(exact_to_date, minor_units) as recognized_to_date,
    recognized_to_date - round(exact_to_date - exact_amount, minor_units) as recognized_amount,
    if(month_start >= booked_month, invoice_booked - credited_total - recognized_to_date, toDecimal128(0, 9))
        as deferred_amount,
    if(month_start < booked_month, recognized_to_date, toDecimal128(0, 9)) as unbilled_amount
from months
