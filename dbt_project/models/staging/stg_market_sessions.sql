{#- Calendar sessions with the previous session of the same market: returns are taken against it. -#}
select
    market,
    session_date,
    lag(session_date) over (partition by market order by session_date) as previous_session_date,
    open_utc,
    close_utc
from {{ source('raw', 'market_sessions') }}
