{#- One row per instrument and session: close, volume, and the close-to-close return against the
    previous session of the instrument's own exchange calendar (never the previous calendar day,
    never another market's day). A run builds the sessions its report dates own, plus any raw
    history not yet here and rows whose previous close has since arrived. calendar says whether
    the session comes from the published exchange calendar or a provisional one (past the
    library's last published session; stg_market_sessions). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['instrument_id', 'session_date'],
    on_schema_change='append_new_columns',
) }}

with bars as (
    select * from {{ ref('stg_market_bars') }}
),

sessions as (
    select * from {{ ref('stg_market_sessions') }}
),

priced as (
    select
        bars.instrument_id,
        bars.market,
        bars.session_date,
        sessions.previous_session_date,
        bars.close,
        previous.close as previous_close,
        bars.open,
        bars.high,
        bars.low,
        bars.volume,
        bars.source,
        bars.is_fallback,
        sessions.session_date is not null as is_calendar_session,
        coalesce(sessions.provisional, false) as is_provisional_session
    from bars
    left join sessions
        on sessions.market = bars.market
        and sessions.session_date = bars.session_date
    left join bars as previous
        on previous.instrument_id = bars.instrument_id
        and previous.session_date = sessions.previous_session_date
),

candidate as (
    select
        instrument_id,
        market,
        session_date,
        previous_session_date,
        close,
        previous_close,
        100 * (close / previous_close - 1) as return_pct,
        open,
        high,
        low,
        volume,
        source,
        is_fallback,
        case
            when not is_calendar_session then 'off_calendar'
            when previous_close is null then 'no_previous_close'
            else 'ok'
        end as return_status,
        case when is_provisional_session then 'provisional' else 'published' end as calendar
    from priced
)

select * from candidate
{{ owned_or_new('session_date', ['instrument_id', 'session_date']) }}
{% if is_incremental() %}
    -- a row built before its previous close arrived gets its return now
    or exists (
        select 1 from {{ this }} as built
        where built.instrument_id = candidate.instrument_id
            and built.session_date = candidate.session_date
            and built.return_pct is null
            and candidate.previous_close is not null
    )
{% endif %}
