{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='customer_id, meter, window_start, group_key',
    engine='MergeTree()',
    partition_by='toYYYYMM(window_start)',
    order_by='(customer_id, meter, window_start, group_key)'
) }}
-- Usage per customer x meter x hour x group of dimensions: the latest version of each rollup.
-- Incremental: windows rewritten since the last load (minus a lookback) replace their old rows.
select
    customer_id,
    meter,
    window_start,
    toDate(window_start) as usage_date,
    toHour(window_start) as hour_of_day,
    toDayOfWeek(window_start) as day_of_week,
    group_key,
    dimensions,
    aggregation,
    value,
    event_count,
    updated_at
from {{ ref('stg_usage_rollups') }}
{% if is_incremental() %}
where updated_at >= (select max(updated_at) from {{ this }}) - interval {{ var('incremental_lookback_hours') }} hour
{% endif %}
