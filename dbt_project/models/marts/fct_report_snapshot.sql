{#- Per report date R and instrument: the session it contributes under the date rule (latest
    session on or before R-1 by its own calendar; crypto: the UTC day R-1) and its status:
      open         the market traded on R-1 and the data has that session
      closed       no session on R-1 (weekend, holiday); the latest expected session is shown
      stale        the calendar expected a newer session than the data has
      unavailable  the feed provided nothing for this instrument
    Market columns summarise the market: stale if any instrument is stale. calendar is
    provisional when the expected session (the one the row and its market are judged by) comes
    from a provisional calendar, else published. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['report_date', 'instrument_id'],
    on_schema_change='append_new_columns',
) }}

with daily as (
    select * from {{ ref('fct_market_daily') }}
),

sessions as (
    select * from {{ ref('stg_market_sessions') }}
),

bounds as (
    select
        greatest({{ min_report_date() }}, min(session_date) + 1) as first_report_date,
        {#- A run's window (assets/dbt.py) gets a row for every date it asks for, also past the
            data, so a missing session is a stale finding naming the market, never "no facts";
            a plain `dbt build` stops the day after the newest session. #}
        {% if env_var("MARKET_INTEL_WINDOW_END", "") -%}
            {{ max_report_date() }} - 1
        {%- else -%}
            max(session_date) + 1
        {%- endif %} as last_report_date
    from daily
),

report_dates as (
    select cast(unnest(generate_series(first_report_date, last_report_date, interval 1 day)) as date)
        as report_date
    from bounds
),

grid as (
    select
        report_dates.report_date,
        report_dates.report_date - 1 as as_of_date,
        instruments.instrument_id,
        instruments.market,
        instruments.name,
        instruments.short_name,
        instruments.asset_class
    from report_dates
    cross join {{ ref('instruments') }} as instruments
),

expected as (
    select
        grid.*,
        sessions.session_date as expected_session_date,
        coalesce(sessions.provisional, false) as expected_is_provisional
    from grid
    asof left join sessions
        on sessions.market = grid.market
        and grid.as_of_date >= sessions.session_date
),

latest as (
    select
        expected.*,
        daily.session_date,
        daily.close,
        daily.return_pct,
        daily.return_status,
        daily.volume,
        daily.source,
        daily.is_fallback
    from expected
    asof left join daily
        on daily.instrument_id = expected.instrument_id
        and expected.as_of_date >= daily.session_date
),

classified as (
    select
        *,
        case
            when session_date is null then 'unavailable'
            when expected_session_date is not null and session_date < expected_session_date
                then 'stale'
            when session_date = as_of_date then 'open'
            else 'closed'
        end as status
    from latest
)

select
    report_date,
    market,
    instrument_id,
    name,
    short_name,
    asset_class,
    expected_session_date,
    session_date,
    close,
    return_pct,
    return_status,
    volume,
    source,
    is_fallback,
    status,
    case when expected_is_provisional then 'provisional' else 'published' end as calendar,
    (
        select count(*) from sessions
        where sessions.market = classified.market
            and sessions.session_date > classified.session_date
            and sessions.session_date <= classified.expected_session_date
    ) as sessions_behind,
    coalesce(
        max(session_date) filter (where status <> 'stale') over market_day,
        max(session_date) over market_day
    ) as market_session_date,
    case
        when bool_or(status = 'stale') over market_day then 'stale'
        when bool_and(status = 'unavailable') over market_day then 'unavailable'
        when bool_or(status = 'open') over market_day then 'open'
        else 'closed'
    end as market_status
from classified
where {{ in_report_window('report_date') }}
window market_day as (partition by report_date, market)
