{{ config(engine='MergeTree()', order_by='(month_start, customer_id)') }}
-- How each customer's MRR moved from the end of the previous month to the end of this one:
-- new (none before, some now; returning customers count as new), expansion (more), contraction
-- (less, not zero), churned (some before, none now), or unchanged. Amounts in the customer's
-- currency and in USD at the static reporting rates (seed currency_rates).
with customer_months as (
    select month_start, customer_id, sum(mrr) as mrr, sum(mrr_usd) as mrr_usd, any(plan_id) as plan_id
    from {{ ref('fct_mrr') }}
    group by month_start, customer_id
),
months as (
    select distinct month_start from {{ ref('int_subscription_month_ends') }}
),
grid as (
    select m.month_start as month_start, c.customer_id as customer_id
    from months as m
    cross join (select distinct customer_id from customer_months) as c
),
filled as (
    select
        g.month_start as month_start,
        g.customer_id as customer_id,
        coalesce(cur.mrr, toDecimal128(0, 9)) as mrr,
        coalesce(cur.mrr_usd, toDecimal128(0, 9)) as mrr_usd,
        coalesce(prev.mrr, toDecimal128(0, 9)) as previous_mrr,
        coalesce(prev.mrr_usd, toDecimal128(0, 9)) as previous_mrr_usd,
        coalesce(cur.plan_id, prev.plan_id, '') as plan_id
    from grid as g
    left join customer_months as cur on cur.customer_id = g.customer_id and cur.month_start = g.month_start
    left join customer_months as prev
        on prev.customer_id = g.customer_id and prev.month_start = addMonths(g.month_start, -1)
    settings join_use_nulls = 1
)
select
    f.month_start as month_start,
    f.customer_id as customer_id,
    c.company_name as company_name,
    c.region as region,
    c.country as country,
    f.plan_id as plan_id,
    c.currency as currency,
    f.previous_mrr as previous_mrr,
    f.mrr as mrr,
    f.mrr - f.previous_mrr as mrr_change,
    f.previous_mrr_usd as previous_mrr_usd,
    f.mrr_usd as mrr_usd,
    f.mrr_usd - f.previous_mrr_usd as mrr_change_usd,
    multiIf(f.previous_mrr = 0, 'new', f.mrr = 0, 'churned', f.mrr > f.previous_mrr, 'expansion',
            f.mrr < f.previous_mrr, 'contraction', 'unchanged') as movement
from filled as f
inner join {{ ref('dim_customer') }} as c on c.customer_id = f.customer_id
where f.mrr > 0 or f.previous_mrr > 0
