-- The hourly usage mart holds exactly the latest version of every hourly rollup: per meter, the
-- sums of value and events and the number of windows match the raw rollups (read with FINAL).
with raw as (
    select meter, sum(value) as value, sum(event_count) as events, count() as windows
    from {{ source('raw', 'usage_rollups') }} final
    where window_seconds = 3600
    group by meter
),
mart as (
    select meter, sum(value) as value, sum(event_count) as events, count() as windows
    from {{ ref('fct_usage_hourly') }}
    group by meter
)
select raw.meter as meter, raw.value as raw_value, mart.value as mart_value,
       raw.events as raw_events, mart.events as mart_events, raw.windows as raw_windows, mart.windows as mart_windows
from raw
full outer join mart on raw.meter = mart.meter
where raw_value != mart_value or raw_events != mart_events or raw_windows != mart_windows
settings join_use_nulls = 1
