{#- Breadth and turnover per A-share session. raw.cn_breadth holds one row per source and
    session: market 'cn' is a whole-market count snapshot (legulegu, a spot table, a replay),
    'sse' and 'szse' each exchange's own turnover. Counts: the snapshot where there is one,
    otherwise counted from per-stock bars. Turnover: both exchanges' figures where both
    answered, otherwise the snapshot's, otherwise the per-stock sum. -#}
with snapshot as (
    select session_date, advancers, decliners, unchanged, turnover_cny, source
    from {{ source('raw', 'cn_breadth') }}
    where market = 'cn'
),

exchanges as (
    select
        session_date,
        sum(turnover_cny) as turnover_cny,
        string_agg(source, '+' order by market) as source
    from {{ source('raw', 'cn_breadth') }}
    where market in ('sse', 'szse') and turnover_cny is not null
    group by session_date
    having count(distinct market) = 2
),

from_stocks as (
    select *, 'stock_bars' as source from {{ ref('stg_cn_stock_breadth') }}
),

sessions as (
    select session_date from snapshot
    union
    select session_date from exchanges
    union
    select session_date from from_stocks
)

select
    sessions.session_date,
    coalesce(snapshot.advancers, from_stocks.advancers) as advancers,
    coalesce(snapshot.decliners, from_stocks.decliners) as decliners,
    coalesce(snapshot.unchanged, from_stocks.unchanged) as unchanged,
    coalesce(exchanges.turnover_cny, snapshot.turnover_cny, from_stocks.turnover_cny)
        as turnover_cny,
    coalesce(snapshot.source, from_stocks.source) as source,
    case
        when exchanges.session_date is not null then exchanges.source
        when snapshot.turnover_cny is not null then snapshot.source
        else from_stocks.source
    end as turnover_source
from sessions
left join snapshot using (session_date)
left join exchanges using (session_date)
left join from_stocks using (session_date)
