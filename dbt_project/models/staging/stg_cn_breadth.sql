{#- Breadth per A-share session: the feed's snapshot where there is one, otherwise counted from
    per-stock bars (a stock is up when its close is above its previous close). -#}
with snapshot as (
    select session_date, advancers, decliners, unchanged, turnover_cny, source
    from {{ source('raw', 'cn_breadth') }}
),

from_stocks as (
    select *, 'stock_bars' as source from {{ ref('stg_cn_stock_breadth') }}
)

select * from snapshot
union all
select * from from_stocks
where session_date not in (select session_date from snapshot)
