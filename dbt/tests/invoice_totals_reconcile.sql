-- Every invoice total equals the sum of its lines minus its adjustments plus tax, and its
-- subtotal and discount equal the lines and adjustments the marts hold.
with lines as (
    select invoice_id, sum(amount) as line_total
    from {{ ref('fct_invoice_line') }}
    group by invoice_id
),
adjustments as (
    select invoice_id, sum(amount) as adjustment_total
    from {{ ref('dim_revenue_adjustments') }}
    group by invoice_id
)
select
    i.invoice_id as invoice_id,
    i.total as total,
    coalesce(l.line_total, toDecimal128(0, 9)) as lines,
    coalesce(a.adjustment_total, toDecimal128(0, 9)) as adjustments,
    i.tax as tax
from {{ ref('dim_customer_invoices') }} as i
left join lines as l on l.invoice_id = i.invoice_id
left join adjustments as a on a.invoice_id = i.invoice_id
where i.total != lines - adjustments + i.tax
   or i.subtotal != lines
   or i.discount_total != adjustments
settings join_use_nulls = 1
