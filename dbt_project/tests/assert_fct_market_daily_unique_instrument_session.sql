-- fct_market_daily has one row per instrument and session.
select instrument_id, session_date, count(*) as n_rows
from {{ ref('fct_market_daily') }}
group by instrument_id, session_date
having count(*) > 1
