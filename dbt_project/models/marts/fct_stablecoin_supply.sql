{#- Stablecoin supply per coin and UTC day with its daily change in USD and per cent; NET is the
    sum over the tracked coins (TOTAL, all USD-pegged coins, is reported as its own row). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['symbol', 'supply_date'],
) }}

with coins as (
    select
        symbol,
        supply_date,
        circulating_usd,
        lag(circulating_usd) over (partition by symbol order by supply_date) as previous_usd,
        lag(supply_date) over (partition by symbol order by supply_date) as previous_date
    from {{ ref('stg_stablecoin_supply') }}
),

daily as (
    select
        symbol,
        supply_date,
        circulating_usd,
        case when previous_date = supply_date - 1 then circulating_usd - previous_usd end
            as change_usd,
        case when previous_date = supply_date - 1 then previous_usd end as previous_usd
    from coins
),

with_net as (
    select * from daily
    union all
    select
        'NET' as symbol,
        supply_date,
        sum(circulating_usd),
        sum(change_usd),
        sum(previous_usd)
    from daily
    where symbol <> 'TOTAL'
    group by supply_date
),

candidate as (
    select *, 100 * change_usd / nullif(previous_usd, 0) as change_pct
    from with_net
)

select * from candidate
{{ owned_or_new('supply_date', ['symbol', 'supply_date']) }}
