{{ config(engine='MergeTree()', order_by='plan_id') }}
-- Plans of the pricing catalog, plus any plan id subscriptions refer to that the catalog lacks
-- (in_catalog = 0), so every subscription finds its plan.
select
    plan_id,
    product_id,
    plan_name,
    currency,
    billing_interval,
    base_fee,
    minimum_commitment,
    metered_charges,
    charge_count,
    toUInt8(1) as in_catalog
from {{ ref('stg_plans') }}
union all
select
    plan_id,
    plan_id as product_id,
    plan_id as plan_name,
    '' as currency,
    any(billing_interval) as billing_interval,
    toDecimal128(0, 9) as base_fee,
    toDecimal128(0, 9) as minimum_commitment,
    '' as metered_charges,
    toUInt16(0) as charge_count,
    toUInt8(0) as in_catalog
from {{ ref('stg_subscription_events') }}
where plan_id not in (select plan_id from {{ ref('stg_plans') }})
group by plan_id
