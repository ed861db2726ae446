{#- Per report date: the risk signal of each link of the chain US (overnight lead) -> Hong Kong ->
    A-shares, each Asian session paired with the US session that closed just before it opened
    (both dates named), and the chain's status:
      risk_off_everywhere  every link OFF
      transmitted          Hong Kong and A-shares both follow a clear US lead (ON or OFF)
      partial              one of them follows the lead, the other does not
      broken               neither follows a clear US lead
      no_clear_lead        the US lead itself is MIXED -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['report_date', 'market'],
) }}

with sessions as (
    select * from {{ ref('stg_market_sessions') }}
),

signals as (
    select * from {{ ref('int_market_signals') }}
),

asia as (
    select distinct snapshot.report_date, snapshot.market, snapshot.market_session_date as session_date
    from {{ ref('fct_report_snapshot') }} as snapshot
    where snapshot.market in ('hk', 'cn') and {{ in_report_window('snapshot.report_date') }}
),

asia_opens as (
    select asia.*, sessions.open_utc
    from asia
    join sessions on sessions.market = asia.market and sessions.session_date = asia.session_date
),

us_closes as (
    select session_date, close_utc from sessions where market = 'us'
),

paired as (
    select asia_opens.*, us_closes.session_date as lead_session_date
    from asia_opens
    asof join us_closes on asia_opens.open_utc >= us_closes.close_utc
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
        'us' as market,
        paired.lead_session_date as session_date,
        null as lead_session_date,
        signals.signal,
        signals.mean_return_pct,
        signals.signal_threshold_pct
    from paired
    left join signals on signals.market = 'us' and signals.session_date = paired.lead_session_date
    where paired.market = 'hk'
),

statuses as (
    select
        report_date,
        any_value(signal) filter (where market = 'us') as us_signal,
        any_value(signal) filter (where market = 'hk') as hk_signal,
        any_value(signal) filter (where market = 'cn') as cn_signal
    from links
    group by report_date
)

select
    links.*,
    case
        when us_signal is null or hk_signal is null or cn_signal is null then 'incomplete'
        when us_signal = 'OFF' and hk_signal = 'OFF' and cn_signal = 'OFF' then 'risk_off_everywhere'
        when us_signal = 'MIXED' then 'no_clear_lead'
        when hk_signal = us_signal and cn_signal = us_signal then 'transmitted'
        when hk_signal = us_signal or cn_signal = us_signal then 'partial'
        else 'broken'
    end as chain_status
from links
join statuses using (report_date)
