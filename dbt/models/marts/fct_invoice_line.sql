{{ config(
    materialized='incremental',
    incremental_strategy='append',
    engine='MergeTree()',
    partition_by='toYYYYMM(period_start)',
    order_by='(period_start, kind, customer_id, invoice_id, line_no)'
) }}
-- Invoice lines (immutable once the invoice is finalized). Incremental: lines of invoices not loaded yet.
select
    l.invoice_id as invoice_id,
    l.line_no as line_no,
    l.customer_id as customer_id,
    l.period_start as period_start,
    toStartOfMonth(l.period_start) as period_month,
    l.currency as currency,
    l.kind as kind,
    l.charge as charge,
    l.meter as meter,
    l.description as description,
    l.quantity as quantity,
    l.unit_price as unit_price,
    l.amount as amount,
    round(l.amount / r.units_per_usd, 2) as amount_usd
from {{ ref('stg_invoice_lines') }} as l
left join {{ ref('currency_rates') }} as r on r.currency = l.currency
{% if is_incremental() %}
where l.invoice_id not in (select invoice_id from {{ this }})
{% endif %}
settings join_use_nulls = 1
