-- Hourly usage rollups, the highest version of each window (replay-safe).
select
    customer_id,
    meter,
    window_start,
    group_key,
    dimensions,
    aggregation,
    value,
    event_count,
    updated_at
from {{ source('raw', 'usage_rollups') }} final
where window_seconds = 3600
