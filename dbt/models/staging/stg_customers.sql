-- Current state of each customer (latest update wins).
select
    customer_id,
    company_name,
    email,
    country,
    region,
    currency,
    segment,
    signup_time,
    updated_at
from {{ source('raw', 'customers') }} final
