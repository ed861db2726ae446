-- fct_cross_market_divergence has one row per report date and pair (left_id, right_id).
select report_date, left_id, right_id, count(*) as n_rows
from {{ ref('fct_cross_market_divergence') }}
group by report_date, left_id, right_id
having count(*) > 1
