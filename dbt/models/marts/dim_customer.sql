{{ config(engine='MergeTree()', order_by='customer_id') }}
-- Customers with their current subscription and reporting currency rate.
select
    c.customer_id as customer_id,
    c.company_name as company_name,
    c.email as email,
    c.country as country,
    c.region as region,
    c.currency as currency,
    c.segment as segment,
    c.signup_time as signup_time,
    toDate(c.signup_time) as signup_date,
    s.subscription_id as subscription_id,
    s.plan_id as plan_id,
    s.billing_interval as billing_interval,
    s.status as subscription_status,
    s.ended_at as subscription_ended_at,
    s.plan_changes as plan_changes,
    r.units_per_usd as units_per_usd
from {{ ref('stg_customers') }} as c
left join (
    select * from {{ ref('int_subscriptions_current') }}
    order by updated_at desc
    limit 1 by customer_id
) as s on s.customer_id = c.customer_id
left join {{ ref('currency_rates') }} as r on r.currency = c.currency
settings join_use_nulls = 1
