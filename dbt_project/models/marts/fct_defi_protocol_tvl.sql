{#- Protocol TVL per UTC day with its 1-day change: the movers of the DeFi section. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['protocol', 'tvl_date'],
) }}

with candidate as (
    select
        protocol,
        category,
        tvl_date,
        tvl_usd,
        lag(tvl_usd) over (partition by protocol order by tvl_date) as previous_tvl_usd,
        lag(tvl_date) over (partition by protocol order by tvl_date) as previous_tvl_date,
        source
    from {{ ref('stg_defi_protocol_tvl') }}
)

select
    *,
    case when previous_tvl_date = tvl_date - 1
        then 100 * (tvl_usd / nullif(previous_tvl_usd, 0) - 1) end as change_pct
from candidate
{{ owned_or_new('tvl_date', ['protocol', 'tvl_date']) }}
