-- Plans of the pricing catalog (seed written by `billing dbt plans` from billing/plans/*.yaml).
select
    plan_id,
    product_id,
    plan_name,
    currency,
    billing_interval,
    base_fee,
    minimum_commitment,
    metered_charges,
    charge_count
from {{ ref('plan_catalog') }}
