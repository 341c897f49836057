{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='invoice_id',
    engine='MergeTree()',
    partition_by='toYYYYMM(period_start)',
    order_by='(period_start, kind, customer_id, invoice_id, line_no)'
) }}
-- Invoice lines with their invoice's status and the plan that billed them (the plan id in the line's
-- charge code `<plan>.<charge>`, and its product). Only lines of booked invoices (finalized or paid)
-- are revenue. Incremental: the lines of every invoice whose version changed since the last load
-- (a draft finalized or rewritten, a payment, a void) are replaced.
with invoices as (
    select invoice_id, status, event_time from {{ ref('stg_invoices') }}
    {% if is_incremental() %}
    where (invoice_id, event_time) not in (select invoice_id, invoice_version from {{ this }})
    {% endif %}
)
select
    l.invoice_id as invoice_id,
    l.line_no as line_no,
    l.customer_id as customer_id,
    l.period_start as period_start,
    toStartOfMonth(l.period_start) as period_month,
    i.status as invoice_status,
    cast(i.status as String) in ('finalized', 'paid') as is_booked,
    i.event_time as invoice_version,
    l.currency as currency,
    l.kind as kind,
    l.charge as charge,
    if(position(l.charge, '.') > 0, splitByChar('.', l.charge)[1], '') as plan_id,
    ifNull(p.product_id, '') as product_id,
    if(position(l.charge, '.') > 0, splitByChar('.', l.charge)[2], l.charge) as charge_id,
    l.meter as meter,
    l.description as description,
    l.quantity as quantity,
    l.unit_price as unit_price,
    l.amount as amount,
    round(l.amount / r.units_per_usd, 2) as amount_usd
from {{ ref('stg_invoice_lines') }} as l
inner join invoices as i on i.invoice_id = l.invoice_id
left join {{ ref('currency_rates') }} as r on r.currency = l.currency
left join {{ ref('dim_plan') }} as p
    on p.plan_id = if(position(l.charge, '.') > 0, splitByChar('.', l.charge)[1], '')
settings join_use_nulls = 1
