{{ config(materialized='view') }}
{#- The next session's lead, per report date and follower of the transmission chain (vars
    chain_lead, chain_followers): the lead market's latest session in report R and each
    follower's latest session, their UTC closes (stg_market_sessions), and whether the lead
    closed after the follower (lead_closed_after). When it did, the lead's latest session has not
    yet reached that follower: it leads the follower's next session (Friday's US close -> Monday's
    Asian open). The lead's signal and mean index move are those of its latest session. -#}
{% set lead = var('chain_lead') %}
{% set followers = var('chain_followers') %}

with latest as (
    select distinct snapshot.report_date, snapshot.market, snapshot.market_session_date as session_date
    from {{ ref('fct_report_snapshot') }} as snapshot
    where snapshot.market_session_date is not null
),

closes as (
    select latest.*, sessions.close_utc
    from latest
    join {{ ref('stg_market_sessions') }} as sessions
        on sessions.market = latest.market and sessions.session_date = latest.session_date
),

lead_sessions as (
    select * from closes where market = '{{ lead }}'
)

select
    follower.report_date,
    lead_sessions.market as lead_market,
    lead_sessions.session_date as lead_session_date,
    lead_sessions.close_utc as lead_close_utc,
    signals.signal as lead_signal,
    signals.mean_return_pct as lead_mean_return_pct,
    follower.market,
    follower.session_date,
    follower.close_utc,
    lead_sessions.close_utc > follower.close_utc as lead_closed_after
from closes as follower
join lead_sessions using (report_date)
left join {{ ref('int_market_signals') }} as signals
    on signals.market = lead_sessions.market and signals.session_date = lead_sessions.session_date
where follower.market in ('{{ followers | join("', '") }}')
