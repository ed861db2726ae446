{#- Breadth counted from per-stock bars alone, to check the snapshot against where both exist. -#}
select
    session_date,
    count(*) filter (where close > previous_close) as advancers,
    count(*) filter (where close < previous_close) as decliners,
    count(*) filter (where close = previous_close) as unchanged,
    sum(turnover_cny) as turnover_cny
from {{ source('raw', 'cn_stock_bars') }}
where close is not null and previous_close is not null
group by session_date
