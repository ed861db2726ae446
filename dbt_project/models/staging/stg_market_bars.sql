{#- Every market's bars in one shape: one feed table per market, unioned over the seed's markets. -#}
{% set bar_markets = var("bar_markets") %}
{% for market in bar_markets %}
select
    '{{ market }}' as market,
    instrument_id,
    session_date,
    open,
    high,
    low,
    close,
    volume,
    source,
    is_fallback,
    fetched_at
from {{ source('raw', market ~ '_bars') }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
