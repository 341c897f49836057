{{ config(engine='MergeTree()', order_by='(customer_id, invoice_id)') }}
-- Invoices in their latest state with line, adjustment and payment totals, and the one definition
-- of booked (finalized or paid, never drafts or void: total net of discounts, before tax, in the
-- month issued), outstanding (finalized, not paid: the total) and overdue (outstanding past its due
-- date at the metrics' as-of time, int_as_of).
with lines as (
    select
        invoice_id,
        sum(amount) as line_total,
        sumIf(amount, kind in ('subscription', 'proration')) as recurring_amount,
        count() as line_count
    from {{ ref('stg_invoice_lines') }}
    group by invoice_id
),
adjustments as (
    select invoice_id, sum(amount) as adjustment_total
    from {{ ref('stg_invoice_adjustments') }}
    group by invoice_id
),
payments as (
    select invoice_id, sum(collected_amount) as amount_paid, count() as transactions
    from {{ ref('fct_transaction') }}
    group by invoice_id
)
select
    i.invoice_id as invoice_id,
    i.customer_id as customer_id,
    c.company_name as company_name,
    c.country as country,
    c.region as region,
    i.subscription_id as subscription_id,
    i.period_start as period_start,
    i.period_end as period_end,
    toStartOfMonth(i.period_start) as period_month,
    greatest(dateDiff('month', i.period_start, i.period_end), 1) as period_months,
    i.currency as currency,
    i.subtotal as subtotal,
    i.discount_total as discount_total,
    i.tax_rate as tax_rate,
    i.tax as tax,
    i.total as total,
    round(i.total / c.units_per_usd, 2) as total_usd,
    coalesce(l.line_total, toDecimal128(0, 9)) as line_total,
    coalesce(l.recurring_amount, toDecimal128(0, 9)) as recurring_amount,
    coalesce(l.line_count, 0) as line_count,
    coalesce(a.adjustment_total, toDecimal128(0, 9)) as adjustment_total,
    coalesce(p.amount_paid, toDecimal128(0, 9)) as amount_paid,
    coalesce(p.transactions, 0) as payment_transactions,
    i.status as status,
    cast(i.status as String) in ('finalized', 'paid') as is_booked,
    if(is_booked, i.total - i.tax, toDecimal128(0, 9)) as booked_amount,
    round(booked_amount / c.units_per_usd, 2) as booked_amount_usd,
    toStartOfMonth(i.issued_at) as booked_month,
    cast(i.status as String) = 'finalized' as is_outstanding,
    if(is_outstanding, i.total, toDecimal128(0, 9)) as outstanding_amount,
    (select as_of from {{ ref('int_as_of') }}) as as_of,
    is_outstanding and i.due_at < as_of as is_overdue,
    i.issued_at as issued_at,
    toDate(i.issued_at) as issued_date,
    i.due_at as due_at,
    i.paid_at as paid_at,
    i.voided_at as voided_at,
    i.void_reason as void_reason,
    if(i.paid_at is null, null, dateDiff('second', i.issued_at, i.paid_at)) as seconds_to_pay,
    i.paid_at > i.due_at as paid_late,
    if(i.paid_at > i.due_at, dateDiff('day', i.due_at, i.paid_at), 0) as days_late
from {{ ref('stg_invoices') }} as i
left join {{ ref('dim_customer') }} as c on c.customer_id = i.customer_id
left join lines as l on l.invoice_id = i.invoice_id
left join adjustments as a on a.invoice_id = i.invoice_id
left join payments as p on p.invoice_id = i.invoice_id
settings join_use_nulls = 1
