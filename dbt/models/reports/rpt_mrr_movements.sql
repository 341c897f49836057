-- Per month, in USD at the static reporting rates: MRR at the start (previous month's end), its
-- movements (new, expansion, contraction, churned), MRR at the end, logo churn and net revenue retention.
select
    month_start,
    sum(previous_mrr_usd) as starting_mrr_usd,
    sumIf(mrr_change_usd, movement = 'new') as new_mrr_usd,
    sumIf(mrr_change_usd, movement = 'expansion') as expansion_mrr_usd,
    sumIf(mrr_change_usd, movement = 'contraction') as contraction_mrr_usd,
    sumIf(mrr_change_usd, movement = 'churned') as churned_mrr_usd,
    sum(mrr_usd) as ending_mrr_usd,
    countIf(previous_mrr > 0) as starting_customers,
    countIf(movement = 'churned') as churned_customers,
    if(starting_customers = 0, null, round(churned_customers / starting_customers, 4)) as logo_churn_rate,
    if(starting_mrr_usd = 0, null, round(toFloat64(sumIf(mrr_usd, previous_mrr > 0) / starting_mrr_usd), 4))
        as net_revenue_retention
from {{ ref('fct_mrr_movements') }}
group by month_start
