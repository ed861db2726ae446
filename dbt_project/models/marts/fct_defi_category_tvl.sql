{#- TVL by category per UTC day and its 1-day change over the protocols present both days, so a
    protocol entering the tracked set does not read as an inflow. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['category', 'tvl_date'],
) }}

with protocols as (
    select * from {{ ref('fct_defi_protocol_tvl') }}
),

candidate as (
    select
        category,
        tvl_date,
        sum(tvl_usd) as tvl_usd,
        count(*) as protocols,
        100 * (
            sum(tvl_usd) filter (where change_pct is not null)
            / nullif(sum(previous_tvl_usd) filter (where change_pct is not null), 0) - 1
        ) as change_pct
    from protocols
    group by category, tvl_date
)

select * from candidate
{{ owned_or_new('tvl_date', ['category', 'tvl_date']) }}
