-- The MRR report (a table, for the dashboards' latency) holds what fct_mrr holds now: per month and
-- currency the same MRR, customers and MRR in USD, and no month or currency only one side has. It fails
-- when a partial build (e.g. `dbt run --select fct_mrr`) refreshed fct_mrr but not the report; selecting
-- fct_mrr selects this test too (dbt's eager indirect selection).
with fresh as (
    select month_start, currency, sum(mrr) as mrr, uniqExact(customer_id) as customers, sum(mrr_usd) as mrr_usd
    from {{ ref('fct_mrr') }}
    group by month_start, currency
),
report as (
    select month_start, currency, mrr, customers, mrr_usd
    from {{ ref('rpt_monthly_recurring_revenue') }}
)
select 'report only' as side, * from (select * from report except select * from fresh)
union all
select 'fct_mrr only' as side, * from (select * from fresh except select * from report)
