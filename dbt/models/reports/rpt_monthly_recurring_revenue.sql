{{ config(materialized='table', engine='MergeTree()', order_by='(month_start, currency)') }}
-- MRR per month and currency: the run-rate of the subscriptions billable at the month's end (fct_mrr).
-- A table, not a view: the dashboard reads a few hundred rows instead of grouping every subscription
-- month (a distinct count of customers) per query. It is rebuilt whenever fct_mrr is (`billing dbt
-- build` builds both), and the test mrr_report_reconciles_with_fct_mrr fails when it is stale.
select
    month_start,
    currency,
    sum(mrr) as mrr,
    sum(arr) as arr,
    uniqExact(customer_id) as customers,
    sum(mrr_usd) as mrr_usd,
    any(is_partial_month) as partial_month
from {{ ref('fct_mrr') }}
group by month_start, currency
