{#- Per report date: the risk signal of each link of the chain US (overnight lead) -> Hong Kong ->
    A-shares (vars chain_lead, chain_followers), each following session paired with the lead's
    session that closed just before it opened (both dates named), and the chain's status:
      risk_off_everywhere  every link OFF
      transmitted          every follower has the signal of a clear lead (ON or OFF)
      partial              some followers follow the lead, others do not
      broken               no follower follows a clear lead
      no_clear_lead        the lead itself is MIXED
      incomplete           a link has no signal -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['report_date', 'market'],
) }}
{% set lead = var('chain_lead') %}
{% set followers = var('chain_followers') %}

with sessions as (
    select * from {{ ref('stg_market_sessions') }}
),

signals as (
    select * from {{ ref('int_market_signals') }}
),

follower_sessions as (
    select distinct snapshot.report_date, snapshot.market, snapshot.market_session_date as session_date
    from {{ ref('fct_report_snapshot') }} as snapshot
    where snapshot.market in ('{{ followers | join("', '") }}') and {{ in_report_window('snapshot.report_date') }}
),

follower_opens as (
    select follower_sessions.*, sessions.open_utc
    from follower_sessions
    join sessions on sessions.market = follower_sessions.market and sessions.session_date = follower_sessions.session_date
),

lead_closes as (
    select session_date, close_utc from sessions where market = '{{ lead }}'
),

paired as (
    select follower_opens.*, lead_closes.session_date as lead_session_date
    from follower_opens
    asof join lead_closes on follower_opens.open_utc >= lead_closes.close_utc
),

links as (
    select
        paired.report_date,
        paired.market,
        paired.session_date,
        paired.lead_session_date,
        signals.signal,
        signals.mean_return_pct,
        signals.signal_threshold_pct
    from paired
    left join signals on signals.market = paired.market and signals.session_date = paired.session_date
    union all
    select
        paired.report_date,
        '{{ lead }}' as market,
        paired.lead_session_date as session_date,
        null as lead_session_date,
        signals.signal,
        signals.mean_return_pct,
        signals.signal_threshold_pct
    from paired
    left join signals
        on signals.market = '{{ lead }}' and signals.session_date = paired.lead_session_date
    where paired.market = '{{ followers[0] }}'
),

lead_signals as (
    select report_date, signal as lead_signal from links where market = '{{ lead }}'
),

statuses as (
    select
        links.report_date,
        any_value(lead_signals.lead_signal) as lead_signal,
        count(links.signal) filter (where links.market <> '{{ lead }}') as follower_signals,
        count(*) filter (where links.market <> '{{ lead }}' and links.signal = 'OFF')
            as followers_off,
        count(*) filter (
            where links.market <> '{{ lead }}' and links.signal = lead_signals.lead_signal
        ) as followers_following
    from links
    left join lead_signals using (report_date)
    group by links.report_date
)

select
    links.*,
    case
        when lead_signal is null or follower_signals < {{ followers | length }} then 'incomplete'
        when lead_signal = 'OFF' and followers_off = {{ followers | length }}
            then 'risk_off_everywhere'
        when lead_signal = 'MIXED' then 'no_clear_lead'
        when followers_following = {{ followers | length }} then 'transmitted'
        when followers_following > 0 then 'partial'
        else 'broken'
    end as chain_status
from links
join statuses using (report_date)
