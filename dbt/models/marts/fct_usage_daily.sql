{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='customer_id, meter, usage_date, group_key',
    engine='MergeTree()',
    partition_by='toYYYYMM(usage_date)',
    order_by='(meter, usage_date, customer_id, group_key)'
) }}
-- Usage per customer x meter x day x group. Hourly values are combined with the meter's
-- aggregation (SUM/COUNT add, MAX takes the maximum, LATEST the last hour); UNIQUE_COUNT meters
-- are counted from the events, because distinct counts of hours do not add up to a day.
-- Incremental: days with a rewritten rollup since the last load are recomputed.
with hourly as (
    select * from {{ ref('stg_usage_rollups') }}
    {% if is_incremental() %}
    where (customer_id, meter, toDate(window_start)) in (
        select customer_id, meter, toDate(window_start) from {{ ref('stg_usage_rollups') }}
        where updated_at >= (select max(updated_at) from {{ this }}) - interval {{ var('incremental_lookback_hours') }} hour
    )
    {% endif %}
),
combined as (
    select
        customer_id,
        meter,
        toDate(window_start) as usage_date,
        group_key,
        any(dimensions) as dimensions,
        any(aggregation) as aggregation,
        multiIf(aggregation = 'MAX', max(value), aggregation = 'LATEST', argMax(value, window_start), sum(value))
            as value,
        sum(event_count) as event_count,
        max(updated_at) as updated_at
    from (select * from hourly where aggregation != 'UNIQUE_COUNT')
    group by customer_id, meter, usage_date, group_key
),
distinct_days as (
    select
        d.customer_id as customer_id,
        d.meter as meter,
        d.usage_date as usage_date,
        d.group_key as group_key,
        h.dimensions as dimensions,
        'UNIQUE_COUNT' as aggregation,
        d.value as value,
        d.event_count as event_count,
        h.updated_at as updated_at
    from {{ ref('int_usage_daily_distinct') }} as d
    inner join (
        select customer_id, meter, toDate(window_start) as usage_date, group_key,
               any(dimensions) as dimensions, max(updated_at) as updated_at
        from (select * from hourly where aggregation = 'UNIQUE_COUNT')
        group by customer_id, meter, usage_date, group_key
    ) as h
        on h.customer_id = d.customer_id and h.meter = d.meter and h.usage_date = d.usage_date
        and h.group_key = d.group_key
)
select * from combined
union all
select * from distinct_days
