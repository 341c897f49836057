{{ config(engine='MergeTree()', order_by='(customer_id, invoice_id, adjustment_id)') }}
-- Coupons, discounts and credits with the invoice and customer they reduced.
select
    a.invoice_id as invoice_id,
    a.adjustment_id as adjustment_id,
    a.customer_id as customer_id,
    c.country as country,
    c.region as region,
    a.period_start as period_start,
    toStartOfMonth(a.period_start) as period_month,
    a.currency as currency,
    a.kind as kind,
    a.code as code,
    a.description as description,
    a.percent_off as percent_off,
    a.amount as amount,
    round(a.amount / c.units_per_usd, 2) as amount_usd
from {{ ref('stg_invoice_adjustments') }} as a
left join {{ ref('dim_customer') }} as c on c.customer_id = a.customer_id
settings join_use_nulls = 1
