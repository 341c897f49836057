-- Fails (returns rows) when the daily rollup loses or invents quantity.
select 1
from (select sum(quantity) as q from {{ ref('stg_tiny_usage') }}) as events
cross join (select sum(quantity) as q from {{ ref('fct_tiny_daily_usage') }}) as daily
where events.q != daily.q
