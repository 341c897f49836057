-- Daily distinct values of UNIQUE_COUNT meters (e.g. active seats per day), from the events.
select
    customer_id,
    meter,
    toDate(event_time) as usage_date,
    group_key,
    toDecimal128(uniqExact(value), 9) as value,
    count() as event_count,
    max(ingested_at) as updated_at
from {{ ref('stg_usage_events') }}
group by customer_id, meter, usage_date, group_key
