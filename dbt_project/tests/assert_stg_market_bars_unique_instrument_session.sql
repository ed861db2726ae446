-- stg_market_bars (every market's raw bars) has one row per instrument and session.
select instrument_id, session_date, count(*) as n_rows
from {{ ref('stg_market_bars') }}
group by instrument_id, session_date
having count(*) > 1
