-- stg_market_sessions has one row per market and calendar session.
select market, session_date, count(*) as n_rows
from {{ ref('stg_market_sessions') }}
group by market, session_date
having count(*) > 1
