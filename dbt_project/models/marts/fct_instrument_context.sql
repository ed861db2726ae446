{{ config(materialized='view') }}
{#- Per report date R and instrument, the context of the session fct_report_snapshot shows for
    it (D = its session_date; rows without a session have no context). Only closes on or before
    D are read: a report's context never depends on later data.
      return_1w/1m/ytd_pct  close at D against the last close on or before D - 7 days, D - 1
                            calendar month, and the last day of the previous calendar year:
                            calendar-based, as markets have different session counts. Null when
                            the history does not reach back to that day.
      high/low_52w          highest and lowest close in (D - 52 weeks, D], null unless the
                            history reaches D - 52 weeks; from_52w_high/low_pct: close at D
                            against each, in per cent.
      vol_20d_pct           realised volatility: sample stdev of the log returns of the last
                            `volatility_sessions` sessions ending at D (each with a return),
                            annualised by sqrt(sessions a year of the market's calendar, var
                            sessions_per_year), in per cent.
      vol_percentile_1y     share (per cent) of the last year of vols (the calendar's
                            sessions_per_year of them up to D, D's included; sessions without a
                            vol skipped) at most the vol at D; null with fewer vols than that.
      closes_60             the closes of the last `sparkline_sessions` sessions up to D, oldest
                            first (fewer when the history is shorter).
    docs/facts.md has every definition. -#}
{% set sessions_per_year = var('sessions_per_year') %}
{% set volatility_sessions = var('volatility_sessions') %}
{% set sparkline_sessions = var('sparkline_sessions') %}

with closes as (
    select
        daily.instrument_id,
        daily.session_date,
        daily.close,
        case
            when daily.return_status = 'ok' and daily.close > 0 and daily.previous_close > 0
                then ln(daily.close / daily.previous_close)
        end as log_return,
        case markets.calendar
            {%- for calendar, sessions in sessions_per_year.items() if calendar != 'default' %}
            when '{{ calendar }}' then {{ sessions }}
            {%- endfor %}
            else {{ sessions_per_year['default'] }}
        end as sessions_per_year
    from {{ ref('fct_market_daily') }} as daily
    join {{ ref('markets') }} as markets on markets.market = daily.market
    where daily.close is not null
),

windowed as (
    select
        instrument_id,
        session_date,
        sessions_per_year,
        min(session_date) over history as first_session_date,
        max(close) over last_52_weeks as high_52w,
        min(close) over last_52_weeks as low_52w,
        case when count(log_return) over volatility = {{ volatility_sessions }}
            then 100 * stddev_samp(log_return) over volatility * sqrt(sessions_per_year)
        end as vol_20d_pct,
        list(close order by session_date) over sparkline as closes_60
    from closes
    window
        history as (partition by instrument_id),
        last_52_weeks as (
            partition by instrument_id order by session_date
            range between interval 363 days preceding and current row
        ),
        volatility as (
            partition by instrument_id order by session_date
            rows between {{ volatility_sessions - 1 }} preceding and current row
        ),
        sparkline as (
            partition by instrument_id order by session_date
            rows between {{ sparkline_sessions - 1 }} preceding and current row
        )
),

vol_percentiles as (
    -- cume_dist over the frame: the share of the year's vols at most this one's
    select
        instrument_id,
        session_date,
        case when count(*) over past_year = sessions_per_year
            then 100 * cume_dist(order by vol_20d_pct) over past_year
        end as vol_percentile_1y
    from windowed
    where vol_20d_pct is not null
    window past_year as (
        partition by instrument_id order by session_date
        rows between sessions_per_year - 1 preceding and current row
    )
),

shown as (
    select
        snapshot.report_date,
        snapshot.instrument_id,
        snapshot.market,
        snapshot.session_date,
        snapshot.close,
        snapshot.return_pct as return_1d_pct,
        windowed.first_session_date,
        windowed.high_52w,
        windowed.low_52w,
        windowed.vol_20d_pct,
        vol_percentiles.vol_percentile_1y,
        windowed.closes_60
    from {{ ref('fct_report_snapshot') }} as snapshot
    left join windowed
        on windowed.instrument_id = snapshot.instrument_id
        and windowed.session_date = snapshot.session_date
    left join vol_percentiles
        on vol_percentiles.instrument_id = snapshot.instrument_id
        and vol_percentiles.session_date = snapshot.session_date
),

week_base as (
    select shown.*, closes.session_date as week_base_date, closes.close as week_base_close
    from shown
    asof left join closes
        on closes.instrument_id = shown.instrument_id
        and shown.session_date - 7 >= closes.session_date
),

month_base as (
    select week_base.*, closes.session_date as month_base_date, closes.close as month_base_close
    from week_base
    asof left join closes
        on closes.instrument_id = week_base.instrument_id
        and cast(week_base.session_date - interval 1 month as date) >= closes.session_date
),

year_base as (
    select month_base.*, closes.session_date as year_base_date, closes.close as year_base_close
    from month_base
    asof left join closes
        on closes.instrument_id = month_base.instrument_id
        and cast(date_trunc('year', month_base.session_date) as date) > closes.session_date
)

select
    report_date,
    instrument_id,
    market,
    session_date,
    close,
    return_1d_pct,
    week_base_date,
    100 * (close / week_base_close - 1) as return_1w_pct,
    month_base_date,
    100 * (close / month_base_close - 1) as return_1m_pct,
    year_base_date,
    100 * (close / year_base_close - 1) as return_ytd_pct,
    case when first_session_date <= session_date - 364 then high_52w end as high_52w,
    case when first_session_date <= session_date - 364 then low_52w end as low_52w,
    case when first_session_date <= session_date - 364 then 100 * (close / high_52w - 1) end
        as from_52w_high_pct,
    case when first_session_date <= session_date - 364 then 100 * (close / low_52w - 1) end
        as from_52w_low_pct,
    vol_20d_pct,
    vol_percentile_1y,
    closes_60
from year_base
