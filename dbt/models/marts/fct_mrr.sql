{{ config(engine='MergeTree()', order_by='(month_start, customer_id, subscription_id)') }}
-- MRR: the run-rate of every subscription billable at a month's end, one row per subscription and
-- month, in the customer's currency: the flat fees of the plan the engine bills (the product in
-- the customer's currency and the subscription's interval), yearly fees / 12. Usage is not MRR
-- (see rpt_usage_revenue for trailing-month usage actuals).
select
    s.month_start as month_start,
    s.measured_at as measured_at,
    s.measured_at < toDateTime(addMonths(s.month_start, 1), 'UTC') - 1 as is_partial_month,
    s.subscription_id as subscription_id,
    s.customer_id as customer_id,
    ifNull(c.company_name, '') as company_name,
    ifNull(c.country, '') as country,
    ifNull(c.region, '') as region,
    ifNull(c.segment, '') as segment,
    s.plan_id as plan_id,
    ifNull(p.plan_id, '') as billed_plan_id,
    s.billing_interval as billing_interval,
    ifNull(c.currency, '') as currency,
    ifNull(p.base_fee, toDecimal128(0, 9)) / if(s.billing_interval = 'year', 12, 1) as mrr,
    mrr * 12 as arr,
    round(mrr / c.units_per_usd, 2) as mrr_usd
from {{ ref('int_subscription_month_ends') }} as s
left join {{ ref('dim_customer') }} as c on c.customer_id = s.customer_id
left join {{ ref('dim_plan') }} as p
    on p.product_id = s.plan_id and p.currency = c.currency and p.billing_interval = s.billing_interval
where s.is_billable
settings join_use_nulls = 1
