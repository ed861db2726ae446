-- fct_transmission_chain has one row per report date and link (us, hk, cn).
select report_date, market, count(*) as n_rows
from {{ ref('fct_transmission_chain') }}
group by report_date, market
having count(*) > 1
