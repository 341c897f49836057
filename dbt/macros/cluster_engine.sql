{#- On a ClickHouse cluster (var `cluster`, from BILLING_CLICKHOUSE_CLUSTER) every table model is created
    ON CLUSTER (the profile's `cluster`) with the Replicated variant of its engine, so each replica of a shard
    holds the marts; the replication path and replica name come from the servers' default_replica_path and
    default_replica_name. Overrides dbt-clickhouse's engine_clause; the models keep their own engines. -#}
{% macro engine_clause() %}
  {%- set engine = config.get('engine', default='MergeTree()') -%}
  engine = {{ 'Replicated' ~ engine if var('cluster') and 'MergeTree' in engine and not engine.startswith('Replicated') else engine }}
{%- endmacro -%}
