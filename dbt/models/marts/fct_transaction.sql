{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='transaction_id',
    engine='MergeTree()',
    partition_by='toYYYYMM(initiated_date)',
    order_by='(initiated_date, region, method, transaction_id)'
) }}
-- One row per payment transaction with its customer's location denormalized for dashboards.
-- Collected = succeeded payments net of refunds (net_amount); settled = no longer in flight (its
-- latest state is not `initiated`): success rates are over settled transactions only.
-- Incremental: every transaction whose number of events differs from the loaded one is rebuilt, so
-- a payment event is picked up however late it arrives (its event_time plays no part).
select
    t.transaction_id as transaction_id,
    t.invoice_id as invoice_id,
    t.customer_id as customer_id,
    ifNull(c.country, '') as country,
    ifNull(c.region, '') as region,
    ifNull(c.segment, '') as segment,
    t.method as method,
    t.currency as currency,
    t.amount as amount,
    round(t.amount / c.units_per_usd, 2) as amount_usd,
    t.final_status as status,
    t.succeeded as succeeded,
    t.final_status != 'initiated' as is_settled,
    if(t.succeeded, t.amount, toDecimal128(0, 9)) as collected_amount,
    t.refunded_amount as refunded_amount,
    collected_amount - t.refunded_amount as net_amount,
    round(net_amount / c.units_per_usd, 2) as net_amount_usd,
    t.disputed as disputed,
    t.attempts as attempts,
    toUInt16(t.attempts - 1) as retries,
    t.failures as failures,
    t.last_failure_reason as last_failure_reason,
    t.first_initiated_at as initiated_at,
    toDate(t.first_initiated_at) as initiated_date,
    toHour(t.first_initiated_at) as initiated_hour,
    t.succeeded_at as succeeded_at,
    if(t.succeeded, toDate(t.succeeded_at), null) as succeeded_date,
    t.processing_seconds as processing_seconds,
    t.seconds_to_success as seconds_to_success,
    i.due_at as invoice_due_at,
    t.succeeded and t.succeeded_at > i.due_at as paid_late,
    t.status_path as status_path,
    t.last_event_at as last_event_at,
    t.events as events
from {{ ref('int_payment_transactions') }} as t
left join {{ ref('dim_customer') }} as c on c.customer_id = t.customer_id
left join {{ ref('stg_invoices') }} as i on i.invoice_id = t.invoice_id
{% if is_incremental() %}
where (t.transaction_id, t.events) not in (select transaction_id, events from {{ this }})
{% endif %}
settings join_use_nulls = 1
