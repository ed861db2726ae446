{#- Risk signal per market and session from its index moves (thresholds in dbt_project.yml). -#}
{% set threshold = var('risk_signal_threshold_pct') %}
with moves as (
    select
        daily.market,
        daily.session_date,
        avg(daily.return_pct) as mean_return_pct,
        min(daily.return_pct) as min_return_pct,
        max(daily.return_pct) as max_return_pct,
        count(*) as indices
    from {{ ref('fct_market_daily') }} as daily
    join {{ ref('instruments') }} as instruments using (instrument_id)
    where instruments.asset_class = 'equity_index' and daily.return_pct is not null
    group by all
)

select
    *,
    {{ threshold }} as signal_threshold_pct,
    case
        when mean_return_pct >= {{ threshold }} and min_return_pct > -{{ threshold }} then 'ON'
        when mean_return_pct <= -{{ threshold }} and max_return_pct < {{ threshold }} then 'OFF'
        else 'MIXED'
    end as signal
from moves
