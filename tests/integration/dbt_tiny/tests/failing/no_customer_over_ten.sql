-- Deliberately failing: customer c1 used 15 api calls. Run only with --select tag:deliberately_failing.
select customer_id, sum(quantity) as quantity
from {{ ref('fct_tiny_daily_usage') }}
group by customer_id
having quantity > 10
