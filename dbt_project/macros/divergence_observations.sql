{#- The observations of every divergence pair, defined once for the mart
    fct_cross_market_divergence (per report date) and the view fct_divergence_history (the series
    the report's charts draw). Call as `with {{ divergence_observations() }}, ...`; it defines
    the CTEs `pairs` (configured and generated), `followed` (each observation with its narrowing
    follow-up) and `measured` (each observation's z-score, band, rolling correlation and the
    previous spreads the mart's percentile reads), among others.
    An observation is one distinct pair of sessions, dated `observed_on`; every statistic looks
    back only (the previous `divergence_history` observations, the last `correlation_window`
    ones), except `narrowed`, which looks `narrowing_sessions` ahead and is used only once
    that follow-up has ended. -#}
{% macro divergence_observations() -%}
{% set history = var('divergence_history') %}
{% set correlation_window = var('correlation_window') %}
{% set narrowing_sessions = var('narrowing_sessions') %}
series as (
    select * from {{ ref('int_daily_series') }}
),

configured as (
    select left_id, right_id, label, true as configured from {{ ref('divergence_pairs') }}
),

generated as (
    select
        left_side.instrument_id as left_id,
        right_side.instrument_id as right_id,
        left_side.short_name || ' vs ' || right_side.short_name as label,
        false as configured
    from {{ ref('instruments') }} as left_side
    join {{ ref('instruments') }} as right_side
        on left_side.market < right_side.market
    where left_side.asset_class in ('equity_index', 'crypto')
        and right_side.asset_class in ('equity_index', 'crypto')
),

pairs as (
    select * from configured
    union all
    select * from generated
    where not exists (
        select 1 from configured
        where (configured.left_id = generated.left_id and configured.right_id = generated.right_id)
            or (configured.left_id = generated.right_id and configured.right_id = generated.left_id)
    )
),

anchors as (
    select distinct pairs.left_id, pairs.right_id, series.series_date as anchor_date
    from pairs
    join series on series.series_id in (pairs.left_id, pairs.right_id)
),

aligned as (
    select
        anchors.left_id,
        anchors.right_id,
        anchors.anchor_date,
        left_series.series_date as left_session_date,
        left_series.return_pct as left_return_pct
    from anchors
    asof join series as left_series
        on left_series.series_id = anchors.left_id
        and anchors.anchor_date >= left_series.series_date
),

both_sides as (
    select
        aligned.*,
        right_series.series_date as right_session_date,
        right_series.return_pct as right_return_pct
    from aligned
    asof join series as right_series
        on right_series.series_id = aligned.right_id
        and aligned.anchor_date >= right_series.series_date
),

observations as (
    select
        left_id,
        right_id,
        left_session_date,
        right_session_date,
        min(anchor_date) as observed_on,
        any_value(left_return_pct) as left_return_pct,
        any_value(right_return_pct) as right_return_pct,
        100 * (any_value(left_return_pct) - any_value(right_return_pct)) as spread_bps
    from both_sides
    group by all
),

followed as (
    select
        *,
        min(abs(spread_bps)) over following <= 0.5 * abs(spread_bps) as narrowed,
        lead(observed_on, {{ narrowing_sessions }}) over ordered as follow_up_ends_on
    from observations
    window
        ordered as (partition by left_id, right_id order by observed_on),
        following as (
            partition by left_id, right_id order by observed_on
            rows between 1 following and {{ narrowing_sessions }} following
        )
),

scored as (
    select
        *,
        avg(spread_bps) over history as history_mean_bps,
        stddev_samp(spread_bps) over history as history_stddev_bps,
        list(spread_bps) over history as history_spreads,
        corr(left_return_pct, right_return_pct) over recent as correlation,
        count(*) over recent as correlation_observations
    from followed
    window
        history as (
            partition by left_id, right_id order by observed_on
            rows between {{ history }} preceding and 1 preceding
        ),
        recent as (
            partition by left_id, right_id order by observed_on
            rows between {{ correlation_window - 1 }} preceding and current row
        )
),

measured as (
    select
        *,
        (spread_bps - history_mean_bps) / nullif(history_stddev_bps, 0) as zscore,
        len(history_spreads) as history_observations,
        history_mean_bps - 2 * history_stddev_bps as band_low_bps,
        history_mean_bps + 2 * history_stddev_bps as band_high_bps,
        case when correlation_observations >= {{ correlation_window }}
            then correlation end as correlation_60d
    from scored
)
{%- endmacro %}
