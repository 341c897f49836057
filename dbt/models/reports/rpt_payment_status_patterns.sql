-- How often each sequence of statuses occurs.
select
    status_path,
    count() as transactions,
    round(100 * transactions / (select count() from {{ ref('fct_transaction') }}), 2) as share_pct
from {{ ref('fct_transaction') }}
group by status_path
