-- Deduplicated usage events of distinct-count meters: daily distinct values cannot be added up
-- from hourly rollups, so they are counted from the events.
select
    event_id,
    customer_id,
    meter,
    event_time,
    value,
    group_key,
    ingested_at
from {{ source('raw', 'usage_events') }} final
where meter in (select distinct meter from {{ ref('stg_usage_rollups') }} where aggregation = 'UNIQUE_COUNT')
