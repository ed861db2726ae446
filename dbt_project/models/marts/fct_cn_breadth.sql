{#- A-share breadth per session with counts: counts, advance ratio, and turnover against the
    average of the previous 20 sessions with turnover (turnover_vs_avg_20_pct = +10 means 10 %
    above that average). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['session_date'],
) }}

with breadth as (
    select
        session_date,
        advancers,
        decliners,
        unchanged,
        advancers + decliners + unchanged as total,
        turnover_cny,
        source,
        turnover_source,
        avg(turnover_cny) over (
            order by session_date rows between 20 preceding and 1 preceding
        ) as turnover_avg_20_cny,
        count(turnover_cny) over (
            order by session_date rows between 20 preceding and 1 preceding
        ) as turnover_history_sessions
    from {{ ref('stg_cn_breadth') }}
),

candidate as (
    select
        *,
        advancers / nullif(total, 0) as advance_ratio,
        100 * (turnover_cny / nullif(turnover_avg_20_cny, 0) - 1) as turnover_vs_avg_20_pct
    from breadth
    -- sessions with turnover alone (an exchange summary, no counts yet) feed the average only
    where advancers is not null
)

select * from candidate
{{ owned_or_new('session_date', ['session_date']) }}
