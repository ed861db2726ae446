{#- Every daily return series a divergence can compare: instruments (per cent close to close) and
    DeFi category TVL (per cent day over day, as `defi/<category>`). -#}
select instrument_id as series_id, market, session_date as series_date, return_pct
from {{ ref('fct_market_daily') }}
where return_pct is not null
union all
select 'defi/' || category, 'defi', tvl_date, change_pct
from {{ ref('fct_defi_category_tvl') }}
where change_pct is not null
